"""Processor rules without models: the state machine, the service's checks, the mailbox.

Through the public surface only (service methods, reconciler turns, FakeRuntime), so the
processors package can change inside without these tests changing.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fakes import Harness

from streamproc.config import InputsConfig, load_config
from streamproc.dataplane.guard.allowlist import InputAllowlist, InputRefused, InputUnresolved
from streamproc.dataplane.regions import regions_from_wire, regions_to_wire
from streamproc.errors import (
    InvalidParameterException,
    LimitExceededException,
    ResourceInUseException,
    ResourceNotFoundException,
)
from streamproc.ledger import Appliers, LocalLedger
from streamproc.processors.commands import (
    ClaimProcessor,
    Report,
    ReportProcessor,
    StartProcessor,
    UpdateProcessor,
)
from streamproc.processors.kinds import FaceSearchKind
from streamproc.processors.mailbox import Mailbox, MailboxEvents
from streamproc.processors.rules import ProcessorRules
from streamproc.processors.service import ProcessorService
from streamproc.processors.state import (
    CAN_DELETE,
    CAN_START,
    CAN_STOP,
    CAN_UPDATE,
    TRANSITIONS,
    IllegalTransition,
    ProcessorState,
    ProcessorStatus,
)
from streamproc.storage.processors import ProcessorStore

S = ProcessorStatus
REGION = {"BoundingBox": {"Left": 0.0, "Top": 0.0, "Width": 0.5, "Height": 1.0}}
REGIONS = regions_from_wire([REGION])  # as the API parses them


# ---- the state machine ---------------------------------------------------------------------

EXPECTED = {  # Rekognition's lifecycle, written out independently of the table
    S.STOPPED: {S.STARTING, S.UPDATING},
    S.FAILED: {S.STARTING, S.UPDATING},
    S.STARTING: {S.RUNNING, S.STOPPING, S.FAILED},
    S.RUNNING: {S.STOPPING, S.FAILED, S.STARTING, S.UPDATING},
    S.STOPPING: {S.STOPPED},
    S.UPDATING: {S.STOPPED, S.FAILED, S.RUNNING},
}


@pytest.mark.parametrize("old", list(S))
@pytest.mark.parametrize("new", list(S))
def test_every_move_is_allowed_or_refused_as_the_lifecycle_says(old: S, new: S) -> None:
    assert set(TRANSITIONS) == set(S) and TRANSITIONS[old] == frozenset(EXPECTED[old])
    state = ProcessorState("p", old)
    if new == old or new in EXPECTED[old]:
        state.change(new, "why")
        assert state.status is new and state.message == "why"
    else:
        with pytest.raises(IllegalTransition, match=f"p: {old.value} -> {new.value}"):
            state.change(new)
        assert state.status is old


def test_operation_sets() -> None:
    assert CAN_START == {S.STOPPED, S.FAILED}
    assert CAN_STOP == {S.STARTING, S.RUNNING}
    assert CAN_DELETE == {S.STOPPED, S.FAILED}
    assert CAN_UPDATE == {S.STOPPED, S.FAILED, S.RUNNING}


def test_changes_notify_once_and_a_repeat_is_no_change() -> None:
    seen: list[tuple[str, S, S, str]] = []
    state = ProcessorState("p", S.RUNNING, "", updated=5.0,
                           listener=lambda *args: seen.append(args))
    assert state.updated == 5.0
    assert state.change(S.RUNNING) is S.RUNNING and seen == [] and state.updated == 5.0
    assert state.change(S.RUNNING, "Kafka cluster k:1 unreachable for 6 s") is S.RUNNING
    assert seen == [("p", S.RUNNING, S.RUNNING, "Kafka cluster k:1 unreachable for 6 s")]
    assert state.updated > 5.0
    assert state.change(S.FAILED, "gone") is S.RUNNING
    assert seen[-1] == ("p", S.RUNNING, S.FAILED, "gone") and len(seen) == 2
    assert state.change_if(frozenset({S.FAILED}), S.STARTING)
    assert not state.change_if(frozenset({S.FAILED}), S.STARTING, "x")
    assert state.status is S.STARTING and state.message == "" and len(seen) == 3


def test_a_state_without_listener_or_timestamp_works() -> None:
    state = ProcessorState("p")
    assert state.status is S.STOPPED and state.message == "" and state.updated > 0
    state.change(S.STARTING)
    assert state.status is S.STARTING


# ---- create -----------------------------------------------------------------------------------

def test_create_refuses_outputs_without_a_topic_or_a_cluster(h: Harness) -> None:
    no_topic = "^Output.KinesisDataStream.Arn names no Kafka topic$"
    with pytest.raises(InvalidParameterException, match=no_topic):
        h.create("a", output_arn="arn:aws:kinesis:us-east-1:123456789012:stream/bad topic")
    with pytest.raises(InvalidParameterException, match=no_topic):
        h.create("a", output_arn="kafka://host:9/")
    for reserved in (".", ".."):  # names Kafka refuses: no record could ever be sent
        with pytest.raises(InvalidParameterException, match=no_topic):
            h.create("a", output_arn=f"kafka://k:9092/{reserved}")
        with pytest.raises(InvalidParameterException, match=no_topic):
            h.create("a", output_arn=f"arn:aws:kinesis:us-east-1:123456789012:stream/{reserved}")
    service = _service(h, **{"kafka.bootstrap": None, "outputs.clusters": ["k2:9092"]})
    with pytest.raises(InvalidParameterException) as err:
        service.create(_args("a"), {})
    assert err.value.message == (
        "No default Kafka cluster is configured (streamproc serve --kafka HOST:PORT); "
        "use a kafka://host:port/topic output instead")
    service.create(_args("b", output_arn="kafka://k2:9092/elsewhere"), {})  # its own cluster
    assert [n for n, _ in h.service.list(None, None)[0]] == ["b"]


@pytest.mark.parametrize("output, rule, detail", [
    ("kafka://169.254.169.254:9092/t", "clusters", "cluster 169.254.169.254:9092 is not"),
    ("kafka://10.0.0.9:9092/t", "clusters", "cluster 10.0.0.9:9092 is not"),
    ("kafka://k:9092,evil:9092/t", "clusters", "cluster k:9092,evil:9092 is not"),
    ("kafka://K:9092/t", "clusters", "cluster K:9092 is not"),  # as kafka.clusters keys
    ("arn:aws:kinesis:us-east-1:123456789012:stream/__consumer_offsets", "topics",
     "topic __consumer_offsets is internal"),
    ("kafka://k:9092/__transaction_state", "topics", "topic __transaction_state is internal"),
    ("kafka://extra:9092/__anything", "topics", "topic __anything is internal"),
    ("kafka://k:9092/streamproc.state", "topics", "topic streamproc.state is internal"),
    ("kafka://tls:9093/streamproc.placement", "topics", "topic streamproc.placement is"),
])
def test_create_refuses_outputs_to_other_clusters_and_internal_topics(
        h: Harness, output: str, rule: str, detail: str) -> None:
    service = _service(h, **{"kafka.clusters": {"tls:9093": {}},
                             "outputs.clusters": ["extra:9092"]})
    with pytest.raises(InvalidParameterException) as err:
        service.create(_args("a", output_arn=output), {})
    assert err.value.message.startswith(
        f"Output.KinesisDataStream.Arn refused by outputs.{rule}: {detail}")
    assert h.service.list(None, None) == ([], None)


def test_outputs_may_name_the_configured_clusters(h: Harness) -> None:
    service = _service(h, **{"kafka.clusters": {"tls:9093": {}},
                             "outputs.clusters": ["extra:9092"]})
    for name, output in [("a", "kafka://k:9092/faces"), ("b", "kafka://tls:9093/faces"),
                         ("c", "kafka://extra:9092/faces"), ("d", _args("d")["output_arn"]),
                         ("e", "kafka://k:9092/faces_not-internal.state")]:
        service.create(_args(name, output_arn=output), {})
    assert [n for n, _ in h.service.list(None, None)[0]] == ["a", "b", "c", "d", "e"]


def test_the_cluster_id_names_the_internal_topics(h: Harness) -> None:
    service = _service(h, **{"cluster.id": "edge"})
    for topic in ("edge.state", "edge.placement"):
        with pytest.raises(InvalidParameterException, match="by outputs.topics: topic "):
            service.create(_args("a", output_arn=f"kafka://k:9092/{topic}"), {})
    service.create(_args("b", output_arn="kafka://k:9092/streamproc.state"), {})


def test_start_judges_the_output_again(h: Harness) -> None:
    """A processor made before its cluster was taken off the list does not start."""
    _service(h, **{"outputs.clusters": ["old:9092"]}).create(
        _args("a", output_arn="kafka://old:9092/faces"), {})
    with pytest.raises(InvalidParameterException,
                       match="^Output.KinesisDataStream.Arn refused by outputs.clusters: "):
        _service(h).start("a")
    assert h.status("a") == "STOPPED"


def _service(h: Harness, **overrides: Any) -> ProcessorService:
    """Another service and rules over the harness's registry and store, with other settings."""
    config = load_config(None, {"kafka.bootstrap": "k:9092", **overrides})
    appliers = Appliers()
    kinds = {"FaceSearch": FaceSearchKind(h.searcher)}
    ProcessorRules(h.registry, ProcessorStore(h.db), h.tags, kinds, h.metrics, config,
                   h.mailbox.changed).register(appliers)
    return ProcessorService(h.registry, LocalLedger(appliers), h.tags, h.metrics, config,
                            kinds)


