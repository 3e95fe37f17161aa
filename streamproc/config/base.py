"""What every config section shares: strict, frozen models and secrets read at load time."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr


class Section(BaseModel):
    """A config section: unknown keys are rejected (a typo fails at load), values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_secret(value: str) -> str:
    """``env:NAME`` reads the environment, ``file:PATH`` a (mounted secret) file, at load time.

    Errors name the variable or file, never the value.
    """
    if value.startswith("env:"):
        name = value[4:]
        resolved = os.environ.get(name)
        if resolved is None:
            msg = f"environment variable {name} is not set"
            raise ValueError(msg)
        return resolved
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            msg = f"secret file {path}: {exc.strerror}"
            raise ValueError(msg) from None
    return value


Secret = Annotated[str, AfterValidator(resolve_secret)]
# Like Secret, but masked in repr/str, so a printed or logged config never shows it.
HiddenSecret = Annotated[SecretStr, BeforeValidator(
    lambda v: resolve_secret(v) if isinstance(v, str) else v)]
