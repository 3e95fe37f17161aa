"""Why a model pack cannot be used as configured (the daemon exits 2 on these at start)."""

from __future__ import annotations


class ModelPackError(RuntimeError):
    """The configured pack is unknown or its files are missing."""


class ProviderUnavailableError(ModelPackError):
    """A GPU was required (``models.require_gpu``) and the models do not run on one."""