def test_create_checks_the_emit_tag(h: Harness) -> None:
    with pytest.raises(InvalidParameterException, match="'frame' or 'track'"):
        h.service.create(_args("a"), {"streamproc:emit": "sometimes"})
    assert h.service.list(None, None) == ([], None)
    h.service.create(_args("f"), {"streamproc:emit": "frame", "other": "x"})
    h.service.create(_args("t"), {"streamproc:emit": "track"})
    h.service.create(_args("d"), {})
    modes = {n: h.service.emit_mode(h.service.describe(n)[0]) for n in ("f", "t", "d")}
    assert modes == {"f": "frame", "t": "track", "d": h.config.processors.emit}
    assert h.tags.get(h.service.arn("f")) == {"streamproc:emit": "frame", "other": "x"}


def _args(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "input_arn": f"tcp://cam-{name}:1", "collection_id": "people",
            "output_arn": f"arn:aws:kinesis:us-east-1:123456789012:stream/out-{name}",
            "threshold": 80.0, "role_arn": "arn:aws:iam::123456789012:role/r",
            "kind": "FaceSearch", **extra}


def test_create_refuses_names_inputs_and_outputs_in_use(h: Harness) -> None:
    h.create("cam")
    with pytest.raises(ResourceInUseException, match="^Stream processor name already in use"):
        h.create("cam", input_arn="tcp://elsewhere:1", output_arn="kafka://k:1/other")
    with pytest.raises(ResourceInUseException,
                       match="^Input stream is already used by stream processor cam$"):
        h.create("cam2", input_arn="tcp://cam-cam:1")
    with pytest.raises(ResourceInUseException,
                       match="^Output stream is already used by stream processor cam$"):
        h.create("cam3", output_arn="arn:aws:kinesis:eu-west-1:123456789012:stream/out-cam")
    # The same topic on another cluster is another output.
    h.create("cam4", output_arn="kafka://other:9092/out-cam")
    assert [n for n, _ in h.service.list(None, None)[0]] == ["cam", "cam4"]


