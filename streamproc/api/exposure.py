"""No open API by accident: a non-loopback bind needs authentication or an explicit opt-out."""

from __future__ import annotations

import ipaddress
import logging
import socket

from streamproc.config import Config

logger = logging.getLogger(__name__)

HOW_TO = (
    "configure access keys (auth.enabled: true with auth.access_keys or "
    "auth.access_keys_file; secrets as env:VAR or file:PATH), or bind 127.0.0.1, or opt out "
    "explicitly with --allow-unauthenticated / server.allow_unauthenticated: true")


class ExposureError(Exception):
    """The configuration would serve an unauthenticated API beyond this machine."""


def is_loopback(host: str) -> bool:
    """True if every address ``host`` binds to is a loopback address.

    The empty host, ``0.0.0.0`` and ``::`` mean every interface. A name is resolved the way
    the bind will resolve it; a name that does not resolve counts as exposed.
    """
    if not host.strip():
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(
        ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def check_exposure(config: Config) -> None:
    """Raise :class:`ExposureError` for an open non-loopback API; warn when opted out."""
    host = config.server.host
    if config.auth.enabled or is_loopback(host):
        return
    if config.server.allow_unauthenticated:
        logger.warning("the API on %s is open to anyone who can reach it: authentication "
                       "is off (server.allow_unauthenticated)", host or "all interfaces")
        return
    msg = (f"refusing to serve {host or 'all interfaces'} without authentication: "
           f"{HOW_TO}")
    raise ExposureError(msg)
