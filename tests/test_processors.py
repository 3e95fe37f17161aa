"""Stream processors end to end: real broker, real ffmpeg live streams, real models, boto3."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import client_for, make_config
from streams import (
    BOTH,
    CLASSROOM,
    MAN,
    ROLE,
    WOMAN,
    Records,
    create,
    enrol,
    matched_names,
    output_arn,
    remove_processor,
    wait_status,
)

from streamproc.daemon import Daemon
from streamproc.tools.livestream import LoopingStream

LEFT_OF = 200 / 480  # in the two-person clip the woman is left of x=200 px


@pytest.fixture(scope="module")
def people(rek: Any) -> Iterator[str]:
    """A collection with W and M enrolled from their own clips (a name of its own)."""
    name = f"people-{uuid.uuid4().hex[:8]}"
    rek.create_collection(CollectionId=name)
    assert enrol(rek, name, WOMAN, "woman-W") >= 2
    assert enrol(rek, name, MAN, "man-M") >= 2
    yield name
    try:
        rek.delete_collection(CollectionId=name)
    except rek.exceptions.ResourceNotFoundException:
        pass


@pytest.fixture
def cleanup(rek: Any) -> Iterator[list[str]]:
    """Processor names to stop and delete after the test."""
    names: list[str] = []
    yield names
    for name in names:
        remove_processor(rek, name)


def _check_record_format(record: dict[str, Any], stream_url: str) -> None:
    video = record["InputInformation"]["KinesisVideo"]
    assert video["StreamArn"] == stream_url
    assert video["FragmentNumber"].isdigit()
    assert isinstance(video["ProducerTimestamp"], float)
    assert abs(video["ServerTimestamp"] - time.time()) < 120
    assert 0 <= video["FrameOffsetInSeconds"] < 10
    assert record["StreamProcessorInformation"] == {"Status": "RUNNING"}
    for face in record["FaceSearchResponse"]:
        detected = face["DetectedFace"]
        assert set(detected) == {"BoundingBox", "Confidence", "Landmarks", "Pose", "Quality"}
        assert len(detected["Landmarks"]) == 5
        assert detected["Confidence"] > 99  # clear faces, on Rekognition's scale
        for match in face["MatchedFaces"]:
            assert 80 <= match["Similarity"] <= 100
            assert set(match["Face"]) >= {"BoundingBox", "FaceId", "Confidence", "ImageId",
                                          "ExternalImageId"}


def test_people_are_matched_and_strangers_are_not(rek: Any, daemon: Daemon, broker: Any,
                                                  people: str, live: Any,
                                                  cleanup: list[str]) -> None:
    both, strangers = live(BOTH), live(CLASSROOM)
    create(rek, "pair", both.url, "pair-out", people)
    create(rek, "class", strangers.url, "class-out", people)
    cleanup += ["pair", "class"]
    assert rek.describe_stream_processor(Name="pair")["Status"] == "STOPPED"
    assert rek.start_stream_processor(Name="pair")["SessionId"]
    rek.start_stream_processor(Name="class")
    assert wait_status(rek, "pair", {"RUNNING"})["Status"] == "RUNNING"
    pair, room = Records(broker.bootstrap, "pair-out"), Records(broker.bootstrap, "class-out")
    try:
        seen = pair.wait_for(lambda rs: len(rs) >= 25, 60)
        room_seen = room.wait_for(lambda rs: len(rs) >= 10, 30)
    finally:
        pair.close()
        room.close()
    assert len(seen) >= 25 and len(room_seen) >= 10
    assert set(pair.keys) == {b"pair"}
    names = [n for r in seen for n in matched_names(r)]
    for centre, name in names:
        if name is not None:  # a match is always the right person
            assert name == ("woman-W" if centre < LEFT_OF else "man-M")
    assert sum(1 for _, n in names if n == "man-M") >= 10
    assert sum(1 for _, n in names if n == "woman-W") >= 3
    stranger_faces = [n for r in room_seen for n in matched_names(r)]
    assert len(stranger_faces) >= 20 and all(n is None for _, n in stranger_faces)
    for record in seen[:5]:
        _check_record_format(record, both.url)
    started = time.monotonic()
    rek.stop_stream_processor(Name="pair")
    assert wait_status(rek, "pair", {"STOPPED"}, 5)["Status"] == "STOPPED"
    assert time.monotonic() - started < 3
    metrics = daemon.registry
    for metric in ("frames_decoded", "frames_analysed", "faces_detected", "matches",
                   "records_published"):
        value = metrics.get_sample_value(f"streamproc_processor_{metric}_total",
                                         {"processor": "pair"})
        assert value and value > 0, metric
    assert metrics.get_sample_value("streamproc_processor_frame_to_publish_seconds_count",
                                    {"processor": "pair"}) > 0
    rek.delete_stream_processor(Name="pair")
    assert metrics.get_sample_value("streamproc_processor_frames_decoded_total",
                                    {"processor": "pair"}) is None


def test_lifecycle_errors_and_describe(rek: Any, broker: Any, people: str,
                                       cleanup: list[str]) -> None:
    url = "rtsp://admin:s3cret@127.0.0.1:1/stream?token=abc"
    arn = create(rek, "life", url, "life-out", people, Tags={"site": "hq"})
    cleanup.append("life")
    assert arn.endswith(":streamprocessor/life")
    desc = rek.describe_stream_processor(Name="life")
    assert desc["Input"]["KinesisVideoStream"]["Arn"] == \
        "rtsp://***:***@127.0.0.1:1/stream?token=***"
    assert "s3cret" not in str(desc)
    assert desc["Settings"]["FaceSearch"] == {"CollectionId": people, "FaceMatchThreshold": 80.0}
    with pytest.raises(rek.exceptions.ResourceInUseException):
        create(rek, "life", "tcp://127.0.0.1:2", "other-out", people)
    with pytest.raises(rek.exceptions.ResourceInUseException):
        create(rek, "life-2", url, "other-out", people)
    with pytest.raises(rek.exceptions.ResourceInUseException):
        create(rek, "life-3", "tcp://127.0.0.1:3", "life-out", people)
    with pytest.raises(rek.exceptions.ResourceInUseException):
        rek.stop_stream_processor(Name="life")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.describe_stream_processor(Name="nobody")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.start_stream_processor(Name="nobody")
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        create(rek, "bad-url", "gopher://x/y", "bad-out", people)
    assert "Input.KinesisVideoStream.Arn" in err.value.response["Error"]["Message"]
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.create_stream_processor(
            Name="bad-out", RoleArn=ROLE, Input={"KinesisVideoStream": {"Arn": "tcp://h:1"}},
            Output={"KinesisDataStream": {"Arn": "kafka://only-host"}},
            Settings={"FaceSearch": {"CollectionId": people}})
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        rek.create_stream_processor(
            Name="bad-out", RoleArn=ROLE, Input={"KinesisVideoStream": {"Arn": "tcp://h:1"}},
            Output={"KinesisDataStream": {"Arn": "kafka://127.0.0.1:9/elsewhere"}},
            Settings={"FaceSearch": {"CollectionId": people}})
    assert err.value.response["Error"]["Message"].startswith(
        "Output.KinesisDataStream.Arn refused by outputs.clusters: cluster 127.0.0.1:9 ")
    low = rek.create_stream_processor(
        Name="low", RoleArn=ROLE, Input={"KinesisVideoStream": {"Arn": "tcp://127.0.0.1:4"}},
        Output={"KinesisDataStream": {"Arn": f"kafka://{broker.bootstrap}/elsewhere"}},
        Settings={"FaceSearch": {"CollectionId": people, "FaceMatchThreshold": 50}})
    cleanup.append("low")
    assert low["StreamProcessorArn"]
    assert rek.describe_stream_processor(Name="low")["Settings"]["FaceSearch"][
        "FaceMatchThreshold"] == 80.0
    listed = rek.list_stream_processors(MaxResults=1)
    assert len(listed["StreamProcessors"]) == 1 and "NextToken" in listed
    all_names = [p["Name"] for page in rek.get_paginator("list_stream_processors").paginate()
                 for p in page["StreamProcessors"]]
    assert {"life", "low"} <= set(all_names)
    rek.tag_resource(ResourceArn=arn, Tags={"floor": "2"})
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"site": "hq", "floor": "2"}
    rek.untag_resource(ResourceArn=arn, TagKeys=["site"])
    assert rek.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"floor": "2"}
    coll_arn = rek.describe_collection(CollectionId=people)["CollectionARN"]
    rek.tag_resource(ResourceArn=coll_arn, Tags={"kind": "staff"})
    assert rek.list_tags_for_resource(ResourceArn=coll_arn)["Tags"] == {"kind": "staff"}
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.list_tags_for_resource(ResourceArn=arn + "-missing")
    rek.update_stream_processor(Name="life", RegionsOfInterestForUpdate=[
        {"BoundingBox": {"Left": 0, "Top": 0, "Width": 0.5, "Height": 1}}])
    assert rek.describe_stream_processor(Name="life")["RegionsOfInterest"][0]["BoundingBox"][
        "Width"] == 0.5
    rek.update_stream_processor(Name="life", ParametersToDelete=["RegionsOfInterest"])
    assert "RegionsOfInterest" not in rek.describe_stream_processor(Name="life")
    rek.delete_stream_processor(Name="life")
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.delete_stream_processor(Name="life")


def test_bad_sources_fail_with_a_message(rek: Any, people: str, cleanup: list[str]) -> None:
    create(rek, "missing-file", "/nonexistent/clip.mp4", "missing-out", people)
    create(rek, "unknown-kvs",
           "arn:aws:kinesisvideo:us-east-1:123456789012:stream/lobby-cam/1600000000000",
           "kvs-out", people)
    cleanup += ["missing-file", "unknown-kvs"]
    rek.start_stream_processor(Name="missing-file")
    rek.start_stream_processor(Name="unknown-kvs")
    desc = wait_status(rek, "missing-file", {"FAILED"})
    assert desc["Status"] == "FAILED"
    assert "Cannot open /nonexistent/clip.mp4" in desc["StatusMessage"]
    desc = wait_status(rek, "unknown-kvs", {"FAILED"})
    assert desc["StatusMessage"] == "Stream lobby-cam doesn't exist"
    with pytest.raises(rek.exceptions.ResourceInUseException):
        rek.stop_stream_processor(Name="missing-file")
    # A FAILED processor can be started again (and fails again, honestly).
    rek.start_stream_processor(Name="missing-file")
    assert wait_status(rek, "missing-file", {"FAILED"})["Status"] == "FAILED"
    rek.delete_stream_processor(Name="missing-file")


def test_stop_is_prompt_while_the_source_blocks(rek: Any, people: str,
                                                cleanup: list[str]) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True).start()
    try:
        create(rek, "silent", f"tcp://127.0.0.1:{server.getsockname()[1]}", "silent-out",
               people)
        cleanup.append("silent")
        rek.start_stream_processor(Name="silent")
        deadline = time.monotonic() + 15
        while not accepted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert accepted, "the processor never connected"
        assert rek.describe_stream_processor(Name="silent")["Status"] == "STARTING"
        with pytest.raises(rek.exceptions.ResourceInUseException):
            rek.start_stream_processor(Name="silent")
        with pytest.raises(rek.exceptions.ResourceInUseException):
            rek.delete_stream_processor(Name="silent")
        started = time.monotonic()
        rek.stop_stream_processor(Name="silent")
        assert wait_status(rek, "silent", {"STOPPED"}, 8)["Status"] == "STOPPED"
        assert time.monotonic() - started < 6  # well inside the 10 s open timeout
    finally:
        for conn in accepted:
            conn.close()
        server.close()


def test_reconnects_when_the_stream_server_comes_back(rek: Any, daemon: Daemon, broker: Any,
                                                      people: str, cleanup: list[str]) -> None:
    stream = LoopingStream(BOTH)
    stream.start()
    create(rek, "flaky", stream.url, "flaky-out", people)
    cleanup.append("flaky")
    rek.start_stream_processor(Name="flaky")
    records = Records(broker.bootstrap, "flaky-out")
    try:
        assert len(records.wait_for(lambda rs: len(rs) >= 5, 40)) >= 5
        stream.stop()
        deadline = time.monotonic() + 30
        while not daemon.registry.get_sample_value(
                "streamproc_processor_reconnects_total", {"processor": "flaky"}):
            assert time.monotonic() < deadline, "the processor never noticed the drop"
            time.sleep(0.1)
        records.poll()
        before = len(records.items)
        revived = LoopingStream(BOTH, port=stream.port)
        revived.start()
        try:
            resumed = records.wait_for(lambda rs: len(rs) >= before + 5, 40)
            assert len(resumed) >= before + 5
            assert rek.describe_stream_processor(Name="flaky")["Status"] == "RUNNING"
        finally:
            revived.stop()
    finally:
        records.close()
        stream.stop()


def test_collection_changes_reach_running_processors(rek: Any, broker: Any, live: Any,
                                                     cleanup: list[str]) -> None:
    rek.create_collection(CollectionId="late")
    stream = live(BOTH)
    create(rek, "late", stream.url, "late-out", "late")
    cleanup.append("late")
    rek.start_stream_processor(Name="late")
    records = Records(broker.bootstrap, "late-out")
    try:
        early = records.wait_for(lambda rs: len(rs) >= 5, 40)
        assert all(n is None for r in early for _, n in matched_names(r))
        enrol(rek, "late", MAN, "man-M", every=12)
        indexed_at = len(records.items)
        later = records.wait_for(lambda rs: any(
            n == "man-M" for r in rs[indexed_at:] for _, n in matched_names(r)), 20)
        first = next(i for i, r in enumerate(later) if i >= indexed_at and any(
            n == "man-M" for _, n in matched_names(r)))
        # At 5 analysed frames/s, "within a second" is within about 5 records (+ queue).
        assert first - indexed_at <= 10
        rek.delete_collection(CollectionId="late")
        desc = wait_status(rek, "late", {"FAILED"}, 10)
        assert desc["Status"] == "FAILED" and desc["StatusMessage"] == "Collection not found"
    finally:
        records.close()


def test_regions_of_interest_and_track_mode(rek: Any, daemon: Daemon, broker: Any, people: str,
                                            live: Any, cleanup: list[str]) -> None:
    left, tracked = live(BOTH), live(BOTH)
    create(rek, "left-only", left.url, "left-out", people, RegionsOfInterest=[
        {"BoundingBox": {"Left": 0.0, "Top": 0.0, "Width": 0.4, "Height": 1.0}}])
    create(rek, "tracked", tracked.url, "tracked-out", people,
           Tags={"streamproc:emit": "track"})
    cleanup += ["left-only", "tracked"]
    rek.start_stream_processor(Name="left-only")
    rek.start_stream_processor(Name="tracked")
    roi = Records(broker.bootstrap, "left-out")
    events = Records(broker.bootstrap, "tracked-out")
    try:
        seen = roi.wait_for(lambda rs: len(rs) >= 10, 40)
        # A count of analysed frames, not a time: ~40 frames = ~8 s of video.
        analysed = "streamproc_processor_frames_analysed_total"
        events.wait_for(lambda _: (daemon.registry.get_sample_value(
            analysed, {"processor": "tracked"}) or 0) >= 40, 120)
        assert daemon.registry.get_sample_value(analysed, {"processor": "tracked"}) >= 40
        events.poll()
    finally:
        roi.close()
        events.close()
    assert len(seen) >= 10
    assert all(centre < 0.4 for r in seen for centre, _ in matched_names(r))
    names = [n for r in events.items for _, n in matched_names(r)]
    assert all(len(r["FaceSearchResponse"]) == 1 for r in events.items)
    assert "man-M" in names and set(names) <= {"man-M", "woman-W"}
    # Frame mode would have written a record for each of the 40 analysed frames by now.
    assert len(events.items) <= 8


def test_running_processors_resume_after_restart(tmp_path: Path, broker: Any,
                                                 live: Any) -> None:
    stream = live(BOTH)
    config = make_config(tmp_path, **{"kafka.bootstrap": broker.bootstrap})
    first = Daemon(config)
    first.start()
    try:
        rek = client_for(first.endpoint)
        rek.create_collection(CollectionId="resume")
        enrol(rek, "resume", MAN, "man-M", every=12)
        create(rek, "resume", stream.url, "resume-out", "resume")
        create(rek, "idle", "tcp://127.0.0.1:5", "idle-out", "resume")
        rek.start_stream_processor(Name="resume")
        assert wait_status(rek, "resume", {"RUNNING"})["Status"] == "RUNNING"
    finally:
        first.stop()
    second = Daemon(config)
    second.start()
    records = Records(broker.bootstrap, "resume-out")
    try:
        rek = client_for(second.endpoint)
        assert wait_status(rek, "resume", {"RUNNING"})["Status"] == "RUNNING"
        assert rek.describe_stream_processor(Name="idle")["Status"] == "STOPPED"
        restarted_at = time.time()
        fresh = records.wait_for(lambda rs: any(
            r["InputInformation"]["KinesisVideo"]["ServerTimestamp"] > restarted_at
            for r in rs), 40)
        assert any(r["InputInformation"]["KinesisVideo"]["ServerTimestamp"] > restarted_at
                   for r in fresh)
        rek.stop_stream_processor(Name="resume")
    finally:
        records.close()
        second.stop()


def test_unreachable_broker_fails_the_processor(tmp_path: Path, live: Any) -> None:
    stream = live(BOTH)
    config = make_config(tmp_path, **{"kafka.unreachable_fail_s": 2.0,
                                      "kafka.max_block_ms": 500,
                                      "outputs.clusters": ["127.0.0.1:9"]})
    d = Daemon(config)
    d.start()
    try:
        rek = client_for(d.endpoint)
        rek.create_collection(CollectionId="c")
        rek.create_stream_processor(
            Name="nowhere", RoleArn=ROLE, Input={"KinesisVideoStream": {"Arn": stream.url}},
            Output={"KinesisDataStream": {"Arn": "kafka://127.0.0.1:9/records"}},
            Settings={"FaceSearch": {"CollectionId": "c"}})
        with pytest.raises(rek.exceptions.InvalidParameterException) as err:
            rek.create_stream_processor(
                Name="default", RoleArn=ROLE, Input={"KinesisVideoStream": {"Arn": "/x.mp4"}},
                Output={"KinesisDataStream": {"Arn": output_arn("t")}},
                Settings={"FaceSearch": {"CollectionId": "c"}})
        assert "--kafka" in err.value.response["Error"]["Message"]
        rek.start_stream_processor(Name="nowhere")
        desc = wait_status(rek, "nowhere", {"FAILED"}, 40)
        assert desc["Status"] == "FAILED"
        assert "Kafka cluster 127.0.0.1:9 unreachable" in desc["StatusMessage"]
        assert d.registry.get_sample_value("streamproc_processor_publish_errors_total",
                                           {"processor": "nowhere"}) > 0
        assert d.registry.get_sample_value("streamproc_kafka_cluster_up",
                                           {"cluster": "127.0.0.1:9"}) == 0
        held = sum(d.registry.get_sample_value("streamproc_kafka_outbox_records",
                                               {"cluster": "127.0.0.1:9", "location": where})
                   for where in ("memory", "disk"))
        assert held > 0  # nothing was dropped: the records wait for the cluster
    finally:
        d.stop()


def test_credentials_never_reach_logs_or_metrics(rek: Any, daemon: Daemon, people: str,
                                                 cleanup: list[str],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from prometheus_client import generate_latest

    caplog.set_level(logging.DEBUG)
    url = "rtsp://admin:hunter2secret@127.0.0.1:1/live?token=tok3nvalue"
    create(rek, "leaky", url, "leaky-out", people)
    cleanup.append("leaky")
    rek.start_stream_processor(Name="leaky")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not daemon.registry.get_sample_value(
            "streamproc_processor_reconnects_total", {"processor": "leaky"}):
        time.sleep(0.1)
    assert daemon.registry.get_sample_value("streamproc_processor_reconnects_total",
                                            {"processor": "leaky"}) >= 1
    # The server's own log lines (the boto3 client logs its request bodies at DEBUG).
    server_log = "\n".join(r.getMessage() for r in caplog.records
                           if not r.name.startswith(("botocore", "urllib3")))
    text = server_log + generate_latest(daemon.registry).decode() + str(
        rek.describe_stream_processor(Name="leaky")) + str(rek.list_stream_processors())
    assert "rtsp://***:***@127.0.0.1:1/live?token=***" in server_log
    assert "hunter2secret" not in text and "tok3nvalue" not in text
    with pytest.raises(rek.exceptions.InvalidParameterException) as err:
        create(rek, "leaky2", "gopher://u:hunter2secret@h/x", "leaky2-out", people)
    assert "hunter2secret" not in str(err.value.response)


def test_a_collection_made_again_under_a_running_processor_is_not_searched(
        rek: Any, daemon: Daemon, broker: Any, live: Any, cleanup: list[str]) -> None:
    rek.create_collection(CollectionId="swap")
    enrol(rek, "swap", WOMAN, "woman-W", every=12)
    stream = live(BOTH)
    create(rek, "swapped", stream.url, "swap-out", "swap")
    cleanup.append("swapped")
    rek.start_stream_processor(Name="swapped")
    records = Records(broker.bootstrap, "swap-out")
    try:
        assert len(records.wait_for(lambda rs: len(rs) >= 3, 40)) >= 3
        rek.delete_collection(CollectionId="swap")
        rek.create_collection(CollectionId="swap")  # same name, a different collection
        enrol(rek, "swap", MAN, "man-M", every=12)
        desc = wait_status(rek, "swapped", {"FAILED"}, 10)
        assert desc["Status"] == "FAILED" and desc["StatusMessage"] == "Collection not found"
        # Read everything it ever published (nothing is emitted once FAILED).
        labels = {"processor": "swapped"}
        emitted = daemon.registry.get_sample_value(
            "streamproc_processor_records_emitted_total", labels)
        records.wait_for(lambda rs: len(rs) >= emitted, 30)
        assert len(records.items) == emitted
        # Nothing it published ever matched the new collection's man.
        assert all(n != "man-M" for r in records.items for _, n in matched_names(r))
    finally:
        records.close()
        rek.delete_collection(CollectionId="swap")
