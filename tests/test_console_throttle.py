"""Failed console sign-ins: counted per client address, refused past the budget (429)."""

from __future__ import annotations

import pytest
import requests
from test_console_units import KEY, SECRET, Clock, Served

from streamproc.console.throttle import LoginThrottle, client_block

pytestmark = pytest.mark.unit


def test_a_client_past_its_budget_waits_until_its_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(3, 60.0, clock=clock)
    for _ in range(2):
        throttle.failed("10.0.0.1")
        clock.now += 10
    assert throttle.wait_s("10.0.0.1") == 0.0  # two of three: still allowed
    throttle.failed("10.0.0.1")
    assert throttle.wait_s("10.0.0.1") == pytest.approx(40.0)  # first at 1000, now 1020
    assert throttle.wait_s("10.0.0.2") == 0.0  # another address has its own budget
    clock.now += 39.9
    assert throttle.wait_s("10.0.0.1") == pytest.approx(0.1)
    clock.now += 0.1
    assert throttle.wait_s("10.0.0.1") == 0.0  # the first left the window: 2 of 3
    throttle.failed("10.0.0.1")  # 1010, 1020, 1060
    assert throttle.wait_s("10.0.0.1") == pytest.approx(10.0)  # until 1010 leaves


def test_the_table_is_bounded_and_forgets_the_least_recently_failed() -> None:
    clock = Clock()
    throttle = LoginThrottle(1, 60.0, max_tracked=4, clock=clock)
    for n in range(1, 6):
        throttle.failed(f"10.0.0.{n}")
    assert len(throttle) == 4 and throttle.forgotten == 1  # 10.0.0.1 went first
    assert throttle.wait_s("10.0.0.1") == 0.0
    assert throttle.wait_s("10.0.0.5") > 0
    throttle.failed("10.0.0.2")  # failed again: now the most recent, so 10.0.0.3 goes next
    throttle.failed("10.0.0.6")
    assert throttle.wait_s("10.0.0.2") > 0 and throttle.wait_s("10.0.0.3") == 0.0
    with pytest.raises(ValueError):
        LoginThrottle(0, 60.0)


def test_expired_failures_are_dropped_when_asked() -> None:
    clock = Clock()
    throttle = LoginThrottle(2, 5.0, clock=clock)
    throttle.failed("10.0.0.1")
    clock.now += 5.0
    assert throttle.wait_s("10.0.0.1") == 0.0 and len(throttle) == 0


def test_sign_ins_past_the_budget_get_429_even_with_the_right_secret() -> None:
    s = Served(auth=True, throttle=LoginThrottle(3, 300.0))
    try:
        url = f"{s.url}/console/session"
        for n in range(3):
            # A claimed forwarding address changes nothing: the socket's peer is counted.
            wrong = requests.post(url, json={"AccessKeyId": KEY, "SecretAccessKey": "nope"},
                                  headers={"X-Forwarded-For": f"203.0.113.{n}"}, timeout=5)
            assert wrong.status_code == 403
        for body in ({"AccessKeyId": KEY, "SecretAccessKey": SECRET},
                     {"AccessKeyId": "AKIDOTHER00000000000", "SecretAccessKey": "x"}):
            refused = requests.post(url, json=body, timeout=5,
                                    headers={"X-Forwarded-For": "203.0.113.99"})
            assert refused.status_code == 429, refused.text
            assert refused.json()["__type"] == "ThrottlingException"
            assert "set-cookie" not in refused.headers and SECRET not in refused.text
            assert 290 <= int(refused.headers["Retry-After"]) <= 300
        refusals = s.registry.get_sample_value(
            "streamproc_console_refused_total", {"reason": "login_throttled"})
        assert refusals == 2.0
        assert s.registry.get_sample_value(
            "streamproc_console_refused_total", {"reason": "login"}) == 3.0
    finally:
        s.http.stop(2.0)


def test_a_right_secret_under_the_budget_signs_in() -> None:
    throttle = LoginThrottle(3, 300.0)
    s = Served(auth=True, throttle=throttle)
    try:
        url = f"{s.url}/console/session"
        for _ in range(2):
            requests.post(url, json={"AccessKeyId": KEY, "SecretAccessKey": "nope"}, timeout=5)
        ok = requests.post(url, json={"AccessKeyId": KEY, "SecretAccessKey": SECRET}, timeout=5)
        assert ok.status_code == 200 and ok.json()["signedIn"] is True
        assert len(throttle) == 1  # the address's two failures stay: a success clears nothing
    finally:
        s.http.stop(2.0)


def test_an_ipv6_client_is_counted_by_its_64_and_an_ipv4_one_by_its_address() -> None:
    throttle = LoginThrottle(3, 60.0, clock=Clock())
    # A host rotating addresses inside its /64 (privacy addresses) shares one budget.
    for host in ("2001:db8:1:2::1", "2001:db8:1:2:aaaa::7", "2001:DB8:1:2:ffff:ffff:ffff:ffff"):
        assert throttle.wait_s("2001:db8:1:2::99") == 0.0
        throttle.failed(host)
    assert throttle.wait_s("2001:db8:1:2:1234:5678:9abc:def0") > 0
    assert throttle.wait_s("2001:db8:1:3::1") == 0.0  # the next /64 is someone else
    assert len(throttle) == 1
    # IPv4: per address, and a dual-stack socket's mapped IPv4 peer is that address.
    for _ in range(3):
        throttle.failed("::ffff:192.0.2.10")
    assert throttle.wait_s("192.0.2.10") > 0 and throttle.wait_s("192.0.2.11") == 0.0


@pytest.mark.parametrize("address, block", [
    ("192.0.2.1", "192.0.2.1"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::/64"),
    ("::ffff:10.1.2.3", "10.1.2.3"),
    ("::1", "::/64"),
    ("-", "-"),
    ("testclient", "testclient"),
])
def test_client_block(address: str, block: str) -> None:
    assert client_block(address) == block
