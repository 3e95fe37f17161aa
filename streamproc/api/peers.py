"""Who a connection or a request body belongs to, and how many each client holds.

A client is an address as an attacker pays for it: one IPv4 address, or one IPv6 /64 (the
least a site is given, so single IPv6 addresses cost nothing). The counts live on the event
loop, which is single-threaded: no locks.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


def client_of(host: str | None) -> str:
    """The client a peer address belongs to ("" when the transport names none)."""
    if not host:
        return ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Tally:
    """How many of something each owner holds now; an owner back at zero is forgotten."""

    def __init__(self) -> None:
        self._held: dict[str, int] = {}

    def __getitem__(self, owner: str) -> int:
        return self._held.get(owner, 0)

    def add(self, owner: str) -> None:
        """One more held by ``owner``."""
        self._held[owner] = self._held.get(owner, 0) + 1

    def remove(self, owner: str) -> None:
        """One fewer held by ``owner``."""
        left = self._held.get(owner, 0) - 1
        if left > 0:
            self._held[owner] = left
        else:
            self._held.pop(owner, None)


@dataclass(frozen=True)
class ConnectionLimits:
    """How many connections a server keeps open, in all and from one client."""

    total: int
    per_client: int


class OpenConnections:
    """The connections one server holds; refuses those past its limits."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open = 0
        self._by_client = Tally()

    def admit(self, client: str) -> str | None:
        """Count a new connection from ``client``; or the setting it is past, uncounted."""
        if self._open >= self.limits.total:
            return "max_connections"
        if self._by_client[client] >= self.limits.per_client:
            return "max_connections_per_client"
        self._open += 1
        self._by_client.add(client)
        return None

    def release(self, client: str) -> None:
        """An admitted connection from ``client`` is gone."""
        self._open -= 1
        self._by_client.remove(client)
