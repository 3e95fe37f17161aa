"""Cluster mode with real processes: three `streamproc serve --cluster` daemons, one tansu
broker, live ffmpeg streams, boto3 against different nodes.

The tests run in order on one cluster (module fixtures): state shared through the log,
placement, failure of a node, recovery, restart of the whole cluster.
"""

from __future__ import annotations

import concurrent.futures
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import SHARED, client_for, fixture_photo
from jobs_helpers import all_pages, sample_times, video, wait_job
from streams import BOTH, CLASSROOM, MAN, WOMAN, Records, create, enrol
from videos import frame_times_ms, looped

from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.clusterkit import Node, Overlap, poll
from streamproc.tools.livestream import LoopingStream

FAILOVER_BOUND_S = 30.0  # session timeout (6 s) + join + launch, with room for a loaded box
OVERLAP_BOUND_S = 2.0  # docs/cluster.md's bound on two nodes running one processor
JOB_LOOPS = 12  # the stored video a killed node was analysing: 54 s, 270 sampled frames


@pytest.fixture(scope="module")
def cluster_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker()
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One object root every node reads (as one S3 endpoint would be)."""
    root = tmp_path_factory.mktemp("cluster-objects")
    (root / "vids").mkdir()
    shutil.copy(BOTH, root / "vids" / "both.mp4")
    looped(BOTH, JOB_LOOPS, root / "vids" / "long.mp4")
    return root


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, cluster_broker: EmbeddedBroker,
          objects: Path) -> Iterator[list[Node]]:
    root = tmp_path_factory.mktemp("cluster")
    started = [Node(root, f"node-{c}", cluster_broker.bootstrap, SHARED, client_for,
                    **{"objects.local_root": str(objects)}).start()
               for c in "abc"]
    yield started
    for node in started:
        node.stop()


@pytest.fixture(scope="module")
def streams() -> Iterator[list[LoopingStream]]:
    live = [LoopingStream(BOTH if i % 2 else CLASSROOM) for i in range(6)]
    for stream in live:
        stream.start()
    yield live
    for stream in live:
        stream.stop()


def _members(node: Node) -> list[str]:
    return [m["node"] for m in node.cluster()["members"]]


def test_any_node_answers_and_writes_are_seen_everywhere(nodes: list[Node]) -> None:
    a, b, c = nodes
    assert poll(lambda: all(len(_members(n)) == 3 for n in nodes), 30), "group never formed"
    a.rek.create_collection(CollectionId="people")
    assert enrol(a.rek, "people", MAN, "man-M", every=12) >= 1
    # IndexFaces acknowledged by A is found by SearchFacesByImage on B within 1 s: a search
    # B starts within 1 s of the acknowledgement finds it (the search's own time not counted).
    indexed = a.rek.index_faces(CollectionId="people", ExternalImageId="A",
                                Image={"Bytes": fixture_photo("person_a_1")})
    acked = time.monotonic()
    assert indexed["FaceRecords"]
    found = poll(lambda: [m for m in b.rek.search_faces_by_image(
        CollectionId="people", Image={"Bytes": fixture_photo("person_a_2")})["FaceMatches"]
        if m["Face"].get("ExternalImageId") == "A"], 1.0, every=0.05)
    assert found, "B did not see A's face within 1 s"
    print(f"B found A's face {time.monotonic() - acked:.2f} s after A acknowledged it")
    def counts() -> dict[str, int]:
        return {n.name: n.rek.describe_collection(CollectionId="people")["FaceCount"]
                for n in nodes}
    # C follows the ledger as B does, and may apply the face a moment after B did.
    assert poll(lambda: len(set(counts().values())) == 1, 1.0, every=0.05), counts()
    # Paging tokens of one node are good on another.
    page = b.rek.list_faces(CollectionId="people", MaxResults=1)
    assert c.rek.list_faces(CollectionId="people", MaxResults=1,
                            NextToken=page["NextToken"])["Faces"]


def test_two_nodes_creating_one_name_at_once_exactly_one_wins(nodes: list[Node]) -> None:
    a, b, _ = nodes

    for attempt in range(3):
        name = f"race-{attempt}"
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            outcomes = list(pool.map(_create_named, [a, b, a, b], [name] * 4))
        assert sorted(outcomes) == ["created", "exists", "exists", "exists"], outcomes
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda n: _create_processor(n, "twin"), [a, b]))
    assert sorted(results) == ["ResourceInUseException", "created"], results


def _create_named(node: Node, name: str) -> str:
    try:
        node.rek.create_collection(CollectionId=name)
        return "created"
    except node.rek.exceptions.ResourceAlreadyExistsException:
        return "exists"


def _create_processor(node: Node, name: str) -> str:
    try:
        create(node.rek, name, f"tcp://127.0.0.1:{_closed_port()}/twin", "twin-out", "people")
        return "created"
    except ClientError as exc:
        return exc.response["Error"]["Code"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_processors_spread_over_the_nodes_and_every_node_agrees(
        nodes: list[Node], streams: list[LoopingStream], cluster_broker: EmbeddedBroker
) -> None:
    a = nodes[0]
    for i, stream in enumerate(streams):
        create(a.rek, f"cam-{i}", stream.url, f"cam-{i}-out", "people")
        a.rek.start_stream_processor(Name=f"cam-{i}")
    names = [f"cam-{i}" for i in range(6)]

    def everyone_sees_running() -> bool:
        return all(n.rek.describe_stream_processor(Name=p)["Status"] == "RUNNING"
                   for n in nodes for p in names)

    assert poll(everyone_sees_running, 60), "not every node saw every processor RUNNING"

    def cams() -> dict[str, list[str]]:
        return {n.name: sorted(p for p in n.cluster()["running_here"] if p.startswith("cam-"))
                for n in nodes}

    # Creating them one by one moved some between nodes (each move waits for the old
    # node's release): the spread settles within a few seconds.
    assert poll(lambda: sorted(p for ps in cams().values() for p in ps) == names and
                sorted(len(ps) for ps in cams().values()) == [2, 2, 2], 20), cams()
    def alike() -> bool:  # one placement, seen alike everywhere (each follows the group)
        views = [n.cluster()["members"] for n in nodes]
        return all(view == views[0] for view in views)

    assert poll(alike, 10), [n.cluster()["members"] for n in nodes]
    records = Records(cluster_broker.bootstrap, "cam-1-out")
    try:
        assert len(records.wait_for(lambda rs: len(rs) >= 3, 30)) >= 3
    finally:
        records.close()


def test_deleting_a_collection_on_a_third_node_fails_its_processors_everywhere(
        nodes: list[Node], streams: list[LoopingStream]) -> None:
    a, b, c = nodes
    a.rek.create_collection(CollectionId="doomed")
    enrol(a.rek, "doomed", WOMAN, "woman-W", every=12)
    spare = [LoopingStream(BOTH) for _ in range(3)]
    for i, stream in enumerate(spare):
        stream.start()
        create(b.rek, f"doomed-{i}", stream.url, f"doomed-{i}-out", "doomed")
        b.rek.start_stream_processor(Name=f"doomed-{i}")
    try:
        assert poll(lambda: all(c.rek.describe_stream_processor(Name=f"doomed-{i}")["Status"]
                                == "RUNNING" for i in range(3)), 60)
        where = {n.name: [p for p in n.cluster()["running_here"] if p.startswith("doomed")]
                 for n in nodes}
        c.rek.delete_collection(CollectionId="doomed")

        def failed_everywhere() -> bool:
            return all(n.rek.describe_stream_processor(Name=f"doomed-{i}")["Status"] == "FAILED"
                       for n in nodes for i in range(3))

        assert poll(failed_everywhere, 15), where
        desc = a.rek.describe_stream_processor(Name="doomed-0")
        assert desc["StatusMessage"] == "Collection not found"
        # Failed means stopped where they ran, not only in Describe.
        assert poll(lambda: not any(p.startswith("doomed") for n in nodes
                                    for p in n.cluster()["running_here"]), 15), where
        for i in range(3):
            a.rek.delete_stream_processor(Name=f"doomed-{i}")
    finally:
        for stream in spare:
            stream.stop()


def test_a_killed_node_s_processors_run_elsewhere_within_the_bound(
        nodes: list[Node], cluster_broker: EmbeddedBroker) -> None:
    with Overlap(lambda: nodes) as overlap:
        def cams(node: Node) -> list[str]:
            return [p for p in node.cluster()["running_here"] if p.startswith("cam-")]

        busiest = max(nodes, key=lambda n: len(cams(n)))
        moved = cams(busiest)
        assert moved
        others = [n for n in nodes if n is not busiest]
        topics = {name: Records(cluster_broker.bootstrap, f"{name}-out") for name in moved}
        try:
            for records in topics.values():
                records.poll()
            before = {name: len(r.items) for name, r in topics.items()}
            killed_at = time.monotonic()
            busiest.kill()

            def taken_over() -> bool:
                running = [p for n in others for p in n.cluster()["running_here"]]
                return all(p in running for p in moved) and all(
                    others[0].rek.describe_stream_processor(Name=p)["Status"] == "RUNNING"
                    for p in moved)

            assert poll(taken_over, FAILOVER_BOUND_S), f"{moved} not taken over"
            failover = time.monotonic() - killed_at
            for name, records in topics.items():  # and their topics get new records
                records.wait_for(lambda rs, n=before[name]: len(rs) > n + 2, 20)
                assert len(records.items) > before[name] + 2, name
        finally:
            for records in topics.values():
                records.close()
        busiest.start()  # the killed node rejoins on its data dir and takes a share
        assert poll(lambda: len(busiest.cluster()["running_here"]) >= 1, 40)
        assert poll(lambda: sorted(len([p for p in n.cluster()["running_here"]
                                        if p.startswith("cam-")]) for n in nodes)
                    == [2, 2, 2], 30)
    print(f"failover {failover:.1f} s; longest overlap {overlap.longest:.2f} s")
    assert failover < FAILOVER_BOUND_S
    assert overlap.longest <= OVERLAP_BOUND_S, (overlap.worst, overlap.longest)


def test_while_the_broker_is_frozen_reads_answer_and_writes_get_a_retryable_error(
        nodes: list[Node], cluster_broker: EmbeddedBroker) -> None:
    a = nodes[0]
    process = cluster_broker.process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    try:
        assert a.rek.describe_collection(CollectionId="people")["FaceCount"] >= 1
        assert "people" in a.rek.list_collections()["CollectionIds"]
        started = time.monotonic()
        with pytest.raises(ClientError) as err:
            a.rek.create_collection(CollectionId="while-frozen")
        assert err.value.response["Error"]["Code"] == "ThrottlingException"
        assert "Check before you retry" in err.value.response["Error"]["Message"]
        assert time.monotonic() - started < 20
    finally:
        process.send_signal(signal.SIGCONT)
    # Everything converges when the broker is back: a write through another node works
    # and is seen by all.
    # (A try that timed out may have landed, so the retry can find it: "exists".)
    assert poll(lambda: _create_named(nodes[1], "after-thaw") in ("created", "exists"), 60)
    # A's producer is idempotent, so a later write of A's lands after the frozen one did (if
    # it did): once every node lists the later one, each has applied both or neither.
    assert poll(lambda: _create_named(a, "after-thaw-a") in ("created", "exists"), 60)
    assert poll(lambda: all({"after-thaw", "after-thaw-a"} <= set(
        n.rek.list_collections()["CollectionIds"]) for n in nodes), 10)
    # The write sent into the frozen broker may have landed after all, but then everywhere
    # (polled too: a broker may order a request buffered on a dropped connection later).
    def seen() -> set[bool]:
        return {"while-frozen" in n.rek.list_collections()["CollectionIds"] for n in nodes}

    assert poll(lambda: len(seen()) == 1, 10), seen()


def test_corrupt_records_in_the_log_are_skipped_and_counted(
        nodes: list[Node], cluster_broker: EmbeddedBroker) -> None:
    from kafka import KafkaProducer

    before = nodes[0].metric("streamproc_cluster_records_skipped_total")
    producer = KafkaProducer(bootstrap_servers=cluster_broker.bootstrap)
    producer.send("streamproc.state", b"not json at all").get(10)
    producer.send("streamproc.state", b'{"kind": "from.the.future", "id": "x", '
                                      b'"node": "n", "payload": {}}').get(10)
    producer.close()
    assert poll(lambda: nodes[0].metric("streamproc_cluster_records_skipped_total")
                >= before + 2, 10)
    assert _create_named(nodes[0], "after-garbage") == "created"  # still applying


def test_the_whole_cluster_restarted_keeps_its_state(nodes: list[Node]) -> None:
    def settled() -> list[tuple[str, str]] | None:  # no processor between states
        listed = sorted((p["Name"], p["Status"]) for p in
                        nodes[0].rek.list_stream_processors()["StreamProcessors"])
        return None if any(s in ("STARTING", "STOPPING") for _, s in listed) else listed

    assert poll(settled, 60)
    before = {
        "collections": sorted(nodes[0].rek.list_collections()["CollectionIds"]),
        "faces": nodes[0].rek.describe_collection(CollectionId="people")["FaceCount"],
        "processors": settled(),
    }
    for node in nodes:
        assert node.stop() == 0
    for node in nodes:
        node.start()
    # 90 s: tansu can keep a departed leader in the group after every member left in turn;
    # the nodes then move to a fresh group (STUCK_AFTER_SESSIONS, about 20 s).
    assert poll(lambda: all(len(_members(n)) == 3 for n in nodes), 90)
    for node in nodes:
        assert sorted(node.rek.list_collections()["CollectionIds"]) == before["collections"]
        assert node.rek.describe_collection(CollectionId="people")["FaceCount"] == \
            before["faces"]
    running = sorted(n for n, s in before["processors"] if s == "RUNNING")
    assert running

    def each_runs_once() -> bool:  # what the nodes run, not only what Describe says
        seen = sorted(p for n in nodes for p in n.cluster()["running_here"])
        return seen == running

    assert poll(each_runs_once, 60), [n.cluster()["running_here"] for n in nodes]
    steady_until = time.monotonic() + 3  # and no second runner starts later (a late
    while time.monotonic() < steady_until:  # handover may leave one briefly on none)
        seen = [p for n in nodes for p in n.cluster()["running_here"]]
        assert len(seen) == len(set(seen)) and set(seen) <= set(running), seen
        time.sleep(0.2)
    assert poll(each_runs_once, 10), [n.cluster()["running_here"] for n in nodes]
    after = poll(lambda: (lambda got: got == before["processors"] and got)(sorted(
        (p["Name"], p["Status"]) for p in
        nodes[1].rek.list_stream_processors()["StreamProcessors"])), 30)
    assert after, before["processors"]  # stopped and failed ones stayed down


def test_stored_video_jobs_are_shared_and_move_off_a_killed_node(
        nodes: list[Node], objects: Path) -> None:
    a, b, c = nodes
    # One job for the cluster: a token used on one node is the same job on the others.
    token_job = b.rek.start_face_detection(Video=video("both.mp4"), ClientRequestToken="t1")
    assert c.rek.start_face_detection(Video=video("both.mp4"),
                                      ClientRequestToken="t1")["JobId"] == token_job["JobId"]
    with pytest.raises(ClientError) as err:
        a.rek.start_face_detection(Video=video("long.mp4"), ClientRequestToken="t1")
    assert err.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    long_job = a.rek.start_face_detection(Video=video("long.mp4"))["JobId"]

    def runner() -> str | None:  # the node running the long job, as every node sees it
        views = {n.cluster()["jobs_running"].get(long_job) for n in nodes if n.alive()}
        return views.pop() if len(views) == 1 else None

    first = poll(runner, 60)
    assert first, "the long job never ran"
    victim = next(n for n in nodes if n.name == first)
    assert poll(lambda: victim.metric("streamproc_job_progress_ratio") >= 0.1, 120)
    killed_at = time.monotonic()
    victim.kill()
    others = [n for n in nodes if n is not victim]
    moved = poll(lambda: (lambda on: on if on in (o.name for o in others) else None)(
        others[0].cluster()["jobs_running"].get(long_job)), FAILOVER_BOUND_S)
    assert moved, "the job did not move to a survivor"
    print(f"job relaunched on {moved} {time.monotonic() - killed_at:.1f} s after kill -9")
    done = wait_job(others[1].rek.get_face_detection, long_job, timeout=300)
    assert done["JobStatus"] == "SUCCEEDED", done.get("StatusMessage")
    # Nodes follow the ledger, so the other survivor may apply the end a moment later.
    assert wait_job(others[0].rek.get_face_detection, long_job,
                    timeout=5)["JobStatus"] == "SUCCEEDED"
    faces, _ = all_pages(others[0].rek.get_face_detection, "Faces", JobId=long_job)
    assert faces == all_pages(others[1].rek.get_face_detection, "Faces", JobId=long_job)[0]
    per_time: dict[int, int] = {}
    for face in faces:
        per_time[face["Timestamp"]] = per_time.get(face["Timestamp"], 0) + 1
    # Every sampled time once, both people at each: nothing lost or doubled by the move.
    assert sorted(per_time) == sample_times(frame_times_ms(objects / "vids" / "long.mp4"))
    assert max(per_time.values()) == 2
    victim.start()  # the killed node replays what it missed and answers with the same
    assert poll(lambda: all_pages(victim.rek.get_face_detection, "Faces",
                                  JobId=long_job)[0] == faces, 60)
    short = wait_job(victim.rek.get_face_detection, token_job["JobId"], timeout=120)
    assert short["JobStatus"] == "SUCCEEDED"
    assert poll(lambda: all(len(_members(n)) == 3 for n in nodes), 60)


def test_a_node_with_another_model_is_refused_at_join(
        tmp_path: Path, cluster_broker: EmbeddedBroker) -> None:
    code, log = Node(tmp_path, "odd", cluster_broker.bootstrap, SHARED, client_for,
                     **{"models.pack": "test_sface"}).run_to_exit(120)
    assert code == 2
    assert "cannot start" in log and "test_mfn" in log and "test_sface" in log


def test_a_node_that_cannot_reach_the_broker_exits_with_one_line(tmp_path: Path) -> None:
    code, log = Node(tmp_path, "lonely", f"127.0.0.1:{_closed_port()}", SHARED, client_for,
                     **{"cluster.join_timeout_s": 5, "cluster.write_timeout_s": 3}
                     ).run_to_exit(60)
    assert code == 2
    assert "cannot reach the cluster's Kafka" in log or "cannot replay" in log
    assert "Traceback" not in log