def test_the_processor_limit_is_exact(h: Harness) -> None:
    service = _service(h, **{"processors.max_processors": 3})
    for i in range(3):
        service.create(_args(f"p{i}"), {})
    with pytest.raises(LimitExceededException,
                       match="^Stream processor limit exceeded for account, limit - 3$"):
        service.create(_args("p3"), {})
    service.delete("p0")
    service.create(_args("p3"), {})


def test_create_persists_a_stopped_processor_with_its_definition(h: Harness) -> None:
    spec = h.service.create(_args("cam", regions=REGIONS, threshold=91.0), {})
    server = h.config.server
    assert spec.arn == h.service.arn("cam") == (
        f"arn:aws:rekognition:{server.region}:{server.account_id}:streamprocessor/cam")
    assert spec.created > 0 and h.status("cam") == "STOPPED"
    entry = h.registry.require("cam")
    assert entry.state.updated == spec.created and entry.desired.value == "STOPPED"
    (stored,) = ProcessorStore(h.db).load()
    assert (stored.name, stored.status, stored.desired) == ("cam", "STOPPED", "STOPPED")
    assert stored.spec["regions"] == [REGION] and stored.spec["threshold"] == 91.0
    assert h.service.sensor_for("nobody") is None
    sensor = h.service.sensor_for("cam")
    assert sensor is not None
    sensor.emitted()
    assert h.metrics_registry.get_sample_value("streamproc_processor_records_emitted_total",
                                               {"processor": "cam"}) == 1


