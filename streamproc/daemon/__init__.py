"""The composition root: builds every component, wires them, starts and stops them."""

from streamproc.daemon.core import Daemon

__all__ = ["Daemon"]
