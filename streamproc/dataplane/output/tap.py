"""A tap on the records the analyzer publishes, for the console's live feed and frame view.

The analyzer asks :meth:`FeedTap.watching` (one dict lookup, no lock) before it does any
work for a watcher; only when someone watches a processor does it cut the faces' crops and
:meth:`FeedTap.offer` the record. Likewise a frame snapshot is encoded only while a
:meth:`FeedTap.want_frame` request waits for that processor.

Each subscriber has one bounded buffer (``console.feed_buffer`` events), policy
drop_oldest: a full buffer loses its oldest event, the drop is counted (``on_drop``) and
told to the watcher with the next event it reads (:attr:`Delivery.dropped`). At most
``console.max_feeds`` subscriptions are open on the node, at most ``max_per_owner`` of one
owner (an access key: ``console.max_feeds_per_key``; :class:`FeedsFull` beyond; with
authentication off every subscription is :data:`NO_KEY`'s, so that cap is node-wide), and
at most as many frame requests wait (:class:`FramesBusy` beyond). The tap knows nothing of
asyncio: a subscriber's ``wake`` callback (called with no lock held, from the analyzer's
thread) is how the console's event loop learns there is something to read.

Only what runs on this node is seen: in cluster mode a processor that runs elsewhere has
no records here (see :mod:`streamproc.console.feed`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Why a subscription ended (the feed tells its browser): the node is stopping.
SHUTDOWN = "shutdown"
# The owner of every subscription with authentication off: there are no keys to tell apart.
NO_KEY = ""


class FeedsFull(Exception):
    """Every live feed this node allows (``console.max_feeds``) is open."""


class FramesBusy(Exception):
    """As many frame requests wait as this node allows (``console.max_feeds``)."""


@dataclass(frozen=True)
class FeedEvent:
    """One published record as a watcher sees it."""

    at_ms: int  # wall clock (epoch ms) when the record was published
    record: bytes  # the record's JSON, exactly as published
    crops: tuple[bytes | None, ...]  # a JPEG per FaceSearchResponse entry (None: no crop)


@dataclass(frozen=True)
class Delivery:
    """An event taken from a buffer, with the events this watcher lost just before it."""

    event: FeedEvent
    dropped: int


@dataclass
class _Held:
    event: FeedEvent
    dropped_before: int


class Subscription:
    """One watcher's bounded buffer of one processor's events; thread-safe."""

    def __init__(self, name: str, capacity: int, wake: Callable[[], None],
                 on_drop: Callable[[], None], owner: str = "") -> None:
        self.name = name
        self.owner = owner
        self._capacity = capacity
        self._wake = wake
        self._on_drop = on_drop
        self._held: deque[_Held] = deque()
        self._lock = threading.Lock()
        self._ended: str | None = None
        self.dropped = 0  # in all, for this watcher

    @property
    def ended(self) -> str | None:
        """Why the tap ended this subscription (``SHUTDOWN``), or None while it is open."""
        return self._ended

    def offer(self, event: FeedEvent) -> None:
        """Add an event; a full buffer drops its oldest (drop_oldest), counted."""
        dropped = False
        with self._lock:
            if self._ended is not None:
                return
            carried = 0
            if len(self._held) >= self._capacity:
                oldest = self._held.popleft()
                carried = oldest.dropped_before + 1
                self.dropped += 1
                dropped = True
            if carried and self._held:
                self._held[0].dropped_before += carried
                carried = 0
            self._held.append(_Held(event, carried))
        if dropped:
            self._on_drop()
        self._wake()

    def take(self) -> list[Delivery]:
        """Everything buffered now, oldest first (the buffer is left empty)."""
        with self._lock:
            held, self._held = self._held, deque()
        return [Delivery(h.event, h.dropped_before) for h in held]

    def end(self, reason: str) -> None:
        """End it: no more events; its reader is woken to see :attr:`ended`."""
        with self._lock:
            self._ended = reason
        self._wake()


@dataclass(eq=False)  # by identity: two requests for one name are two waiters
class FrameRequest:
    """A wait for a processor's next analysed frame (a JPEG), answered once."""

    name: str
    wake: Callable[[], None]
    jpeg: bytes | None = field(default=None)

    def answer(self, jpeg: bytes) -> None:
        """Deliver the frame and wake the waiter."""
        self.jpeg = jpeg
        self.wake()


