"""``--host`` judged by every address it binds (model-free; resolution injected)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable

import pytest
from conftest import SHARED

from streamproc.api.exposure import ExposureError, check_bound, check_exposure, is_loopback
from streamproc.config import Config, load_config


def _names(table: dict[str, list[str]]) -> Callable[[str], list[str]]:
    """A resolver over a fixed table; a name it lacks does not resolve (like gaierror)."""
    def resolve(host: str) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]
    return resolve


NAMES = _names({
    "split.example": ["127.0.0.1", "192.168.1.20"],   # loopback and a LAN address
    "lan-first.example": ["10.0.0.5", "127.0.0.1"],
    "v6-split.example": ["::1", "2001:db8::7"],
    "wild.example": ["0.0.0.0"],
    "loop.example": ["127.0.0.1", "127.0.1.1", "::1"],
    "mapped.example": ["::ffff:127.0.0.1"],
    "scoped.example": ["fe80::1%eth0"],
    "nothing.example": [],
})


def _config(host: str, **extra: object) -> Config:
    return load_config(None, {"server.host": host, **extra})


@pytest.mark.parametrize("host", ["split.example", "lan-first.example", "v6-split.example",
                                  "wild.example", "scoped.example", "nothing.example"])
def test_a_name_with_any_address_off_loopback_is_exposed(host: str) -> None:
    assert not is_loopback(host, NAMES)
    with pytest.raises(ExposureError, match=f"refusing to serve {host} without auth"):
        check_exposure(_config(host), NAMES)


@pytest.mark.parametrize("host", ["loop.example", "mapped.example", "127.0.0.1", "::1",
                                  "[::1]", "127.0.0.2"])
def test_a_name_or_address_whose_every_address_is_loopback_is_allowed(host: str) -> None:
    assert is_loopback(host, NAMES)
    check_exposure(_config(host), NAMES)  # does not raise


@pytest.mark.parametrize("host", ["", " ", "0.0.0.0", "::", "192.168.1.20"])  # noqa: S104
def test_wildcards_and_lan_literals_are_exposed_without_asking_the_resolver(host: str
                                                                           ) -> None:
    def no_lookups(name: str) -> list[str]:
        raise AssertionError(f"resolved {name!r}")

    assert not is_loopback(host, no_lookups)


def test_a_name_that_does_not_resolve_is_refused_with_its_own_reason() -> None:
    for opted_out in (False, True):
        config = _config("gone.example", **{"server.allow_unauthenticated": opted_out})
        with pytest.raises(ExposureError) as refused:
            check_exposure(config, NAMES)
        text = str(refused.value)
        assert "--host gone.example does not resolve" in text, text
        assert "Name or service not known" in text


def test_with_authentication_on_nothing_is_resolved_here() -> None:
    def no_lookups(name: str) -> list[str]:
        raise AssertionError(f"resolved {name!r}")

    config = _config("split.example", **{"auth.enabled": True,
                                          "auth.access_keys": {"AKIDEXPOSURE0001": "s3cret"}})
    check_exposure(config, no_lookups)


def test_opted_out_a_split_name_serves_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    check_exposure(_config("split.example", **{"server.allow_unauthenticated": True}), NAMES)
    assert "open to anyone who can reach it" in caplog.text


def test_localhost_through_the_real_resolver_is_loopback() -> None:
    addresses = {info[4][0] for info in socket.getaddrinfo("localhost", None)}
    assert addresses and addresses <= {"127.0.0.1", "::1"}, addresses
    assert is_loopback("localhost")
    check_exposure(_config("localhost"))  # does not raise


def test_serve_on_a_name_that_does_not_resolve_exits_2_with_one_line(tmp_path: object) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "streamproc", "serve", "--port", "0", "--data-dir",
         f"{tmp_path}/data", "--model-root", str(SHARED), "--model-pack", "test_mfn",
         "--host", "no-such-host.invalid"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "--host no-such-host.invalid does not resolve" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("bound, refused", [("127.0.0.1", False), ("::1", False),
                                            ("192.168.1.20", True), ("0.0.0.0", True)])
def test_what_the_socket_bound_is_judged_too(bound: str, refused: bool) -> None:
    """The bind resolves the name again: an address that changed since the check is caught."""
    if refused:
        with pytest.raises(ExposureError, match=f"bound {bound}, which is not loopback"):
            check_bound(_config("loop.example"), bound)
    else:
        check_bound(_config("loop.example"), bound)
    check_bound(_config("loop.example", **{"server.allow_unauthenticated": True}), "0.0.0.0")
    check_bound(_config("loop.example", **{"auth.enabled": True,
                                           "auth.access_keys": {"AKID": "s"}}), "0.0.0.0")