def _status_gauge(h: Harness, name: str) -> dict[str, float]:
    return {s.value: h.metrics_registry.get_sample_value(
        "streamproc_processor_status", {"processor": name, "status": s.value}) for s in S}


def test_the_status_gauge_follows_every_change(h: Harness) -> None:
    h.create("cam")
    assert _status_gauge(h, "cam")["STOPPED"] == 1
    assert {k for k, v in _status_gauge(h, "cam").items() if v} == {"STOPPED"}
    h.service.start("cam")
    gauge = _status_gauge(h, "cam")
    assert gauge["STARTING"] == 1 and gauge["STOPPED"] == 0
    h.turn()
    h.runtime.latest("cam").report_frame()
    h.turn()
    gauge = _status_gauge(h, "cam")
    assert gauge["RUNNING"] == 1 and gauge["STARTING"] == 0


# ---- start / stop / delete / update ---------------------------------------------------------

def _to(h: Harness, name: str, status: S) -> None:
    """Drive ``name`` to ``status`` through the public surface."""
    if status is S.STOPPED:
        return
    h.service.start(name)
    if status is S.STARTING:
        return
    h.turn()
    if status is S.FAILED:
        h.runtime.latest(name).fail("Stream unavailable")
        h.turn()
        return
    h.runtime.latest(name).report_frame()
    h.turn()
    if status is S.STOPPING:
        h.runtime.stuck.add(name)
        h.service.stop(name)


@pytest.mark.parametrize("status", [S.STOPPED, S.STARTING, S.RUNNING, S.FAILED, S.STOPPING])
def test_operations_are_allowed_exactly_in_their_states(h: Harness, status: S) -> None:
    ops = {"start": h.service.start, "stop": h.service.stop,
           "update": lambda n: h.service.update(n, REGIONS, None, [], False),
           "delete": h.service.delete}
    allowed = {"start": CAN_START, "stop": CAN_STOP, "update": CAN_UPDATE, "delete": CAN_DELETE}
    messages = {"start": "Specified resource is in use.",
                "stop": "Processor not available for stopping stream.",
                "update": "Specified resource is in use.",
                "delete": "Cannot delete stream processor."}
    for op, call in ops.items():
        name = f"cam-{op}"
        h.create(name)
        _to(h, name, status)
        assert h.status(name) == status.value
        if status in allowed[op]:
            call(name)
        else:
            with pytest.raises(ResourceInUseException) as err:
                call(name)
            assert err.value.message == messages[op]
            assert h.status(name) == status.value  # a refused call changes nothing


def test_unknown_processors_are_not_found(h: Harness) -> None:
    for call in (lambda: h.service.start("x"), lambda: h.service.stop("x"),
                 lambda: h.service.delete("x"), lambda: h.service.describe("x"),
                 lambda: h.service.update("x", None, None, [], False)):
        with pytest.raises(ResourceNotFoundException, match="^Stream processor x not found$"):
            call()


