"""IAM-style identity policies for access keys: parsing and evaluation, pure (no I/O).

Evaluated as IAM evaluates identity policies: an explicit ``Deny`` that matches wins; else
the request is allowed only if an ``Allow`` matches every resource it touches; else it is
implicitly denied. ``Action``/``NotAction`` and ``Resource``/``NotResource`` take ``*``
(any run of characters) and ``?`` (one character); actions match case-insensitively,
resources (ARNs) case-sensitively. ``Condition`` and ``Principal`` are refused rather than
ignored: silently dropping a condition would widen an Allow or narrow a Deny.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

VERSIONS = ("2012-10-17", "2008-10-17")
_ALLOWED_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource"}


class PolicyError(ValueError):
    """A policy document that cannot be used (the message says where and why)."""


class Decision(str, Enum):
    """The outcome of evaluating a request."""

    ALLOW = "allow"
    EXPLICIT_DENY = "explicit"  # a Deny statement matched
    IMPLICIT_DENY = "implicit"  # nothing allowed it


def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@dataclass(frozen=True)
class _Match:
    patterns: tuple[re.Pattern[str], ...]
    negated: bool  # NotAction / NotResource

    def __call__(self, value: str) -> bool:
        hit = any(p.fullmatch(value) for p in self.patterns)
        return hit != self.negated

    @property
    def matches_everything(self) -> bool:
        """A plain ``*`` among the patterns (``Resource: "*"``): every value matches."""
        return not self.negated and any(p.pattern == ".*" for p in self.patterns)


@dataclass(frozen=True)
class Statement:
    """One statement: its effect and what it matches."""

    allow: bool
    action: _Match
    resource: _Match

    def matches(self, action: str, resource: str) -> bool:
        """True if this statement applies to ``action`` on ``resource``."""
        return self.action(action) and self.resource(resource)


@dataclass(frozen=True)
class Policy:
    """A parsed policy document."""

    statements: tuple[Statement, ...]


def _strings(value: Any, where: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i
                                                           for i in items):
        msg = f"{where} must be a non-empty string or list of strings"
        raise PolicyError(msg)
    return items


def _element(raw: dict[str, Any], name: str, where: str, check: Any) -> _Match:
    has, has_not = name in raw, f"Not{name}" in raw
    if has == has_not:
        msg = f"{where}: exactly one of {name} and Not{name} is required"
        raise PolicyError(msg)
    key = name if has else f"Not{name}"
    values = _strings(raw[key], f"{where}.{key}")
    for value in values:
        check(value, f"{where}.{key}")
    return _Match(tuple(_pattern(v, name == "Action") for v in values), negated=has_not)


def _check_action(value: str, where: str) -> None:
    if value != "*" and not re.fullmatch(r"[A-Za-z0-9*?-]+:[A-Za-z0-9*?]+", value):
        msg = f"{where}: {value!r} is not an action (service:Operation, wildcards * ?)"
        raise PolicyError(msg)


def _check_resource(value: str, where: str) -> None:
    if value != "*" and not value.startswith("arn:"):
        msg = f"{where}: {value!r} is not an ARN pattern or *"
        raise PolicyError(msg)


def _statement(raw: Any, where: str) -> Statement:
    if not isinstance(raw, dict):
        msg = f"{where} must be a mapping"
        raise PolicyError(msg)
    unknown = set(raw) - _ALLOWED_KEYS
    if unknown:
        msg = f"{where}: unsupported element(s) {sorted(unknown)}"
        raise PolicyError(msg)
    if raw.get("Effect") not in ("Allow", "Deny"):
        msg = f"{where}.Effect must be Allow or Deny"
        raise PolicyError(msg)
    return Statement(allow=raw["Effect"] == "Allow",
                     action=_element(raw, "Action", where, _check_action),
                     resource=_element(raw, "Resource", where, _check_resource))


def parse_policy(document: Any, where: str = "policy") -> Policy:
    """Parse an IAM policy document (a mapping, as loaded from JSON or YAML)."""
    if not isinstance(document, dict):
        msg = f"{where} must be a mapping with Version and Statement"
        raise PolicyError(msg)
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        msg = f"{where}: unsupported element(s) {sorted(unknown)}"
        raise PolicyError(msg)
    if document.get("Version", VERSIONS[0]) not in VERSIONS:
        msg = f"{where}.Version must be one of {', '.join(VERSIONS)}"
        raise PolicyError(msg)
    raw = document.get("Statement")
    items = [raw] if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not items:
        msg = f"{where}.Statement must be a statement or a non-empty list of them"
        raise PolicyError(msg)
    return Policy(tuple(_statement(s, f"{where}.Statement[{i}]") for i, s in enumerate(items)))


def evaluate(policy: Policy, action: str, resources: Sequence[str]
             ) -> tuple[Decision, str | None]:
    """Decide ``action`` on ``resources``; also returns the resource that was denied."""
    denies = [s for s in policy.statements if not s.allow]
    allows = [s for s in policy.statements if s.allow]
    for resource in resources:
        if _any(denies, action, resource):
            return Decision.EXPLICIT_DENY, resource
    for resource in resources:
        if not _any(allows, action, resource):
            return Decision.IMPLICIT_DENY, resource
    return Decision.ALLOW, None


def _any(statements: Iterable[Statement], action: str, resource: str) -> bool:
    return any(s.matches(action, resource) for s in statements)


def may_allow_somewhere(policy: Policy, action: str) -> bool:
    """Whether ``action`` might be allowed on some resource (for the console's controls).

    True when an Allow names the action and no Deny names it on every resource (``*``).
    Patterns are not intersected, so it can say True where every real request is denied
    (an Allow on ``lobby-*`` under a Deny on ``lobby*``): the request is still judged by
    :func:`evaluate` when it is made, and its AccessDeniedException shown as it is.
    """
    if any(not s.allow and s.action(action) and s.resource.matches_everything
           for s in policy.statements):
        return False
    return any(s.allow and s.action(action) for s in policy.statements)
