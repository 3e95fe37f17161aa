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
* the unspecified addresses (``0.0.0.0/8``, ``::``, also mapped) are judged as the
  loopback address a connect to them reaches (127.0.0.1, ::1);
* options are read from the URL as FFmpeg's protocols read them (:func:`ffmpeg_options`):
  tcp.c, udp.c and libsrt.c take everything after the first ``?`` anywhere in the URL,
  fragment included (``tcp://h:1#?listen=1`` listens), percent-decode names and values
  (``%6cisten``) and apply every one, so a fragment is refused outright and an option that
  makes a protocol listen or bind (:data:`_SERVER_OPTIONS`) is refused under any spelling;
* file paths are resolved (symlinks, ``..``) and must lie under a media root.

A ``udp://`` input always listens: FFmpeg binds its port on every interface and takes
datagrams from anyone, so udp is not among the default schemes.
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
from urllib.parse import SplitResult, unquote, unquote_plus, urlsplit

from streamproc.config import InputsConfig

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Net = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str], list[str]]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_UNSPECIFIED_V4 = ipaddress.ip_network("0.0.0.0/8")
_LOOPBACK = {4: ipaddress.ip_address("127.0.0.1"), 6: ipaddress.ip_address("::1")}
_HTTP = ("http", "https")
_ANY_VALUE = None
# Options that turn a client URL into a listening or bound socket in FFmpeg, per scheme:
# name -> the values that do (None: any value). ``listen`` is refused under every scheme
# (HTTP's and RTMP's server modes, tcp's, TLS's share the name). Names compare in lower case.
_LISTEN: dict[str, frozenset[str] | None] = {"listen": _ANY_VALUE}
_SERVER_OPTIONS: dict[str, dict[str, frozenset[str] | None]] = {
    "tcp": {"listen_timeout": _ANY_VALUE, "local_addr": _ANY_VALUE, "local_port": _ANY_VALUE},
    "udp": {"localaddr": _ANY_VALUE, "localport": _ANY_VALUE, "local_port": _ANY_VALUE},
    "srt": {"mode": frozenset({"listener", "rendezvous"})},
    "rtmp": {"rtmp_listen": _ANY_VALUE},
    "rtmps": {"rtmp_listen": _ANY_VALUE},
}


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


def reached_address(ip: IP) -> IP:
    """Where a connect to ``ip`` goes: the unspecified addresses reach the local host."""
    if (ip.version == 4 and ip in _UNSPECIFIED_V4) or (ip.version == 6 and int(ip) == 0):
        return _LOOPBACK[ip.version]
    return ip


def ffmpeg_options(url: str) -> list[tuple[str, str]]:
    """The options FFmpeg's network protocols read from ``url``, every one, in order.

    As ``strchr(uri, '?')`` and ``ff_parse_opts_from_query_string`` do: the text after the
    first ``?`` anywhere (a fragment included), split on ``&``, names and values
    percent-decoded with ``+`` as a space, each ending at a NUL as a C string does.
    """
    _, mark, query = url.partition("?")
    if not mark:
        return []
    return [(_c_string(name), _c_string(value))
            for name, _, value in (item.partition("=") for item in query.split("&"))]


def _c_string(text: str) -> str:
    return unquote_plus(text).split("\0", 1)[0]


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
        self._check_scheme(scheme)
        self._check_options(scheme, url)
        host = (parts.hostname or "").lower()
        if not host:
            msg = "the URL names no host"
            raise InputRefused(Rule.HOSTS, msg)
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
            # The path as given: where a symlink leads is not the caller's to learn.
            msg = f"{path} is not under a configured media root"
            raise InputRefused(Rule.MEDIA_ROOTS, msg)
        return CheckedInput(url=str(real))

    def _check_scheme(self, scheme: str) -> None:
        if scheme not in self._schemes:
            msg = f"scheme {scheme or '(none)'} is not allowed"
            if scheme == "udp":
                msg += (": a udp:// input listens, taking datagrams from anyone on its port "
                        "(list udp in inputs.schemes to allow that)")
            raise InputRefused(Rule.SCHEMES, msg)

    @staticmethod
    def _check_options(scheme: str, url: str) -> None:
        """No fragment, and no option (as FFmpeg reads them) that makes it listen or bind."""
        if "#" in url:
            msg = ("the URL has a fragment ('#'), which FFmpeg would read options from; "
                   "leave it out")
            raise InputRefused(Rule.SCHEMES, msg)
        forbidden = {**_LISTEN, **_SERVER_OPTIONS.get(scheme, {})}
        for name, value in ffmpeg_options(url):
            if name.lower() not in forbidden:
                continue
            values = forbidden[name.lower()]
            if values is _ANY_VALUE or value.lower() in values:
                msg = f"option {name}={value} would make the daemon listen or bind locally"
                raise InputRefused(Rule.SCHEMES, msg)

    def _check_address(self, host: str, text: str) -> None:
        address = effective_address(text)
        ip = reached_address(address)
        shown = host if host == str(address) else f"{host} ({address})"
        if ip != address:
            shown = f"{shown}, which reaches {ip},"
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
    rest = parts.path + (f"?{parts.query}" if parts.query else "")  # fragments: refused
    options: dict[str, str] = {}
    if scheme in _HTTP:
        shown_host = f"[{host}]" if ":" in host else host
        options = {"max_redirects": "0",
                   "headers": f"Host: {shown_host}{f':{port}' if port else ''}\r\n"}
    return CheckedInput(url=f"{scheme}://{authority}{rest}", options=options,
                        addresses=tuple(str(effective_address(a)) for a in addresses))