class FeedTap:
    """Subscriptions by processor name, and frame requests; owned by the data plane."""

    def __init__(self, buffer: int, max_feeds: int, max_per_owner: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        per_owner = max_feeds if max_per_owner is None else max_per_owner
        if buffer < 1 or max_feeds < 1 or per_owner < 1:
            msg = "a feed tap needs buffer, max_feeds and max_per_owner >= 1"
            raise ValueError(msg)
        self._buffer = buffer
        self._max = max_feeds
        self._max_per_owner = per_owner
        self._owners: dict[str, int] = {}  # open subscriptions per owner
        self._clock = clock
        self._lock = threading.Lock()
        # Replaced, never changed in place, under the lock: watching() reads them without
        # it (one dict lookup, atomic), so the frame path takes no lock when no one watches.
        self._feeds: dict[str, tuple[Subscription, ...]] = {}
        self._frames: dict[str, tuple[FrameRequest, ...]] = {}
        self._open = 0
        self._waiting = 0
        self._closed = False

    # ---- the analyzer's side ---------------------------------------------------------------
    def watching(self, name: str) -> bool:
        """Whether any feed watches processor ``name`` now (cheap: no lock, no copy)."""
        return name in self._feeds

    def frame_wanted(self, name: str) -> bool:
        """Whether a frame request waits for processor ``name`` now (cheap)."""
        return name in self._frames

    def offer(self, name: str, record: bytes, crops: tuple[bytes | None, ...]) -> None:
        """Hand a published record (and its faces' crops) to ``name``'s watchers."""
        event = FeedEvent(int(self._clock() * 1000), record, crops)
        for subscription in self._feeds.get(name, ()):
            subscription.offer(event)

    def offer_frame(self, name: str, jpeg: bytes) -> None:
        """Answer every request waiting for ``name``'s next frame."""
        with self._lock:
            requests = self._frames.pop(name, ())
            self._waiting -= len(requests)
        for request in requests:
            request.answer(jpeg)

    # ---- the console's side ----------------------------------------------------------------
    @property
    def open_feeds(self) -> int:
        """Subscriptions open now, on all processors."""
        return self._open

    def subscribe(self, name: str, wake: Callable[[], None],
                  on_drop: Callable[[], None], owner: str = "") -> Subscription:
        """Watch ``name``'s records; :class:`FeedsFull` past a limit.

        The limits: ``max_feeds`` open on the node, ``max_per_owner`` of ``owner``'s. A
        closed tap (the node is stopping) gives a subscription already ended.
        """
        subscription = Subscription(name, self._buffer, wake, on_drop, owner)
        with self._lock:
            if self._closed:
                subscription.end(SHUTDOWN)
                return subscription
            if self._open >= self._max:
                msg = (f"At most {self._max} live feeds are open at once on this node "
                       "(console.max_feeds): close one and try again")
                raise FeedsFull(msg)
            if self._owners.get(owner, 0) >= self._max_per_owner:
                raise FeedsFull(self._owner_full(owner))
            self._feeds = {**self._feeds, name: (*self._feeds.get(name, ()), subscription)}
            self._open += 1
            self._owners[owner] = self._owners.get(owner, 0) + 1
        return subscription

    def _owner_full(self, owner: str) -> str:
        if owner == NO_KEY:
            # Auth off: no key tells one browser from another, so all share one key's cap.
            return (f"Authentication is off, so every console session counts as one access "
                    f"key: they hold {self._max_per_owner} live feeds open on this node already "
                    "(console.max_feeds_per_key): close one and try again")
        return (f"This access key holds {self._max_per_owner} live feeds open on this node "
                "already (console.max_feeds_per_key): close one and try again")

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop watching; a second call does nothing."""
        with self._lock:
            held = self._feeds.get(subscription.name, ())
            if subscription not in held:
                return
            rest = tuple(s for s in held if s is not subscription)
            feeds = dict(self._feeds)
            if rest:
                feeds[subscription.name] = rest
            else:
                del feeds[subscription.name]
            self._feeds = feeds
            self._open -= 1
            left = self._owners.get(subscription.owner, 0) - 1
            if left > 0:
                self._owners[subscription.owner] = left
            else:
                self._owners.pop(subscription.owner, None)

    def want_frame(self, name: str, wake: Callable[[], None]) -> FrameRequest:
        """Ask for ``name``'s next analysed frame; :class:`FramesBusy` with too many waiting."""
        request = FrameRequest(name, wake)
        with self._lock:
            if self._closed:
                return request  # never answered: the caller's wait times out
            if self._waiting >= self._max:
                msg = (f"At most {self._max} frame requests wait at once on this node "
                       "(console.max_feeds): try again")
                raise FramesBusy(msg)
            self._frames = {**self._frames, name: (*self._frames.get(name, ()), request)}
            self._waiting += 1
        return request

    def forget_frame(self, request: FrameRequest) -> None:
        """Withdraw a request no longer waited for (answered or timed out)."""
        with self._lock:
            held = self._frames.get(request.name, ())
            rest = tuple(r for r in held if r is not request)
            if len(rest) == len(held):
                return
            frames = dict(self._frames)
            if rest:
                frames[request.name] = rest
            else:
                del frames[request.name]
            self._frames = frames
            self._waiting -= 1

    def close(self) -> None:
        """The node is stopping: end every subscription (``SHUTDOWN``) and refuse new ones."""
        with self._lock:
            self._closed = True
            ended = [s for subs in self._feeds.values() for s in subs]
            self._feeds = {}
            self._open = 0
            self._owners = {}
        for subscription in ended:
            subscription.end(SHUTDOWN)
