"""Failed console sign-ins, counted per client address, to slow guessing.

A secret is 40 characters of a key file, so guessing one over HTTP is hopeless anyway; the
limit is there so a script hammering the sign-in form shows up as refusals (counted, logged)
instead of as an unbounded stream of secret comparisons, and so a secret that is short after
all (an operator's choice) cannot be walked through.

After ``max_failures`` failed sign-ins within ``window_s`` from one client address, further
sign-ins from that address are refused until the oldest failure leaves the window: a fixed
budget in a sliding window. It is counted per address only, not per key id: key ids are not
secret (pages, logs, policies show them), and a per-key budget would let anyone keep a key
out of the console; with 40-character secrets, guessing from many addresses is hopeless too.
A success clears nothing (a client with one valid key could otherwise reset its budget
between guesses at another). At most ``max_tracked`` addresses are remembered (the least
recently failed forgotten first), so the table cannot grow without bound. The address is the
socket's peer (the server trusts no X-Forwarded-For). An IPv4 client is counted by its
address, an IPv6 client by its /64 (:func:`client_block`): one IPv6 host commonly holds a
whole /64 and can pick a fresh address in it for every try, as privacy addressing does.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

# Addresses remembered at most: past this the least recently failed is forgotten.
MAX_TRACKED = 10_000
IPV6_PREFIX = 64  # an IPv6 client is counted by its /64: the block one host is given


def client_block(address: str) -> str:
    """What failed sign-ins from ``address`` are counted under.

    An IPv4 address itself; an IPv6 address's /64 (``2001:db8:1:2::/64``); an IPv4-mapped
    IPv6 address (``::ffff:192.0.2.1``, a dual-stack socket's IPv4 peer) as that IPv4
    address. Anything else (no address, a Unix socket's name) as it is.
    """
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])  # a zone id is no part of it
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)


class LoginThrottle:
    """Counts failed sign-ins; says how long a client address must wait before its next try."""

    def __init__(self, max_failures: int, window_s: float, *, max_tracked: int = MAX_TRACKED,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_failures < 1 or window_s <= 0 or max_tracked < 2:
            msg = "a login throttle needs max_failures >= 1, window_s > 0, max_tracked >= 2"
            raise ValueError(msg)
        self.max_failures = max_failures
        self.window_s = window_s
        self._max_tracked = max_tracked
        self._clock = clock
        # Sign-ins run on the event loop, but tests and a threaded server may share it.
        self._lock = threading.Lock()
        # client address -> times of its failures in the window, oldest first
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self.forgotten = 0  # entries dropped to stay within max_tracked

    def __len__(self) -> int:
        return len(self._failures)

    def wait_s(self, client: str) -> float:
        """Seconds until a sign-in from ``client`` may be tried; 0.0: now."""
        block = client_block(client)
        now = self._clock()
        with self._lock:
            return self._wait_locked(block, now)

    def failed(self, client: str) -> None:
        """Count one failed sign-in against the client's address (an IPv6 one's /64)."""
        client = client_block(client)
        now = self._clock()
        with self._lock:
            times = self._failures.pop(client, None) or deque(maxlen=self.max_failures)
            self._expire(times, now)
            times.append(now)
            self._failures[client] = times  # now the most recently failed
            while len(self._failures) > self._max_tracked:
                self._failures.popitem(last=False)
                self.forgotten += 1

    def _wait_locked(self, name: str, now: float) -> float:
        times = self._failures.get(name)
        if times is None:
            return 0.0
        self._expire(times, now)
        if not times:
            del self._failures[name]
            return 0.0
        if len(times) < self.max_failures:
            return 0.0
        return max(0.0, times[0] + self.window_s - now)

    def _expire(self, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()
