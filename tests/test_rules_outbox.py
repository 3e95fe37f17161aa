"""The outbox and its disk spool on their own: bounds, order, acknowledgements, shutdown."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from deadletters import dead_letters

from streamproc.dataplane.output.outbox import Entry, Outbox
from streamproc.storage.spool import Spool


class Future:
    """A send future the test settles by hand (polled like kafka-python's)."""

    def __init__(self) -> None:
        self.is_done = False
        self.exception: Exception | None = None

    def ok(self) -> None:
        self.is_done = True

    def err(self, exc: Exception) -> None:
        self.is_done, self.exception = True, exc

    def failed(self) -> bool:
        return self.exception is not None


class Sensor:
    def __init__(self) -> None:
        self.published_count = 0
        self.failures = 0
        self.latencies: list[float] = []

    def published(self, count: int = 1) -> None:
        self.published_count += count

    def publish_failed(self) -> None:
        self.failures += 1

    def observe_latency(self, seconds: float) -> None:
        self.latencies.append(seconds)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    s = Spool(tmp_path / "spool.db")
    s.open()
    yield s
    s.close()


def entry(value: str, sensor: Sensor | None = None, processor: str = "p") -> Entry:
    return Entry(processor, "topic", processor.encode(), value.encode(),
                 decoded_at=time.monotonic(), sensor=sensor)  # type: ignore[arg-type]


def values(entries: list[Entry]) -> list[str]:
    return [e.value.decode() for e in entries]


def spooled(spool: Spool, cluster: str = "c") -> list[str]:
    return [r.value.decode() for r in spool.read(cluster, float("-inf"), 1000)]


def send_all(box: Outbox, max_in_flight: int = 100) -> list[tuple[Entry, Future]]:
    sent = []
    for e in box.take_unsent(max_in_flight):
        future = Future()
        box.mark_sent(e, future)
        sent.append((e, future))
    return sent


def deliver(box: Outbox, rounds: int) -> list[str]:
    """What ``rounds`` publisher turns deliver when every send is acknowledged."""
    delivered: list[str] = []
    for _ in range(rounds):
        box.sync_disk()
        for e, future in send_all(box):
            delivered.append(e.value.decode())
            future.ok()
        box.reap()
    return delivered


# ---- the spool ---------------------------------------------------------------------------

def test_the_spool_keeps_order_per_cluster_and_reads_after_a_position(spool: Spool) -> None:
    spool.append("c", [("p", "t", b"k", b"1"), ("p", "t", b"k", b"2")])
    spool.append("d", [("q", "u", b"j", b"x")])
    spool.append("c", [("p", "t", b"k", b"3")])
    spool.append("c", [])
    rows = spool.read("c", float("-inf"), 10)
    assert [r.value for r in rows] == [b"1", b"2", b"3"]
    assert [(r.processor, r.topic, r.key) for r in rows] == [("p", "t", b"k")] * 3
    assert [r.pos for r in rows] == sorted(r.pos for r in rows)
    assert [r.value for r in spool.read("c", rows[0].pos, 10)] == [b"2", b"3"]
    assert [r.value for r in spool.read("c", float("-inf"), 2)] == [b"1", b"2"]
    assert spool.clusters() == {"c": 3, "d": 1}
    spool.delete([rows[0].row_id, rows[2].row_id])
    spool.delete([])
    assert spooled(spool) == ["2"] and spool.clusters() == {"c": 1, "d": 1}


def test_rows_put_in_front_come_before_everything(spool: Spool) -> None:
    spool.append("c", [("p", "t", b"k", b"3"), ("p", "t", b"k", b"4")])
    spool.append("c", [("p", "t", b"k", b"1"), ("p", "t", b"k", b"2")], front=True)
    spool.append("c", [("p", "t", b"k", b"5")])
    spool.append("c", [("p", "t", b"k", b"0")], front=True)
    assert spooled(spool) == ["0", "1", "2", "3", "4", "5"]
    spool.append("e", [("p", "t", b"k", b"only")], front=True)
    assert spooled(spool, "e") == ["only"]


def test_positions_are_never_reused_after_a_restart_either(tmp_path: Path) -> None:
    first = Spool(tmp_path / "s.db")
    first.open()
    first.append("c", [("p", "t", b"k", b"1"), ("p", "t", b"k", b"2")])
    rows = first.read("c", float("-inf"), 10)
    first.close()
    second = Spool(tmp_path / "s.db")
    second.open()
    second.append("c", [("p", "t", b"k", b"3")])
    assert [r.value for r in second.read("c", rows[-1].pos, 10)] == [b"3"]
    second.close()


def test_the_spool_file_is_private(tmp_path: Path) -> None:
    s = Spool(tmp_path / "private.db")
    assert not (tmp_path / "private.db").exists()  # no I/O before open()
    s.open()
    assert (tmp_path / "private.db").stat().st_mode & 0o777 == 0o600
    # WAL with synchronous=NORMAL (1): outage writes do not wait for an fsync per commit.
    assert s._db.query("PRAGMA synchronous")[0][0] == 1
    s.close()


# ---- the outbox --------------------------------------------------------------------------

def test_memory_holds_exactly_its_limit_and_the_rest_waits_for_disk(spool: Spool) -> None:
    box = Outbox("c", spool, 3, lambda name: None)
    for i in range(3):
        box.put(entry(str(i)))
    assert box.sizes() == (3, 0)
    box.put(entry("3"))
    assert box.sizes() == (3, 1) and spooled(spool) == []  # written by the publisher thread
    box.sync_disk()
    assert box.sizes() == (3, 1) and spooled(spool) == ["3"]


def test_once_anything_is_on_disk_new_records_queue_behind_it(spool: Spool) -> None:
    box = Outbox("c", spool, 2, lambda name: None)
    for i in range(4):
        box.put(entry(str(i)))
    box.sync_disk()  # "2", "3" on disk
    sent = send_all(box)
    for _, future in sent:
        future.ok()
    assert box.reap() == 2
    box.put(entry("4"))  # memory has room, but "2" and "3" come first
    box.sync_disk()
    assert values(box.take_unsent(10)) == ["2", "3"]
    box.sync_disk()
    assert box.sizes() == (2, 1)


def test_records_come_back_from_disk_in_order_as_room_frees_up(spool: Spool) -> None:
    box = Outbox("c", spool, 2, lambda name: None)
    for i in range(7):
        box.put(entry(str(i)))
    assert deliver(box, 10) == [str(i) for i in range(7)]
    assert box.sizes() == (0, 0) and spooled(spool) == []  # delivered rows are deleted


def test_take_unsent_respects_the_in_flight_budget(spool: Spool) -> None:
    box = Outbox("c", spool, 10, lambda name: None)
    for i in range(5):
        box.put(entry(str(i)))
    assert values(box.take_unsent(2)) == ["0", "1"]
    assert values(box.take_unsent(2)) == ["0", "1"]  # nothing marked sent yet
    first = send_all(box, 2)
    assert values([e for e, _ in first]) == ["0", "1"]
    assert box.take_unsent(2) == []  # budget used
    assert values(box.take_unsent(3)) == ["2"]
    assert values(box.take_unsent(100)) == ["2", "3", "4"]


def test_reap_releases_acknowledged_records_from_the_head_only(spool: Spool) -> None:
    sensor = Sensor()
    box = Outbox("c", spool, 10, lambda name: None)
    for i in range(3):
        box.put(entry(str(i), sensor))
    (e0, f0), (e1, f1), (e2, f2) = send_all(box)
    f1.ok()
    assert box.reap() == 0 and box.sizes() == (3, 0)  # "0" is still unacknowledged
    f0.ok()
    assert box.reap() == 2 and box.sizes() == (1, 0)
    assert sensor.published_count == 2 and len(sensor.latencies) == 2
    assert all(0 <= s < 5 for s in sensor.latencies)
    assert box.oldest_in_flight_age() >= 0 and box.failed_at is None
    f2.ok()
    assert box.reap() == 1 and box.oldest_in_flight_age() == 0.0


def test_a_failed_send_rewinds_everything_unacknowledged_in_order(spool: Spool) -> None:
    sensor = Sensor()
    box = Outbox("c", spool, 10, lambda name: None)
    for i in range(5):
        box.put(entry(str(i), sensor))
    (_, f0), (_, f1), (_, f2), _, _ = send_all(box)
    f0.ok()
    f1.err(RuntimeError("broker gone"))
    # Acknowledged behind the failure (another partition): released, never sent again by
    # the fresh producer after the reset (that was how a reset delivered records twice).
    f2.ok()
    assert box.reap() == 2
    assert box.reset_pending and box.failed_at is not None
    assert "broker gone" in box.last_error and sensor.failures == 1
    assert values(box.take_unsent(10)) == ["1", "3", "4"] and box.in_flight() == 0
    failed_at = box.failed_at
    box.fail("no transport")
    assert box.failed_at == failed_at and box.last_error == "no transport"
    for _, future in send_all(box):
        future.ok()
    assert box.reap() == 3 and box.failed_at is None and sensor.published_count == 5
    assert box.sizes() == (0, 0) and box.owners() == set()


def test_a_failure_to_hand_over_keeps_what_was_handed_over(spool: Spool) -> None:
    box = Outbox("c", spool, 10, lambda name: None)
    for i in range(3):
        box.put(entry(str(i)))
    (e0, f0), = send_all(box, 1)
    box.fail("metadata timeout")  # "1" could not be handed over: "0" is still in flight
    assert box.failed_at is not None and not box.reset_pending
    assert box.in_flight() == 1 and e0.future is f0
    assert values(box.take_unsent(10)) == ["1", "2"]
    f0.ok()
    assert box.reap() == 1 and box.failed_at is None


def test_records_read_back_from_disk_find_their_sensor(spool: Spool) -> None:
    known, later = Sensor(), Sensor()
    spool.append("c", [("old", "topic", b"old", b"from-last-run")])
    box = Outbox("c", spool, 5, lambda name: later if name == "old" else None,
                 spooled={("old", "topic"): 1})
    box.put(entry("new", known, processor="p"))
    assert box.sizes() == (0, 2)  # behind what the last run left for its topic
    box.sync_disk()
    sent = send_all(box)
    assert values([e for e, _ in sent]) == ["from-last-run", "new"]
    assert sent[0][0].decoded_at is None and sent[0][0].sensor is later
    for _, future in sent:
        future.ok()
    box.reap()
    assert later.published_count == 1 and later.latencies == []  # no decode time to measure
    assert known.published_count == 1 and spooled(spool) == []


def test_persist_unsent_keeps_memory_in_front_of_the_overflow(spool: Spool) -> None:
    box = Outbox("c", spool, 3, lambda name: None)
    for i in range(6):
        box.put(entry(str(i)))
    box.sync_disk()  # "3".."5" on disk, "0".."2" in memory
    sent = send_all(box, 2)
    sent[0][1].ok()  # "0" acknowledged before the shutdown
    box.put(entry("6"))  # still in the overflow
    assert box.persist_unsent() == 2
    assert spooled(spool) == ["1", "2", "3", "4", "5", "6"]
    assert box.sizes()[0] == 0 and box.take_unsent(10) == []  # memory emptied
    box.put(entry("7"))  # a late record from a stage that outlived its stop
    assert spooled(spool)[-1] == "7" and box.take_unsent(10) == []


def test_a_restart_delivers_the_persisted_records_first(spool: Spool, tmp_path: Path) -> None:
    box = Outbox("c", spool, 2, lambda name: None)
    for i in range(4):
        box.put(entry(str(i)))
    box.sync_disk()
    send_all(box)
    box.persist_unsent()
    again = Outbox("c", spool, 2, lambda name: None, spooled=spool.held("c"))
    again.put(entry("4"))
    assert deliver(again, 6) == ["0", "1", "2", "3", "4"] and spooled(spool) == []


def test_a_fresh_outbox_has_no_failure_and_its_first_failure_is_timed(spool: Spool) -> None:
    box = Outbox("c", spool, 2, lambda name: None)
    assert (box.failed_at, box.reset_pending, box.last_error) == (None, False, "")
    before = time.monotonic()
    box.fail("no transport")
    assert box.failed_at is not None and before <= box.failed_at <= time.monotonic()
    # Nothing was handed over: the sender decides whether the transport starts afresh.
    assert (box.reset_pending, box.last_error) == (False, "no transport")


def test_the_oldest_send_ages_from_when_it_was_sent(spool: Spool) -> None:
    box = Outbox("c", spool, 4, lambda name: None)
    assert box.oldest_in_flight_age() == 0.0
    box.put(entry("0"))
    send_all(box)
    age = box.oldest_in_flight_age()
    assert 0.0 <= age < 5.0


def test_records_back_from_disk_keep_processor_topic_and_key(spool: Spool) -> None:
    box = Outbox("c", spool, 1, lambda name: None)
    box.put(entry("0", processor="a"))
    box.put(Entry("b", "other-topic", b"key-b", b"1"))
    box.sync_disk()  # "1" on disk
    (first,) = send_all(box)
    first[1].ok()
    box.reap()
    box.sync_disk()  # back in memory
    (back,) = box.take_unsent(10)
    assert (back.processor, back.topic, back.key, back.value) == (
        "b", "other-topic", b"key-b", b"1")
    assert back.spool_id is not None and back.decoded_at is None


def test_a_single_free_slot_is_refilled_from_disk(spool: Spool) -> None:
    box = Outbox("c", spool, 2, lambda name: None)
    for i in range(3):
        box.put(entry(str(i)))
    box.sync_disk()  # "2" on disk
    (first, _) = send_all(box)
    first[1].ok()
    assert box.reap() == 1
    box.sync_disk()  # one slot free: "2" comes back
    assert box.sizes() == (2, 0)


class _FailingSpool:
    """A spool whose next append raises (a full disk), then works again.

    ``meanwhile`` runs inside the failing append, as the analyzer thread's put() may.
    """

    def __init__(self, inner: Spool) -> None:
        self.inner, self.fail_next = inner, True
        self.meanwhile: Callable[[], None] = lambda: None

    def append(self, *args: object, **kwargs: object) -> None:
        if self.fail_next:
            self.fail_next = False
            self.meanwhile()
            msg = "disk full"
            raise OSError(msg)
        self.inner.append(*args, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_overflow_that_could_not_be_written_stays_first_in_line(spool: Spool) -> None:
    failing = _FailingSpool(spool)
    box = Outbox("c", failing, 1, lambda name: None)  # type: ignore[arg-type]
    for i in range(3):
        box.put(entry(str(i)))
    failing.meanwhile = lambda: box.put(entry("3"))  # arrives while "1", "2" are written
    with pytest.raises(OSError, match="disk full"):
        box.sync_disk()
    assert box.sizes() == (1, 3) and spooled(spool) == []
    box.put(entry("4"))
    box.sync_disk()  # the two not written stay in front of what arrived meanwhile
    assert spooled(spool) == ["1", "2", "3", "4"] and box.sizes() == (1, 4)
    assert deliver(box, 10) == ["0", "1", "2", "3", "4"]
    assert box.sizes() == (0, 0) and spooled(spool) == []


def test_persisting_rewrites_records_from_disk_once(spool: Spool) -> None:
    box = Outbox("c", spool, 2, lambda name: None)
    for i in range(4):
        box.put(entry(str(i)))
    box.sync_disk()  # "2", "3" on disk
    for _, future in send_all(box):
        future.ok()
    box.reap()
    box.sync_disk()  # "2", "3" back in memory, still on disk until acknowledged
    send_all(box)  # in flight, never acknowledged
    assert box.persist_unsent() == 2
    assert spooled(spool) == ["2", "3"]  # each once, in order
    assert box.reap() == 0 and box.take_unsent(10) == []
    assert box.oldest_in_flight_age() == 0.0 and box.sizes() == (0, 0)


# ---- records refused for good, records of deleted processors ------------------------------

class Refusals:
    """Refuses ValueErrors (as kafka-python raises for an illegal topic); keeps the rest."""

    def __init__(self, spool: Spool) -> None:
        self.spool, self.aside = spool, []
        self.parked_topics: list[tuple[str, str]] = []

    def refuses(self, error: BaseException) -> bool:
        return isinstance(error, ValueError)

    def set_aside(self, e: Entry, error: BaseException) -> None:
        self.aside.append((e.value.decode(), str(error)))
        self.spool.set_aside("c", [(e.processor, e.topic, e.key, e.value, str(error))], 10)

    def parks(self, error: BaseException) -> bool:
        return isinstance(error, PermissionError)

    def parked(self, topic: str, error: BaseException) -> None:
        self.parked_topics.append((topic, str(error)))


def test_a_record_refused_at_the_head_is_set_aside_and_the_rest_goes_on(spool: Spool) -> None:
    refusals, sensor = Refusals(spool), Sensor()
    box = Outbox("c", spool, 10, lambda name: None, refusals=refusals)
    for i in range(4):
        box.put(entry(str(i), sensor))
    (_, f0), (_, f1), (_, f2), (_, f3) = send_all(box)
    f0.err(ValueError("illegal topic"))  # the poison record is first in line
    f1.ok()
    f2.err(RuntimeError("broker gone"))  # a real outage behind it still rewinds
    f3.ok()
    assert box.reap() == 2  # "1", and "3" (acknowledged: released at the rewind)
    assert refusals.aside == [("0", "illegal topic")] and sensor.failures == 2
    assert box.reset_pending and "broker gone" in box.last_error
    assert values(box.take_unsent(10)) == ["2"]
    (_, again), = send_all(box)
    again.ok()
    assert box.reap() == 1 and box.failed_at is None and box.sizes() == (0, 0)
    (letter,) = dead_letters(spool, "c")
    assert (letter.value, letter.topic, letter.error) == (b"0", "topic", "illegal topic")


def test_a_refused_record_read_back_from_disk_leaves_the_spool_once_kept_aside(
        spool: Spool) -> None:
    spool.append("c", [("p", "bad topic", b"p", b"poison"), ("p", "t", b"p", b"good")])
    refusals = Refusals(spool)
    box = Outbox("c", spool, 10, lambda name: None, spooled=spool.held("c"),
                 refusals=refusals)
    box.sync_disk()
    (_, f0), (_, f1) = send_all(box)
    f0.err(ValueError("illegal"))
    f1.ok()
    assert box.reap() == 1 and spooled(spool) == [] and box.owners() == set()
    assert [d.value for d in dead_letters(spool, "c")] == [b"poison"]


def test_a_record_refused_as_it_is_handed_over_is_set_aside(spool: Spool) -> None:
    refusals = Refusals(spool)
    box = Outbox("c", spool, 10, lambda name: None, refusals=refusals)
    for i in range(3):
        box.put(entry(str(i)))
    first, poison, last = box.take_unsent(10)
    box.mark_sent(first, Future())
    box.refuse_next(last, ValueError("not next"))  # only the next unsent one can be refused
    box.refuse_next(poison, ValueError("illegal topic"))
    assert refusals.aside == [("1", "illegal topic")]
    assert values(box.take_unsent(10)) == ["2"] and box.in_flight() == 1
    assert box.sizes() == (2, 0) and box.owners() == {"p"}


def test_dropping_a_deleted_processor_takes_its_records_from_memory_overflow_and_disk(
        spool: Spool) -> None:
    spool.append("c", [("gone", "topic", b"gone", b"old-gone"), ("p", "topic", b"p", b"old-p")])
    box = Outbox("c", spool, 3, lambda name: None, spooled=spool.held("c"))
    for i in range(6):
        box.put(entry(f"g{i}", processor="gone") if i % 2 else entry(f"p{i}"))
    box.sync_disk()  # memory: the two old ones + "p0"; the rest spooled
    assert box.owners() == {"gone", "p"}
    (in_flight, future), = send_all(box, 1)  # "old-gone" is in flight: it stays
    box.put(entry("g6", processor="gone"))  # still in the overflow
    assert box.drop({"gone"}) == 4  # g1, g3, g5 (disk) and g6 (overflow)
    assert box.sizes() == (3, 2) and box.owners() == {"gone", "p"}
    future.ok()
    delivered = [in_flight.value.decode()]
    delivered += deliver(box, 6)
    assert delivered == ["old-gone", "old-p", "p0", "p2", "p4"]
    assert box.owners() == set() and spooled(spool) == [] and box.sizes() == (0, 0)


def test_a_closed_outbox_ignores_a_late_hand_over(spool: Spool) -> None:
    box = Outbox("c", spool, 3, lambda name: None)
    box.put(entry("0"))
    (late,) = box.take_unsent(10)
    box.persist_unsent()  # a sender abandoned at shutdown returns from its send after this
    box.mark_sent(late, Future())
    assert box.in_flight() == 0 and box.reap() == 0 and spooled(spool) == ["0"]
    box.sync_disk()  # its next turn reads nothing back: what is on disk waits for a restart
    assert box.sizes() == (0, 0) and box.take_unsent(10) == []


def test_dead_letters_keep_the_newest_per_cluster(spool: Spool) -> None:
    for i in range(5):
        spool.set_aside("c", [("p", "t", b"k", str(i).encode(), "E")], keep=3)
    spool.set_aside("d", [("p", "t", b"k", b"other", "E")], keep=3)
    spool.set_aside("c", [], keep=3)
    assert [d.value for d in dead_letters(spool, "c")] == [b"2", b"3", b"4"]
    assert [d.value for d in dead_letters(spool, "d")] == [b"other"]
    assert all(d.at > 0 and d.error == "E" for d in dead_letters(spool, "c"))


def test_the_spool_counts_and_deletes_records_per_owner(spool: Spool) -> None:
    spool.append("c", [("a", "t", b"a", b"1"), ("b", "t", b"b", b"2"), ("a", "t", b"a", b"3")])
    spool.append("d", [("a", "t", b"a", b"x")])
    assert spool.owners("c") == {"a": 2, "b": 1}
    first = spool.read("c", float("-inf"), 1)[0]
    assert spool.delete_owners("c", {"a"}, first.pos) == {"t": 1}  # the one after the cursor
    assert spool.delete_owners("c", set(), first.pos) == {}
    assert spooled(spool) == ["1", "2"] and spooled(spool, "d") == ["x"]


# ---- parked topics: held apart in order, the others go on --------------------------------

def topical(value: str, topic: str, processor: str = "p") -> Entry:
    return Entry(processor, topic, processor.encode(), value.encode())


def test_a_parked_topic_leaves_memory_and_comes_back_in_order(spool: Spool) -> None:
    box = Outbox("c", spool, 10, lambda name: None)
    for i in range(2):
        box.put(topical(f"a{i}", "a", "pa"))
        box.put(topical(f"x{i}", "x"))
    box.park("a", "missing")
    assert values(box.take_unsent(10)) == ["x0", "x1"]
    assert box.sizes() == (2, 2) and spooled(spool) == ["a0", "a1"]
    box.put(topical("a2", "a", "pa"))  # memory has room, but its topic is parked
    box.put(topical("x2", "x"))
    assert box.sizes() == (3, 3) and box.parked_topics() == {"a"}
    (report,) = box.parked().values()
    assert (report["error"], report["records_held"], report["processors"]) == (
        "missing", 3, ["pa"])
    assert deliver(box, 3) == ["x0", "x1", "x2"]  # never "a" while it is parked
    box.unpark("a")
    assert deliver(box, 3) == ["a0", "a1", "a2"]
    assert box.sizes() == (0, 0) and spooled(spool) == [] and box.owners() == set()
    assert box.parked() == {} and box.take_acked_topics() == {"a", "x"}


def test_an_unparked_topic_catches_up_before_its_new_records(spool: Spool) -> None:
    """Its rows behind the read cursor come first, then those after it, then new ones."""
    box = Outbox("c", spool, 2, lambda name: None)
    box.put(topical("a0", "a"))
    box.park("a", "missing")
    for i in range(4):  # memory holds 2: the rest of "x" is spooled after "a0"
        box.put(topical(f"x{i}", "x"))
        box.put(topical(f"a{i + 1}", "a"))
    assert deliver(box, 4) == ["x0", "x1", "x2", "x3"]  # the cursor is past a1..a3 now
    box.put(topical("a5", "a"))
    box.unpark("a")
    box.put(topical("a6", "a"))  # still behind the held ones
    assert deliver(box, 6) == [f"a{i}" for i in (0, 1, 2, 3, 4, 5, 6)]
    assert box.sizes() == (0, 0) and spooled(spool) == []


def test_records_of_a_parked_topic_rewound_by_a_failure_go_back_in_front(
        spool: Spool) -> None:
    box = Outbox("c", spool, 10, lambda name: None)
    for value, topic in (("a0", "a"), ("x0", "x"), ("a1", "a")):
        box.put(topical(value, topic))
    (_, fa0), (_, fx0), (_, fa1) = send_all(box)
    box.put(topical("a2", "a"))
    box.park("a", "missing")  # a0 and a1 are in flight: they stay
    assert spooled(spool) == ["a2"]
    fa0.err(RuntimeError("broker gone"))
    fx0.ok()
    box.reap()  # rewound: x0 was acknowledged, a0 and a1 leave memory, ahead of a2
    assert values(box.take_unsent(10)) == [] and spooled(spool) == ["a0", "a1", "a2"]
    box.unpark("a")
    assert deliver(box, 3) == ["a0", "a1", "a2"]


def test_records_in_flight_when_their_topic_was_parked_are_not_read_back_twice(
        spool: Spool) -> None:
    spool.append("c", [("p", "a", b"p", b"a0"), ("p", "a", b"p", b"a1")])
    box = Outbox("c", spool, 10, lambda name: None, spooled=spool.held("c"))
    box.sync_disk()
    ((_, fa0),) = send_all(box, 1)  # a0 in flight; its row stays until acknowledged
    box.park("a", "missing")
    box.unpark("a")
    box.sync_disk()
    assert values(box.take_unsent(10)) == ["a1"]
    fa0.ok()
    assert box.reap() == 1
    assert deliver(box, 2) == ["a1"] and spooled(spool) == [] and box.sizes() == (0, 0)


def test_a_failed_send_that_is_the_topics_trouble_parks_the_topic(spool: Spool) -> None:
    refusals = Refusals(spool)
    box = Outbox("c", spool, 10, lambda name: None, refusals=refusals)
    for value, topic in (("a0", "a"), ("x0", "x"), ("a1", "a"), ("x1", "x")):
        box.put(topical(value, topic))
    (_, fa0), (_, fx0) = send_all(box, 2)
    fa0.err(PermissionError("not authorised"))
    fx0.ok()
    assert box.reap() == 1  # x0
    assert refusals.parked_topics == [("a", "not authorised")] and refusals.aside == []
    assert box.parked_topics() == {"a"} and box.reset_pending
    assert "PermissionError: not authorised" in box.parked()["a"]["error"]
    assert values(box.take_unsent(10)) == ["x1"] and spooled(spool) == ["a0", "a1"]


def test_dropping_a_deleted_processor_reaches_its_parked_rows_behind_the_cursor(
        spool: Spool) -> None:
    box = Outbox("c", spool, 2, lambda name: None)
    box.put(topical("a0", "a", "gone"))
    box.park("a", "missing")
    for i in range(4):
        box.put(topical(f"x{i}", "x"))
        box.put(topical(f"a{i + 1}", "a", "gone"))
    assert deliver(box, 4) == ["x0", "x1", "x2", "x3"]  # the cursor passed a1..a4
    box.put(topical("a5", "a", "gone"))  # still in the overflow
    assert box.drop({"gone"}) == 6
    assert spooled(spool) == [] and box.sizes() == (0, 0) and box.owners() == set()
    assert box.release_idle_parked() == {"a"} and box.parked_topics() == set()


def test_the_spool_counts_held_records_per_processor_and_topic(spool: Spool) -> None:
    spool.append("c", [("a", "t", b"a", b"1"), ("a", "u", b"a", b"2"), ("a", "t", b"a", b"3")])
    assert spool.held("c") == {("a", "t"): 2, ("a", "u"): 1}
    box = Outbox("c", spool, 1, lambda name: None, spooled=spool.held("c"))
    assert box.sizes() == (0, 3) and box.owners() == {"a"}
    box.put(topical("4", "v", "b"))  # another topic, nothing of it on disk: straight in
    assert box.sizes() == (1, 3)


def test_an_acknowledgement_that_parks_its_topic_is_no_outage_of_the_destination(
        spool: Spool) -> None:
    """A quiet cluster whose one topic lost its ACL must not look unreachable (and fail all)."""
    refusals = Refusals(spool)
    box = Outbox("c", spool, 10, lambda name: None, refusals=refusals)
    box.put(topical("a0", "a"))
    ((_, fa0),) = send_all(box)
    fa0.err(PermissionError("not authorised"))
    assert box.reap() == 0
    assert box.parked_topics() == {"a"} and refusals.parked_topics == [("a", "not authorised")]
    assert box.reset_pending  # the producer still starts afresh (idempotent sequence)
    assert box.failed_at is None
    assert spooled(spool) == ["a0"]
