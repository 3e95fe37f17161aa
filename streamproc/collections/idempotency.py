"""ClientRequestToken rules: the same token and request get the first response again.

The request is compared by a digest of its effective parameters (defaults filled in), so a
retry that spells a default out is still the same request. A token reused for a different
request of the same operation is IdempotentParameterMismatchException; tokens are scoped
per operation and remembered for ``IDEMPOTENCY_WINDOW_S``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from streamproc.errors import IdempotentParameterMismatchException
from streamproc.storage.requests import RequestLog, SavedRequest


def request_digest(request: dict[str, Any]) -> str:
    """A stable digest of a request's effective parameters."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Idempotency:
    """Looks tokens up and prepares the record a change saves with itself."""

    def __init__(self, log: RequestLog) -> None:
        self._log = log

    def replay(self, operation: str, token: str | None, request: dict[str, Any]
               ) -> dict[str, Any] | None:
        """The earlier response to this token and request, None if the token is new."""
        if token is None:
            return None
        saved = self._log.find(operation, token)
        if saved is None:
            return None
        if saved.request != request_digest(request):
            raise IdempotentParameterMismatchException(
                f"ClientRequestToken {token} was already used for a different {operation} "
                "request; use a new token for a new request")
        return saved.response

    @staticmethod
    def record(operation: str, token: str | None, collection_id: str,
               request: dict[str, Any], response: dict[str, Any]) -> SavedRequest | None:
        """What to save with the change (None without a token)."""
        if token is None:
            return None
        return SavedRequest(operation, token, collection_id, request_digest(request), response)
