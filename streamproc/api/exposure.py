"""No open API by accident: a non-loopback bind needs authentication or an explicit opt-out."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable

from streamproc.config import Config

logger = logging.getLogger(__name__)

HOW_TO = (
    "configure access keys (auth.enabled: true with auth.access_keys or "
    "auth.access_keys_file; secrets as env:VAR or file:PATH), or bind 127.0.0.1, or opt out "
    "explicitly with --allow-unauthenticated / server.allow_unauthenticated: true")

# host name -> every address it names; raises OSError (socket.gaierror) when it names none.
Resolver = Callable[[str], list[str]]


class ExposureError(Exception):
    """The configuration would serve an unauthenticated API beyond this machine."""


def resolve_host(host: str) -> list[str]:
    """Every address ``host`` names, of every family: the listener binds one of them."""
    return [str(info[4][0]) for info in socket.getaddrinfo(host, None,
                                                           proto=socket.IPPROTO_TCP)]


def _loopback_address(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%")[0])  # a scope id binds no other host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def is_loopback(host: str, resolve: Resolver = resolve_host) -> bool:
    """True if every address ``host`` binds to is a loopback address.

    The empty host, ``0.0.0.0`` and ``::`` mean every interface. A name counts only if
    *all* its addresses are loopback (one LAN address among them exposes the API); a name
    that resolves to nothing counts as exposed, and one that does not resolve raises the
    resolver's ``OSError``.
    """
    if not host.strip():
        return False
    try:
        return _loopback_address(host.strip("[]"))
    except ValueError:
        pass  # a name, not an address literal
    addresses = resolve(host)
    return bool(addresses) and all(_loopback_address(a) for a in addresses)


def check_bound(config: Config, address: str) -> None:
    """Raise :class:`ExposureError` if the socket bound an address the check did not allow.

    The name is resolved again when the socket binds: a name whose addresses changed
    between :func:`check_exposure` and the bind is judged by what was really bound.
    """
    if config.auth.enabled or config.server.allow_unauthenticated:
        return
    if not _loopback_address(address):
        msg = (f"refusing to serve: --host {config.server.host} bound {address}, which is not "
               f"loopback, without authentication: {HOW_TO}")
        raise ExposureError(msg)


def check_exposure(config: Config, resolve: Resolver = resolve_host) -> None:
    """Raise :class:`ExposureError` for an open non-loopback API; warn when opted out."""
    host = config.server.host
    if config.auth.enabled:
        return
    try:
        loopback = is_loopback(host, resolve)
    except OSError as exc:
        msg = (f"refusing to serve: --host {host} does not resolve ({exc}), so it cannot be "
               "judged loopback-only; give an address or a name this machine resolves")
        raise ExposureError(msg) from None
    if loopback:
        return
    if config.server.allow_unauthenticated:
        logger.warning("the API on %s is open to anyone who can reach it: authentication "
                       "is off (server.allow_unauthenticated)", host or "all interfaces")
        return
    msg = (f"refusing to serve {host or 'all interfaces'} without authentication: "
           f"{HOW_TO}")
    raise ExposureError(msg)


def console_allowed(config: Config, address: str) -> bool:
    """Whether the web console may be served beside the API bound to ``address``.

    The console has no rules of its own to open anything: with auth on it signs in with an
    access key; with auth off it serves only where the API is loopback-only. An API opened
    beyond loopback without auth (``allow_unauthenticated``) gets no console, as a bind
    that :func:`check_bound` judges by the address really bound.
    """
    if config.auth.enabled:
        return True
    try:
        return _loopback_address(address)
    except ValueError:
        return False