def test_start_and_stop_record_what_the_user_wants(h: Harness) -> None:
    h.create("cam")
    notified: list[str] = []
    first = h.service.start("cam")
    second_entry = h.registry.require("cam")
    assert second_entry.desired.value == "RUNNING" and second_entry.session_id == first
    assert ProcessorStore(h.db).load()[0].desired == "RUNNING"
    h.service.stop("cam")
    assert h.status("cam") == "STOPPING" and h.registry.require("cam").desired.value == "STOPPED"
    assert ProcessorStore(h.db).load()[0].desired == "STOPPED"
    h.turn()
    again = h.service.start("cam")
    assert again != first and len(again) == 36
    del notified


def test_every_change_is_posted_to_the_mailbox(h: Harness) -> None:
    h.mailbox.take()
    h.create("cam")
    for call in (lambda: h.service.start("cam"), lambda: h.service.stop("cam"),
                 lambda: h.service.update("cam", REGIONS, None, [], False),
                 lambda: h.service.delete("cam")):
        h.turn()
        h.mailbox.take()
        call()
        assert h.mailbox.wake.is_set() and h.mailbox.take().dirty == {"cam"}


def test_delete_forgets_definition_tags_and_metrics(h: Harness) -> None:
    h.service.create(_args("cam"), {"site": "hq"})
    arn = h.service.arn("cam")
    sensor = h.service.sensor_for("cam")
    assert sensor is not None
    h.service.delete("cam")
    assert h.registry.get("cam") is None and ProcessorStore(h.db).load() == []
    assert h.tags.get(arn) == {}
    assert h.metrics_registry.get_sample_value(
        "streamproc_processor_status", {"processor": "cam", "status": "STOPPED"}) is None


def test_update_sets_and_deletes_regions_and_data_sharing(h: Harness) -> None:
    h.create("cam", regions=REGIONS)
    entry = h.registry.require("cam")
    assert entry.version == 0
    h.service.update("cam", None, True, [], False)
    spec, _ = h.service.describe("cam")
    assert regions_to_wire(spec.regions) == [REGION] and spec.data_sharing is True
    assert entry.version == 1
    other = {"Polygon": [{"X": 0.1, "Y": 0.1}, {"X": 0.9, "Y": 0.1}, {"X": 0.5, "Y": 0.9}]}
    h.service.update("cam", regions_from_wire([other]), None, [], False)
    assert regions_to_wire(h.service.describe("cam")[0].regions) == [other]
    assert entry.version == 2
    assert h.service.describe("cam")[0].data_sharing is True  # untouched
    h.service.update("cam", None, False, ["RegionsOfInterest"], False)
    spec, _ = h.service.describe("cam")
    assert spec.regions == () and spec.data_sharing is False and entry.version == 3
    assert ProcessorStore(h.db).load()[0].spec["regions"] == []
    h.service.update("cam", REGIONS, None, ["RegionsOfInterest"], False)
    assert h.service.describe("cam")[0].regions == ()  # deleting wins over setting
    with pytest.raises(InvalidParameterException) as err:
        h.service.update("cam", REGIONS, None, [], True)
    assert err.value.message == (
        "SettingsForUpdate.ConnectedHomeForUpdate applies only to label detection "
        "processors; this is a face search processor")
    assert h.service.describe("cam")[0].regions == () and entry.version == 4


def test_list_pages_by_name_with_statuses(h: Harness) -> None:
    for name in ("b", "a", "d", "c"):
        h.create(name)
    h.service.start("c")
    page, token = h.service.list(None, 2)
    assert page == [("a", "STOPPED"), ("b", "STOPPED")] and token
    from streamproc.rekognition.tokens import decode_token

    assert decode_token("processors", token, str) == "b"  # stateless: any daemon reads it
    page, token = h.service.list(token, 2)
    assert page == [("c", "STARTING"), ("d", "STOPPED")] and token is None
    assert h.service.list(None, None)[1] is None and len(h.service.list(None, None)[0]) == 4


# ---- loading after a restart -------------------------------------------------------------------

