"""Console sessions: random ids, kept server-side, bounded in number and in time.

A session is created at login (with auth off, by the page's own POST) and names the access
key it acts as and a mark of that key's secret (a key rotated or removed on reload ends its
sessions); its CSRF token must come back in a header on every console call. The store keeps
only a SHA-256 of each session id, so the ids in the cookies cannot be read back out of it,
and compares CSRF tokens in constant time. One key holds at most ``max_per_key`` sessions
(a key at its cap ends its own oldest one); a full store ends the oldest session of the key
holding the most, so one key's sign-ins cannot push out a key holding fewer. A sign-in first
drops the sessions of keys removed or rotated since (``still_valid``), so they hold no room.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

# 32 random bytes: the session id (the cookie) and the CSRF token alike.
TOKEN_BYTES = 32


class WhenFull(str, Enum):
    """What a full store does with one more session."""

    # end the oldest session of the key at its cap, or (store full) of the key holding most
    EVICT_LEAST_RECENT = "evict_least_recent"
    REFUSE = "refuse"  # refuse the new one (SessionsFull) until one ends or expires


class SessionsFull(Exception):
    """No room: the store (or the key) holds its maximum and the policy is to refuse."""


@dataclass(frozen=True)
class Session:
    """One signed-in browser: the key it acts as (None with auth off) and its CSRF token."""

    key_id: str | None
    csrf: str
    expires_at: float  # on the store's clock
    key_mark: str = ""  # a keyed digest of the key's secret at sign-in (console.routes)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def csrf_matches(session: Session, token: str | None) -> bool:
    """True if ``token`` (the request's CSRF header) is the session's, compared in constant time."""
    if not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())


class SessionStore:
    """At most ``max_sessions`` sessions, ``max_per_key`` of one key, each for ``ttl_s``.

    A session ends ``ttl_s`` after it began, however much it is used.
    """

    def __init__(self, max_sessions: int, ttl_s: float,
                 when_full: WhenFull = WhenFull.EVICT_LEAST_RECENT,
                 clock: Callable[[], float] = time.monotonic,
                 max_per_key: int | None = None) -> None:
        per_key = max_sessions if max_per_key is None else max_per_key
        if max_sessions < 1 or ttl_s <= 0 or per_key < 1:
            msg = "a session store needs max_sessions >= 1, max_per_key >= 1 and ttl_s > 0"
            raise ValueError(msg)
        self.max_sessions = max_sessions
        self.max_per_key = per_key
        self.ttl_s = ttl_s
        self.when_full = when_full
        self._clock = clock
        self._lock = threading.Lock()
        # digest of the session id -> session, least recently used first
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self.evicted = 0  # sessions ended early to make room (WhenFull.EVICT_LEAST_RECENT)

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, key_id: str | None, key_mark: str = "",
               still_valid: Callable[[Session], bool] | None = None) -> tuple[str, Session]:
        """A new session for ``key_id``: its id (for the cookie, never stored) and the session.

        ``still_valid`` tells sessions whose key still stands (the others are dropped
        first). Raises :class:`SessionsFull` when there is no room and the policy refuses.
        """
        now = self._clock()
        with self._lock:
            self._purge(now, still_valid)
            own = [d for d, s in self._sessions.items() if s.key_id == key_id]
            if len(own) >= self.max_per_key:
                self._make_room(own, f"this access key's {self.max_per_key}")
            elif len(self._sessions) >= self.max_sessions:
                self._make_room(self._most_held(), f"all {self.max_sessions}")
            session_id = secrets.token_urlsafe(TOKEN_BYTES)
            session = Session(key_id, secrets.token_urlsafe(TOKEN_BYTES), now + self.ttl_s,
                              key_mark)
            self._sessions[_digest(session_id)] = session
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown, ended or expired)."""
        if not session_id:
            return None
        digest = _digest(session_id)
        with self._lock:
            session = self._sessions.get(digest)
            if session is None:
                return None
            if session.expires_at <= self._clock():
                del self._sessions[digest]
                return None
            self._sessions.move_to_end(digest)
            return session

    def end(self, session_id: str | None) -> bool:
        """End a session (logout); True if there was one."""
        if not session_id:
            return False
        with self._lock:
            return self._sessions.pop(_digest(session_id), None) is not None

    def _most_held(self) -> list[str]:
        """The sessions (oldest first) of the key holding the most (ties: the oldest's)."""
        by_key: dict[str | None, list[str]] = {}
        for digest, session in self._sessions.items():  # least recently used first
            by_key.setdefault(session.key_id, []).append(digest)
        return max(by_key.values(), key=len, default=[])  # max keeps the first of a tie

    def _make_room(self, victims: list[str], which: str) -> None:
        """End the least recently used of ``victims`` (oldest first), or refuse."""
        if self.when_full is WhenFull.REFUSE or not victims:
            msg = f"{which} console sessions are in use"
            raise SessionsFull(msg)
        del self._sessions[victims[0]]
        self.evicted += 1

    def _purge(self, now: float, still_valid: Callable[[Session], bool] | None) -> None:
        gone = [d for d, s in self._sessions.items() if s.expires_at <= now or
                (still_valid is not None and not still_valid(s))]
        for digest in gone:
            del self._sessions[digest]
