"""Test tiers from what a test really uses, and a guard that keeps the unit tier honest.

Three tiers, one marker each (assigned by ``conftest.py`` at collection):

- ``unit``: everything runs in the pytest process: no child process, no daemon (in-process
  or not), no broker, no media server, no network but loopback. Fast; run first.
- ``e2e``: starts a daemon (``Daemon`` or ``streamproc serve``), media servers, an S3
  server or another child process (ffmpeg, lint tools, pip).
- ``cluster``: Kafka itself: a broker the test reads, writes, freezes or secures (the
  ``broker`` and ``own_broker`` fixtures, its own ``EmbeddedBroker`` / ``TlsBroker``), or
  several daemon nodes (``clusterkit.Node``).

A test marked explicitly (``@pytest.mark.e2e``, or ``pytestmark`` for a module) is in that
tier. Otherwise its tier is the highest of: ``slow`` (e2e at least), the fixtures it requests
(``FIXTURE_TIERS``, or the code of fixtures defined in test modules), and what its code
reaches: the names it uses, followed through the helpers in ``tests/`` (never into
``streamproc``), checked against ``HEAVY`` and ``HEAVY_MODULES``. That reading can miss a
process started deep inside ``streamproc``, and an explicit ``unit`` mark could be wrong;
:func:`unit_guard` catches both at run time, failing a unit-tier test that spawns a process,
starts a daemon or connects beyond loopback, so that the marker cannot lie.
"""

from __future__ import annotations

import inspect
import ipaddress
import os
import socket
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

UNIT, E2E, CLUSTER = "unit", "e2e", "cluster"
TIERS = (UNIT, E2E, CLUSTER)  # in rising order: a test's tier is the highest it reaches
TESTS = Path(__file__).resolve().parent

# conftest.py's fixtures. ``daemon``/``rek`` are e2e although the session daemon is given the
# session broker (its processors publish there): a test that reads Kafka requests ``broker``.
FIXTURE_TIERS = {
    "broker": CLUSTER, "own_broker": CLUSTER,
    "daemon": E2E, "rek": E2E, "collection": E2E, "live": E2E,
    "engine": UNIT, "h": UNIT,
}

# Classes and functions whose use puts a test in a tier, by qualified name.
HEAVY = {
    "streamproc.daemon.core.Daemon": E2E,
    "streamproc.tools.livestream.LoopingStream": E2E,
    "streamproc.tools.mediaservers.SupervisedServer": E2E,
    "streamproc.tools.mediaservers.RtmpServer": E2E,
    "streamproc.tools.mediaservers.SrtServer": E2E,
    "streamproc.tools.mediaservers.ProcessServer": E2E,
    "streamproc.tools.sharedservers.RtspServer": E2E,
    "streamproc.tools.sharedservers.HlsServer": E2E,
    "streamproc.tools.camera.transcode": E2E,
    "streamproc.tools.camera.run": E2E,
    "streamproc.tools.broker.EmbeddedBroker": CLUSTER,
    "streamproc.tools.clusterkit.Node": CLUSTER,
    "tls_broker.TlsBroker": CLUSTER,
}
# Modules whose every use starts processes or servers.
HEAVY_MODULES = {
    "subprocess": E2E, "multiprocessing": E2E, "moto.server": E2E,
    "streamproc.tools.mediaservers": E2E, "streamproc.tools.sharedservers": E2E,
}


def highest(tiers: Iterator[str] | list[str] | set[str]) -> str:
    """The highest of ``tiers`` (``unit`` for none)."""
    return max(tiers, key=TIERS.index, default=UNIT)


def _qualname(obj: object) -> str:
    module = getattr(obj, "__module__", None) or ""
    return f"{module}.{getattr(obj, '__qualname__', '')}"