@pytest.mark.parametrize(("status", "desired", "settled"), [
    ("STOPPED", "STOPPED", "STOPPED"), ("FAILED", "STOPPED", "FAILED"),
    ("RUNNING", "RUNNING", "STARTING"), ("STARTING", "RUNNING", "STARTING"),
    ("STOPPING", "STOPPED", "STOPPED"),
])
def test_loading_keeps_the_state_and_the_reconciler_converges_it(
        tmp_path: Path, status: str, desired: str, settled: str) -> None:
    """Every (status, desired) pair the appliers write: kept as stored, then converged."""
    first = Harness(tmp_path)
    first.add_collection("people")
    first.create("cam")
    if desired == "RUNNING":
        first.service.start("cam")
    session_id = first.registry.require("cam").session_id
    store = ProcessorStore(first.db)
    store.save_status("cam", status, "earlier message", 123.0)
    store.save_desired("cam", desired, session_id)
    first.close()
    second = Harness(tmp_path)
    second.mailbox.take()
    second.rules.load()
    entry = second.registry.require("cam")
    assert second.status("cam") == status and entry.desired.value == desired
    assert entry.session_id == session_id  # the same Start: its reports still count
    assert second.message("cam") == "earlier message"
    assert entry.state.updated == 123.0  # LastUpdateTimestamp survives the restart
    assert second.mailbox.take().dirty == {"cam"}
    gauge = {s.value: second.metrics_registry.get_sample_value(
        "streamproc_processor_status", {"processor": "cam", "status": s.value}) for s in S}
    assert gauge[status] == 1 and sum(v or 0 for v in gauge.values()) == 1
    second.turn(2)
    assert second.status("cam") == settled
    assert [s.plan.name for s in second.runtime.launched] == (
        ["cam"] if desired == "RUNNING" else [])
    second.close()


# ---- reports and claims: which node's word counts ---------------------------------------------

def _report(ledger: LocalLedger, event: str, session_id: str, message: str = "") -> None:
    ledger.submit(ReportProcessor("cam", session_id, Report(event), message))


def test_only_the_claiming_node_reports_for_the_current_start(h: Harness) -> None:
    h.create("cam")
    sid = h.service.start("cam")
    a, b = LocalLedger(h.appliers, "node-a"), LocalLedger(h.appliers, "node-b")
    entry = h.registry.require("cam")
    a.submit(ClaimProcessor("cam", "an-earlier-start"))
    a.submit(ClaimProcessor("nobody", sid))
    assert entry.owner == "" and ProcessorStore(h.db).load()[0].owner == ""
    a.submit(ClaimProcessor("cam", sid))
    assert entry.owner == "node-a" and ProcessorStore(h.db).load()[0].owner == "node-a"
    _report(b, "running", sid)  # not the owner: ignored
    _report(a, "running", "an-earlier-start")  # not this Start: ignored
    b.submit(ReportProcessor("nobody", sid, Report.RUNNING))
    assert h.status("cam") == "STARTING"
    _report(a, "running", sid)
    assert h.status("cam") == "RUNNING"
    _report(a, "message", sid, "Kafka k:9092 unreachable for 12 s")
    assert (h.status("cam"), h.message("cam")) == ("RUNNING", "Kafka k:9092 unreachable for 12 s")
    b.submit(ClaimProcessor("cam", sid))  # failed over to b
    assert entry.owner == "node-b" and ProcessorStore(h.db).load()[0].owner == "node-b"
    _report(a, "failed", sid, "from the node that lost it")
    assert h.status("cam") == "RUNNING"
    _report(b, "starting", sid)
    assert h.status("cam") == "STARTING"
    _report(b, "failed", sid, "Stream unavailable")
    assert (h.status("cam"), h.message("cam")) == ("FAILED", "Stream unavailable")
    assert entry.desired.value == "STOPPED"
    (stored,) = ProcessorStore(h.db).load()
    assert (stored.status, stored.desired) == ("FAILED", "STOPPED")


