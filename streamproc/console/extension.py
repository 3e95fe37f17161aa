"""The console's extension point: a part that serves routes of its own under /console.

An extension (the live feed, job frames, the metrics snapshot) gets a
:class:`ConsoleAccess` (the signed-in session of a request, what its key may do, the
console's refusals) and gives back :class:`ExtraRoute` values; :class:`~.routes.Console`
puts each behind the same guard (Host, cross-site checks, security headers) as its own
routes. A new extension plugs in through ``console_extensions`` without editing the
console's routing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from streamproc.console.sessions import Session

if TYPE_CHECKING:
    from streamproc.console.routes import Refusals


class ConsoleAccess(Protocol):
    """What an extension may ask of the console about a request."""

    @property
    def refusals(self) -> Refusals:
        """The console's refusals (counted by reason, logged, no secret)."""

    def session_of(self, request: Request) -> Session | None:
        """The request's signed-in session, or None (expired, signed out, key removed)."""

    def allows(self, session: Session, operation: str, params: dict[str, Any]) -> bool:
        """Whether the session's key may call ``operation`` with ``params``, here.

        As the API would judge it, and only for an operation the daemon serves at all.
        """


@dataclass(frozen=True)
class ExtraRoute:
    """One route an extension serves: a path under /console, its handler, its methods."""

    path: str
    endpoint: Callable[[Request], Awaitable[Response]]
    methods: tuple[str, ...] = ("GET",)


class Extension(Protocol):
    """A console part with routes of its own."""

    def routes(self, access: ConsoleAccess) -> list[ExtraRoute]:
        """The routes to serve, each given ``access`` to judge its requests."""

    def close(self) -> None:
        """The daemon is stopping: end streams, stop work under way (never blocks)."""
