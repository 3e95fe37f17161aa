"""The operator's catalog: each celebrity's Name, Urls and KnownGender, keyed by UserId.

A YAML (or JSON, which YAML reads) mapping, checked once at start::

    JaneDoe:
      name: Jane Doe
      urls: [https://example.org/jane]
      known_gender: Female

A celebrity's Id is its gallery UserId, and Rekognition's celebrity Id allows letters and
digits only (``RekognitionUniqueId``), so a key with any other character is refused here, and
a gallery user named so is never reported as a celebrity (:func:`is_celebrity_id`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, field_validator

# RekognitionUniqueId's pattern, with UserId's length (1-128).
_CELEBRITY_ID = re.compile(r"[0-9A-Za-z]{1,128}")
MAX_URLS = 255  # Urls: at most 255 entries (botocore's model)
MAX_URL_CHARS = 255  # streamproc's own limit: botocore's Url string has no maximum


def is_celebrity_id(user_id: str) -> bool:
    """Whether a gallery UserId can be a celebrity's Id (letters and digits only)."""
    return _CELEBRITY_ID.fullmatch(user_id) is not None


class KnownGender(str, Enum):
    """KnownGender.Type: the values of botocore's KnownGenderType."""

    MALE = "Male"
    FEMALE = "Female"
    NONBINARY = "Nonbinary"
    UNLISTED = "Unlisted"


@dataclass(frozen=True)
class CelebrityInfo:
    """What GetCelebrityInfo answers, and every recognition carries."""

    name: str
    urls: tuple[str, ...] = ()
    known_gender: KnownGender | None = None


class _Entry(BaseModel):
    """One catalog entry, as the operator writes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=1024, description="The celebrity's Name.")
    urls: list[str] = Field(default_factory=list, max_length=MAX_URLS,
                            description="Urls: links to more about the celebrity.")
    known_gender: KnownGender | None = Field(None, description="KnownGender.Type.")

    @field_validator("urls")
    @classmethod
    def _short_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if len(url) > MAX_URL_CHARS:
                msg = f"a Url is at most {MAX_URL_CHARS} characters: {url[:40]}..."
                raise ValueError(msg)
        return urls


class _File(RootModel[dict[str, _Entry]]):
    """The whole file: UserId -> entry."""

    @field_validator("root")
    @classmethod
    def _ids(cls, entries: dict[str, _Entry]) -> dict[str, _Entry]:
        bad = sorted(k for k in entries if not is_celebrity_id(k))
        if bad:
            msg = (f"celebrity ids are 1-128 letters and digits (GetCelebrityInfo's Id): "
                   f"{bad[:5]}")
            raise ValueError(msg)
        return entries


class CatalogError(ValueError):
    """The catalog file cannot be read or is not a valid catalog (the daemon does not start)."""


@dataclass(frozen=True)
class Catalog:
    """Every entry, by UserId; a user with none is named by its UserId."""

    entries: Mapping[str, CelebrityInfo]

    def info(self, user_id: str) -> CelebrityInfo:
        """The user's entry, or one that names it by its UserId (no Urls, no gender)."""
        return self.entries.get(user_id) or CelebrityInfo(user_id)


def parse_catalog(text: str, source: str = "catalog") -> Catalog:
    """A catalog from YAML or JSON text; CatalogError names what is wrong."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"{source}: not YAML or JSON: {exc}"
        raise CatalogError(msg) from None
    try:
        parsed = _File.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        msg = f"{source}: {_problems(exc)}"
        raise CatalogError(msg) from None
    return Catalog({uid: CelebrityInfo(e.name, tuple(e.urls), e.known_gender)
                    for uid, e in parsed.root.items()})


def _problems(exc: ValidationError) -> str:
    """Each problem as ``where: what``, without pydantic's model names and help links."""
    parts = []
    for error in exc.errors(include_url=False)[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "the file"
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def load_catalog(path: Path | None) -> Catalog:
    """The catalog file at ``path`` (None: an empty catalog)."""
    if path is None:
        return Catalog({})
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"celebrities.catalog {path}: {exc.strerror}"
        raise CatalogError(msg) from None
    except UnicodeDecodeError as exc:
        msg = f"celebrities.catalog {path}: not UTF-8 text (byte {exc.start})"
        raise CatalogError(msg) from None
    return parse_catalog(text, f"celebrities.catalog {path}")