@pytest.mark.parametrize(("status", "event", "after"), [
    ("STARTING", "running", "RUNNING"), ("RUNNING", "running", "RUNNING"),
    ("STOPPING", "running", "STOPPING"), ("RUNNING", "starting", "STARTING"),
    ("STARTING", "starting", "STARTING"), ("STARTING", "failed", "FAILED"),
    ("RUNNING", "failed", "FAILED"), ("STOPPING", "failed", "STOPPING"),
    ("STOPPING", "stopped", "STOPPED"), ("RUNNING", "stopped", "RUNNING"),
    ("STARTING", "message", "STARTING"),
])
def test_a_report_changes_the_status_only_from_its_states(
        h: Harness, status: str, event: str, after: str) -> None:
    h.create("cam")
    sid = h.service.start("cam")
    if status != "STARTING":
        _report(h.ledger, "running", sid)
    if status == "STOPPING":
        h.service.stop("cam")
    assert h.status("cam") == status
    _report(h.ledger, event, sid, "why")
    assert h.status("cam") == after
    desired = "STOPPED" if status == "STOPPING" or after == "FAILED" else "RUNNING"
    assert h.registry.require("cam").desired.value == desired
    assert ProcessorStore(h.db).load()[0].desired == desired


def test_appliers_notify_persist_and_word_their_refusals(h: Harness) -> None:
    h.mailbox.take()
    h.create("cam")
    assert h.mailbox.take().dirty == {"cam"}
    labels = {sample.labels["status"] for metric in h.metrics_registry.collect()
              if metric.name == "streamproc_processor_status" for sample in metric.samples
              if sample.labels["processor"] == "cam"}
    assert labels == {"STOPPED"}  # no series for a status it never had
    sid = h.service.start("cam")
    assert ProcessorStore(h.db).load()[0].session_id == sid  # resumed with its SessionId
    with pytest.raises(ResourceInUseException, match=r"^Specified resource is in use\.$"):
        h.service.start("cam")
    _report(h.ledger, "running", sid)
    h.service.stop("cam")
    with pytest.raises(ResourceInUseException, match=r"^Specified resource is in use\.$"):
        h.service.update("cam", REGIONS, None, [], False)
    # A report without a message (an older node's) clears the message.
    older = {"kind": "processor.report", "id": "i", "node": "local",
             "payload": {"name": "cam", "session_id": sid, "event": "stopped"}}
    h.ledger.submit(h.appliers.decode(json.dumps(older).encode()).command)
    assert (h.status("cam"), h.message("cam")) == ("STOPPED", "")


# ---- the inputs allowlist at the API -------------------------------------------------------------

def _resolve(host: str) -> list[str]:
    answers = {"cam.example": ["10.0.0.5"], "meta.example": ["169.254.169.254"]}
    if host not in answers:
        msg = f"cannot resolve {host}"
        raise InputUnresolved(msg)
    return answers[host]


