"""What a processor (or a stored-video job) may open: the one owner of that rule.

A URL is judged on what would actually be connected to, not on how it is spelled:

* the host is taken from the parsed authority (after the last ``@``, as FFmpeg splits it),
  so ``http://allowed.example@169.254.169.254/`` is judged as 169.254.169.254;
* names are resolved here with the system resolver FFmpeg itself uses (``getaddrinfo``), so
  decimal, octal and hex IPv4 spellings (``2852039166``, ``0251.0376.0251.0376``) and DNS
  names come out as the real addresses; every address must pass;
* IPv4-mapped and NAT64 IPv6 forms (``::ffff:169.254.169.254``) are judged as the IPv4
  address they reach;
* the URL handed on names the checked address itself (:attr:`CheckedInput.url`), so FFmpeg
  cannot resolve the name again to something else (DNS rebinding); HTTP keeps its ``Host``
  header and gets ``max_redirects=0`` (:attr:`CheckedInput.options`), so a redirect to
  another address is refused instead of followed;
* file paths are resolved (symlinks, ``..``) and must lie under a media root.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from streamproc.config import InputsConfig

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HTTP = ("http", "https")
# Query parameters that turn a client URL into a listening or binding socket in FFmpeg.
_SERVER_PARAMS = {"listen": None, "mode": {"listener", "rendezvous"}}


class Rule(str, Enum):
    """The ``inputs.*`` setting that refused an input."""

    SCHEMES = "schemes"
    HOSTS = "hosts"
    NETWORKS = "networks"
    BLOCKED_NETWORKS = "blocked_networks"
    MEDIA_ROOTS = "media_roots"


class InputRefused(Exception):
    """The input breaks a rule; ``rule`` names the inputs.* setting that refused it."""

    def __init__(self, rule: Rule, message: str) -> None:
        super().__init__(message)
        self.rule = rule.value
        self.message = message


class InputUnresolved(OSError):
    """The host name does not resolve now (judged again at the next connect)."""


@dataclass(frozen=True)
class CheckedInput:
    """What to open: a URL naming a checked address (or a real path), and FFmpeg options."""

    url: str
    options: dict[str, str] = field(default_factory=dict)
    addresses: tuple[str, ...] = ()


def system_resolver(host: str) -> list[str]:
    """Every address ``getaddrinfo`` gives for ``host`` (as FFmpeg's TCP/UDP open does)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        msg = f"cannot resolve {host}"
        raise InputUnresolved(msg) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def effective_address(text: str) -> IP:
    """The address a connection really reaches (IPv4 inside mapped/NAT64 IPv6)."""
    ip = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _wildcard(pattern: str, value: str) -> bool:
    # Only * and ?: a "[" is literal (fnmatch would read it as a character class).
    return fnmatch.fnmatchcase(value, pattern.lower().replace("[", "[[]"))


class InputAllowlist:
    """Checks input URLs and paths against ``inputs.*``; see the module docstring."""

    def __init__(self, config: InputsConfig, extra_roots: Sequence[Path | None] = (),
                 resolver: Resolver = system_resolver) -> None:
        self._config = config
        self._schemes = set(config.schemes)
        self._networks: list[Net] = [ipaddress.ip_network(n, strict=False)
                                     for n in config.networks]
        self._blocked: list[Net] = [ipaddress.ip_network(n, strict=False)
                                    for n in config.blocked_networks]
        roots = [*config.media_roots, *(r for r in extra_roots if r is not None)]
        self._roots = [Path(os.path.realpath(Path(r).expanduser())) for r in roots]
        self._resolve = resolver

    def check(self, url: str) -> CheckedInput:
        """Judge ``url`` now; raise :class:`InputRefused` or :class:`InputUnresolved`."""
        if url.startswith("/") or url.lower().startswith("file:"):
            return self._check_path(url)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            msg = "the URL cannot be parsed"
            raise InputRefused(Rule.SCHEMES, msg) from None
        scheme = parts.scheme.lower()
        if scheme not in self._schemes:
            msg = f"scheme {scheme or '(none)'} is not allowed"
            raise InputRefused(Rule.SCHEMES, msg)
        host = (parts.hostname or "").lower()
        if not host:
            msg = "the URL names no host"
            raise InputRefused(Rule.HOSTS, msg)
        self._check_server_params(parts.query)
        literal = _literal(host)
        if literal is None and not any(_wildcard(p, host) for p in self._config.hosts):
            msg = f"host {host} matches no allowed host pattern"
            raise InputRefused(Rule.HOSTS, msg)
        addresses = [literal] if literal is not None else self._resolve(host)
        if not addresses:
            msg = f"cannot resolve {host}"
            raise InputUnresolved(msg)
        for address in addresses:
            self._check_address(host, address)
        return _pinned(parts, scheme, host, port, addresses)

    def _check_path(self, url: str) -> CheckedInput:
        path = url
        if not url.startswith("/"):
            parts = urlsplit(url)
            if parts.netloc not in ("", "localhost"):
                msg = "file URLs cannot name a host"
                raise InputRefused(Rule.MEDIA_ROOTS, msg)
            path = unquote(parts.path)
        real = Path(os.path.realpath(path))
        if not any(real == root or root in real.parents for root in self._roots):
            msg = f"{real} is not under a configured media root"
            raise InputRefused(Rule.MEDIA_ROOTS, msg)
        return CheckedInput(url=str(real))

    def _check_server_params(self, query: str) -> None:
        for key, value in parse_qsl(query, keep_blank_values=True):
            forbidden = _SERVER_PARAMS.get(key.lower(), ())
            if forbidden is None or (forbidden and value.lower() in forbidden):
                msg = f"'{key}={value}' would make the daemon listen"
                raise InputRefused(Rule.SCHEMES, msg)

    def _check_address(self, host: str, text: str) -> None:
        ip = effective_address(text)
        shown = host if host == str(ip) else f"{host} ({ip})"
        inside = [n for n in self._networks if ip.version == n.version and ip in n]
        if not inside:
            msg = f"{shown} is outside the allowed networks"
            raise InputRefused(Rule.NETWORKS, msg)
        for blocked in self._blocked:
            if ip.version == blocked.version and ip in blocked and not any(
                    n.subnet_of(blocked) for n in inside):  # type: ignore[arg-type]
                msg = f"{shown} is in blocked network {blocked}"
                raise InputRefused(Rule.BLOCKED_NETWORKS, msg)


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        return None


def _pinned(parts: SplitResult, scheme: str, host: str, port: int | None,
            addresses: list[str]) -> CheckedInput:
    """The URL with its host replaced by the first checked address, plus FFmpeg options."""
    netloc = parts.netloc
    userinfo = netloc.rpartition("@")[0] if "@" in netloc else ""
    address = effective_address(addresses[0])
    literal = f"[{address}]" if address.version == 6 else str(address)
    authority = (f"{userinfo}@" if userinfo else "") + literal + (f":{port}" if port else "")
    rest = parts.path + (f"?{parts.query}" if parts.query else "") + (
        f"#{parts.fragment}" if parts.fragment else "")
    options: dict[str, str] = {}
    if scheme in _HTTP:
        shown_host = f"[{host}]" if ":" in host else host
        options = {"max_redirects": "0",
                   "headers": f"Host: {shown_host}{f':{port}' if port else ''}\r\n"}
    return CheckedInput(url=f"{scheme}://{authority}{rest}", options=options,
                        addresses=tuple(str(effective_address(a)) for a in addresses))

