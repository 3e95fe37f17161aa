"""Access keys and their policies: loaded at start, swapped whole on reload (SIGHUP).

The files are read and checked completely before anything is replaced, so a reload that
fails leaves the previous keys and policies in force. Readers take one reference to the
current :class:`AccessState` (an atomic read), so no lock is needed on the request path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streamproc.api.policy import (
    Decision,
    Policy,
    PolicyError,
    evaluate,
    may_allow_somewhere,
    parse_policy,
)
from streamproc.api.resources import action_name, request_resources
from streamproc.config import AuthConfig, resolve_secret
from streamproc.errors import AccessDeniedException
from streamproc.metrics import ApiMetrics
from streamproc.rekognition.constants import Arns

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessState:
    """Secrets by access key id, and the policies of the keys that have one."""

    secrets: dict[str, str] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)


def _mapping(path: Path, what: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        msg = f"{what} {path}: {exc.strerror}"
        raise PolicyError(msg) from None
    except yaml.YAMLError as exc:
        # The mark says where; the problem text never quotes a secret's value.
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        msg = f"{what} {path}: not valid YAML/JSON{where}"
        raise PolicyError(msg) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict) or not all(isinstance(k, str) for k in loaded):
        msg = f"{what} {path}: must map access key ids to entries"
        raise PolicyError(msg)
    return loaded


def read_state(auth: AuthConfig) -> AccessState:
    """Read keys (config + keys file) and policies; raise :class:`PolicyError` if unusable."""
    secrets = dict(auth.access_keys)
    if auth.access_keys_file is not None:
        for key_id, value in _mapping(auth.access_keys_file, "access keys file").items():
            if not isinstance(value, str) or not value:
                msg = f"access keys file: the secret of {key_id} must be a non-empty string"
                raise PolicyError(msg)
            try:
                secrets[key_id] = resolve_secret(value)
            except ValueError as exc:
                msg = f"access keys file: {key_id}: {exc}"
                raise PolicyError(msg) from None
    policies: dict[str, Policy] = {}
    if auth.policy_file is not None:
        for key_id, document in _mapping(auth.policy_file, "policy file").items():
            policies[key_id] = parse_policy(document, f"policy of {key_id}")
    unknown = sorted(set(policies) - set(secrets))
    if unknown:
        logger.warning("policies for unknown access keys (ignored): %s", ", ".join(unknown))
    return AccessState(secrets, policies)


class AccessControl:
    """Owns the current keys and policies; verifies nothing itself (see auth.py)."""

    def __init__(self, auth: AuthConfig, arns: Arns, metrics: ApiMetrics) -> None:
        self._auth = auth
        self._arns = arns
        self._metrics = metrics
        self._state = AccessState()

    def load(self) -> None:
        """First read at start; raises :class:`PolicyError` so the daemon refuses to start."""
        self._state = read_state(self._auth)

    def reload(self) -> bool:
        """Re-read the files; on any error keep what is in force and log why."""
        try:
            state = read_state(self._auth)
        except PolicyError as exc:
            logger.error("reload refused, previous keys and policies kept: %s", exc)
            self._metrics.reloads.labels("error").inc()
            return False
        self._state = state
        self._metrics.reloads.labels("ok").inc()
        logger.info("access control reloaded: %d keys, %d with a policy",
                    len(state.secrets), len(state.policies))
        return True

    def secret(self, key_id: str) -> str | None:
        """The secret of an access key (for SigV4 verification)."""
        return self._state.secrets.get(key_id)

    def allows(self, key_id: str, operation: str, params: dict[str, Any]) -> bool:
        """Whether :meth:`authorize` would pass this request; no log line, no metric.

        For the console's controls (a button the key may not use is not shown); the call
        itself is still authorized when it is made.
        """
        policy = self._state.policies.get(key_id)
        if policy is None:
            return key_id in self._state.secrets
        resources = request_resources(operation, params, self._arns)
        return evaluate(policy, action_name(operation), resources)[0] is Decision.ALLOW

    def allows_somewhere(self, key_id: str, operation: str) -> bool:
        """Whether the key might be allowed ``operation`` on some resource (no log, no metric).

        For the console's controls where the resource is not known yet (the create form of
        a key allowed only ``streamprocessor/lobby-*``); see :func:`may_allow_somewhere`.
        """
        policy = self._state.policies.get(key_id)
        if policy is None:
            return key_id in self._state.secrets
        return may_allow_somewhere(policy, action_name(operation))

    def authorize(self, key_id: str, operation: str, params: dict[str, Any]) -> None:
        """Raise AccessDeniedException unless the key's policy allows this request."""
        policy = self._state.policies.get(key_id)
        if policy is None:
            return  # keys without a policy keep full access
        action = action_name(operation)
        decision, resource = evaluate(policy, action, request_resources(
            operation, params, self._arns))
        if decision is Decision.ALLOW:
            return
        self._metrics.denied.labels(operation, decision.value).inc()
        logger.warning("access denied: key %s, %s on %s (%s deny)", key_id, action, resource,
                       decision.value)
        why = ("with an explicit deny in an identity-based policy"
               if decision is Decision.EXPLICIT_DENY
               else f"because no identity-based policy allows the {action} action")
        raise AccessDeniedException(
            f"User: {key_id} is not authorized to perform: {action} on resource: "
            f"{resource} {why}")