def _is_helper(obj: object) -> bool:
    """Defined in a file under tests/ (a test module or a helper), so worth reading."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    path = getattr(module, "__file__", None)
    return path is not None and Path(path).resolve().parent == TESTS


class Reader:
    """Reads code for the tiers it reaches; remembers each code object it has read."""

    def __init__(self) -> None:
        self._seen: dict[types.CodeType, str] = {}

    def function(self, fn: Callable[..., Any]) -> str:
        """The tier ``fn``'s code reaches (its nested functions and lambdas included)."""
        fn = inspect.unwrap(fn)
        code = getattr(fn, "__code__", None)
        if code is None:
            return UNIT
        return self._code(code, getattr(fn, "__globals__", {}))

    def _code(self, code: types.CodeType, names: dict[str, Any]) -> str:
        if code in self._seen:
            return self._seen[code]
        self._seen[code] = UNIT  # a recursive helper reads as what the rest reaches
        found = [self._name(n, code.co_names, names) for n in code.co_names]
        found += [self._code(c, names) for c in code.co_consts if isinstance(c, types.CodeType)]
        self._seen[code] = highest(found)
        return self._seen[code]

    def _name(self, name: str, attributes: tuple[str, ...], names: dict[str, Any]) -> str:
        if name not in names:
            return self._imported(name, attributes)
        obj = names[name]
        if isinstance(obj, types.ModuleType):
            return self._module(obj, attributes)
        return self._object(obj)

    def _imported(self, name: str, attributes: tuple[str, ...]) -> str:
        """A name no global holds: maybe a module imported inside the function (``from m import
        x`` puts ``m`` and ``x`` in its names), imported yet or not."""
        if name in HEAVY_MODULES:
            return HEAVY_MODULES[name]
        found = [HEAVY.get(f"{name}.{a}", UNIT) for a in attributes]
        module = sys.modules.get(name)
        if module is not None:
            found.append(self._module(module, attributes))
        return highest(found)

    def _module(self, module: types.ModuleType, attributes: tuple[str, ...]) -> str:
        """A module used as ``module.attr``: the module itself, or the attributes named."""
        if module.__name__ in HEAVY_MODULES:
            return HEAVY_MODULES[module.__name__]
        members = vars(module)  # not getattr: a module's __getattr__ may warn or import
        found = [self._object(members[a]) for a in attributes if a in members]
        return highest(found)

    def _object(self, obj: object) -> str:
        tier = HEAVY.get(_qualname(obj))
        if tier is not None:
            return tier
        module = getattr(obj, "__module__", None) or ""
        if module in HEAVY_MODULES:
            return HEAVY_MODULES[module]
        if not _is_helper(obj):
            return UNIT
        if inspect.isclass(obj):
            return highest(self.function(f) for f in vars(obj).values() if inspect.isfunction(f))
        if inspect.isfunction(obj):
            return self.function(obj)
        return UNIT


def _fixture_tier(item: pytest.Item, name: str, reader: Reader, seen: set[str]) -> str:
    if name in FIXTURE_TIERS:
        return FIXTURE_TIERS[name]
    if name in seen:
        return UNIT
    seen.add(name)
    info = getattr(item, "_fixtureinfo", None)  # pytest.Function's; no public accessor
    defs = info.name2fixturedefs.get(name, ()) if info is not None else ()
    found = []
    for fixturedef in defs:
        if not _is_helper(fixturedef.func):
            continue  # pytest's own (tmp_path, monkeypatch, request ...)
        found.append(reader.function(fixturedef.func))
        found += [_fixture_tier(item, arg, reader, seen) for arg in fixturedef.argnames]
    return highest(found)


def tier_of(item: pytest.Item, reader: Reader) -> str:
    """The tier ``item`` belongs in (see the module docstring)."""
    explicit = [m.name for m in item.iter_markers() if m.name in TIERS]
    if explicit:
        return highest(explicit)
    found = [E2E] if item.get_closest_marker("slow") is not None else []
    function = getattr(item, "function", None)
    if function is not None:
        found.append(reader.function(function))
    info = getattr(item, "_fixtureinfo", None)
    names = info.initialnames if info is not None else ()
    found += [_fixture_tier(item, n, reader, set()) for n in names]
    return highest(found)


class UnitTierViolation(RuntimeError):
    """A unit-tier test did what only the e2e or cluster tiers may."""


def _loopback(address: object) -> bool:
    host = address[0] if isinstance(address, tuple) and address else address
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False  # a name to resolve: beyond loopback as far as this test knows
    # The kernel connects the unspecified address (0.0.0.0, ::) to the local host.
    return ip.is_loopback or ip.is_unspecified


@pytest.fixture
def unit_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """In a unit-tier test: no process spawned, no daemon started, no non-loopback connect.

    Each refusal raises :class:`UnitTierViolation` where it happens and is also recorded, so
    that a test whose code swallows the exception still fails at teardown.
    """
    seen: list[str] = []

    def refuse(what: str) -> Callable[..., Any]:
        def refused(*_: object, **__: object) -> Any:
            seen.append(what)
            msg = (f"a unit-tier test {what}: mark it @pytest.mark.e2e or cluster "
                   "(tests/tiers.py)")
            raise UnitTierViolation(msg)
        return refused

    spawn = refuse("spawned a process")
    monkeypatch.setattr(subprocess.Popen, "_execute_child", spawn)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, spawn)
    from streamproc.daemon import Daemon
    monkeypatch.setattr(Daemon, "start", refuse("started a daemon"))
    _guard_connect(monkeypatch, refuse("connected beyond loopback"))
    yield seen
    if seen:
        pytest.fail(f"unit tier: {', '.join(sorted(set(seen)))} (tests/tiers.py)", pytrace=False)


def _guard_connect(monkeypatch: pytest.MonkeyPatch, refused: Callable[..., Any]) -> None:
    for method in ("connect", "connect_ex"):
        real = getattr(socket.socket, method)

        def checked(sock: socket.socket, address: object, *, _real: Any = real) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
                return refused()
            return _real(sock, address)

        monkeypatch.setattr(socket.socket, method, checked)