def test_the_api_refuses_inputs_the_allowlist_refuses(
        h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamproc.processors.service")
    service = ProcessorService(h.registry, h.ledger, h.tags, h.metrics, h.config, h.kinds,
                               InputAllowlist(InputsConfig(), resolver=_resolve))
    with pytest.raises(InvalidParameterException) as err:
        service.create(_args("meta", input_arn="rtsp://meta.example/s"), {})
    assert err.value.message == ("Input.KinesisVideoStream.Arn refused by "
                                 "inputs.blocked_networks: " + _refusal("rtsp://meta.example/s"))
    assert h.service.list(None, None) == ([], None)
    service.create(_args("ok", input_arn="rtsp://cam.example/s"), {})
    assert "created processor ok: rtsp://cam.example/s -> arn:aws:kinesis:us-east-1:" \
           "123456789012:stream/out-ok" in [r.getMessage() for r in caplog.records]
    # A KVS ARN names an operator-configured URL: judged at connect, not here.
    service.create(_args("kvs", input_arn=(
        "arn:aws:kinesisvideo:us-east-1:123456789012:stream/door/1600000000000")), {})
    # A name that does not resolve now is judged again at connect.
    service.create(_args("later", input_arn="rtsp://u:pw@later.example/s"), {})
    assert "input host of rtsp://***:***@later.example/s does not resolve now; judged again " \
           "at connect" in [r.getMessage() for r in caplog.records]
    assert [n for n, _ in h.service.list(None, None)[0]] == ["kvs", "later", "ok"]
    # Start judges the input again (the allowlist may have changed since Create).
    strict = ProcessorService(h.registry, h.ledger, h.tags, h.metrics, h.config, h.kinds,
                              InputAllowlist(InputsConfig(schemes=["http"]), resolver=_resolve))
    with pytest.raises(InvalidParameterException, match="refused by inputs.schemes"):
        strict.start("ok")
    assert h.status("ok") == "STOPPED"
    service.start("ok")
    assert h.status("ok") == "STARTING"


def _refusal(url: str) -> str:
    with pytest.raises(InputRefused) as err:
        InputAllowlist(InputsConfig(), resolver=_resolve).check(url)
    return err.value.message


# ---- the mailbox ------------------------------------------------------------------------------

def test_the_mailbox_coalesces_and_hands_over_everything_once() -> None:
    box = Mailbox()
    assert not box.wake.is_set()
    box.changed("a")
    box.changed("a")
    box.changed("b")
    box.outage("k:1", "down 6 s")
    box.outage("k:1", "down 12 s")  # the latest report wins
    box.outage("k:2", None)
    box.unreachable("k:3", "down 301 s")
    box.collection_gone("c", 1.5)
    box.collection_gone("c", 1.5)
    box.fail_all("analyzer gave up")
    assert box.wake.is_set()
    events = box.take()
    assert not box.wake.is_set()
    assert events.dirty == {"a", "b"}
    assert events.outages == {"k:1": "down 12 s", "k:2": None}
    assert events.unreachable == {"k:3": "down 301 s"}
    assert events.collections_gone == {("c", 1.5)} and events.fail_all == "analyzer gave up"
    empty = box.take()
    assert (empty.dirty, empty.outages, empty.unreachable, empty.collections_gone,
            empty.fail_all) == (set(), {}, {}, set(), None)


def test_every_post_wakes_the_loop() -> None:
    box = Mailbox()
    posts = [lambda: box.changed("a"), box.poke, lambda: box.outage("k", None),
             lambda: box.unreachable("k", "x"), lambda: box.collection_gone("c", 1.0),
             lambda: box.fail_all("x")]
    events = MailboxEvents(box)
    posts += [lambda: events.session_changed("a", 1), lambda: events.destination_outage("k", "m"),
              lambda: events.destination_unreachable("k", "m")]
    for post in posts:
        box.take()
        post()
        assert box.wake.is_set()
    box.take()
    events.destination_outage("k", "m")
    events.destination_unreachable("j", "n")
    taken = box.take()
    assert taken.outages == {"k": "m"} and taken.unreachable == {"j": "n"}


# ---- what operators read in the log -------------------------------------------------------------

def test_every_status_change_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamproc.processors.state")
    state = ProcessorState("cam")
    state.change(S.STARTING)
    state.change(S.STARTING)  # no change, no line
    state.change(S.FAILED, "Collection not found")
    assert [r.getMessage() for r in caplog.records] == [
        "processor cam: STOPPED -> STARTING",
        "processor cam: STARTING -> FAILED (Collection not found)"]


def test_logs_show_processor_urls_redacted(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streamproc.processors")
    h.create("cam", input_arn="rtsp://admin:hunter2@cam/live?token=s3cret",
             output_arn="kafka://k:1/out")
    h.service.start("cam")
    h.turn()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "created processor cam: rtsp://***:***@cam/live?token=*** -> kafka://k:1/out" in text
    assert "processor cam: session launched on rtsp://***:***@cam/live?token=***" in text
    assert "hunter2" not in text and "s3cret" not in text


def test_the_appliers_refuse_a_start_or_update_the_state_no_longer_allows(h: Harness) -> None:
    """A command that passed the service's check can meet another state in the log."""
    h.create("cam")
    h.service.start("cam")  # STARTING: neither a start nor an update applies
    with pytest.raises(ResourceInUseException, match=r"^Specified resource is in use\.$"):
        h.ledger.submit(StartProcessor("cam", "another-start"))
    with pytest.raises(ResourceInUseException, match=r"^Specified resource is in use\.$"):
        h.ledger.submit(UpdateProcessor("cam", (), None))
    assert h.status("cam") == "STARTING"
