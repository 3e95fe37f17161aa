"""The web console, served by the daemon beside the API: its page, sessions and call path.

It sits above the API layer and uses it as a client would (``ControlApi.call``), so every
rule, policy and error is the API's own.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from streamproc import __version__
from streamproc.api.access import AccessControl
from streamproc.api.exposure import console_allowed
from streamproc.api.transport import ControlApi
from streamproc.config import Config
from streamproc.console.routes import Console, console_hosts
from streamproc.console.sessions import SessionStore, WhenFull


def console_routes(config: Config, api: ControlApi, access: AccessControl | None,
                   address: str) -> list[BaseRoute]:
    """The console's routes for an API bound to ``address``; none where it must be off.

    Fails closed: with auth on, ``access`` must be the API's access control (ValueError).
    """
    if config.auth.enabled and access is None:
        msg = "console_routes: auth is on, so the console needs the API's AccessControl"
        raise ValueError(msg)
    if not config.console.enabled or not console_allowed(config, address):
        return []
    settings = config.console
    store = SessionStore(settings.max_sessions, settings.session_ttl_s,
                         WhenFull(settings.when_full), max_per_key=settings.max_sessions_per_key)
    console = Console(api, access if config.auth.enabled else None, store,
                      secure_cookie=config.server.tls_certfile is not None,
                      version=__version__,
                      hosts=console_hosts(address, config.server.host, settings.allowed_hosts))
    return console.routes()
