"""Through the API, on the shared daemon: what a playlist may make a processor or a job open,
and source secrets (RTMP stream keys, SRT passphrases) in Describe, records and the log.

The daemon's object root counts as a media root, so playlists written there are file inputs
for processors and S3 objects (``{Bucket, Name}``) for stored-video jobs.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobs_helpers import wait_job
from streams import BOTH, Records, create, remove_processor, wait_status
from test_nested_opens import make_hls, playlist

from streamproc.daemon import Daemon
from streamproc.tools.broker import free_port
from streamproc.tools.mediaservers import Feed, RtmpServer


@pytest.fixture(scope="module")
def bucket(daemon: Daemon) -> Iterator[Path]:
    """Bucket ``hls`` in the daemon's object root: cam.m3u8 and its segments."""
    root = Path(str(daemon.config.objects.local_root))
    make_hls(root / "hls")
    yield root / "hls"
    shutil.rmtree(root / "hls", ignore_errors=True)


def test_a_processor_fails_on_a_playlist_naming_a_file_outside_the_roots(
        rek: Any, collection: str, bucket: Path, tmp_path: Path) -> None:
    shutil.copy(bucket / "cam0.ts", tmp_path / "secret.ts")  # outside every media root
    (bucket / "evil.m3u8").write_text(playlist("cam0.ts", str(tmp_path / "secret.ts")))
    try:
        create(rek, "hls-good", str(bucket / "cam.m3u8"), "hls-good-out", collection)
        create(rek, "hls-evil", str(bucket / "evil.m3u8"), "hls-evil-out", collection)
        for name in ("hls-good", "hls-evil"):
            rek.start_stream_processor(Name=name)
        desc = wait_status(rek, "hls-evil", {"FAILED"}, 30)
        assert desc["Status"] == "FAILED"
        assert desc["StatusMessage"] == (
            f"Input refused by inputs.media_roots: {bucket}/evil.m3u8 names "
            f"{tmp_path}/secret.ts: {tmp_path}/secret.ts is not under a configured media root")
        assert wait_status(rek, "hls-good", {"RUNNING"}, 30)["Status"] == "RUNNING"
    finally:
        for name in ("hls-good", "hls-evil"):
            remove_processor(rek, name)


def test_a_job_fails_on_a_playlist_naming_a_file_outside_its_folder(
        rek: Any, bucket: Path) -> None:
    other = bucket.parent / "hls-other"
    other.mkdir(exist_ok=True)
    shutil.copy(bucket / "cam0.ts", other / "secret.ts")  # in the object root, another bucket
    (bucket / "evil-job.m3u8").write_text(playlist("cam0.ts", "../hls-other/secret.ts"))
    try:
        evil = rek.start_face_detection(
            Video={"S3Object": {"Bucket": "hls", "Name": "evil-job.m3u8"}})["JobId"]
        good = rek.start_face_detection(
            Video={"S3Object": {"Bucket": "hls", "Name": "cam.m3u8"}})["JobId"]
        out = wait_job(rek.get_face_detection, evil)
        assert out["JobStatus"] == "FAILED"
        assert out["StatusMessage"] == (
            "Unsupported codec/format: hls/evil-job.m3u8 names a file outside its own "
            "folder, or a URL (a playlist may name only the objects beside it)")
        assert wait_job(rek.get_face_detection, good)["JobStatus"] == "SUCCEEDED"
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_rtmp_stream_keys_are_hidden_in_describe_and_the_log(
        rek: Any, collection: str, caplog: pytest.LogCaptureFixture) -> None:
    key = "live-sk-7f3a9c"
    url = f"rtmp://127.0.0.1:{free_port()}/live/{key}"  # nothing listens: connects fail
    caplog.set_level(logging.WARNING)
    try:
        create(rek, "rtmp-key", url, "rtmp-key-out", collection)
        rek.start_stream_processor(Name="rtmp-key")
        desc = rek.describe_stream_processor(Name="rtmp-key")
        assert desc["Input"]["KinesisVideoStream"]["Arn"] == url.replace(key, "***")
        deadline = time.monotonic() + 20
        while "processor rtmp-key: " not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
        assert f"processor rtmp-key: {url.replace(key, '***')}: connection refused" in \
            caplog.text
        assert key not in caplog.text
    finally:
        remove_processor(rek, "rtmp-key")
    assert key not in caplog.text


def test_a_record_names_the_rtmp_source_without_its_stream_key(
        rek: Any, collection: str, broker: Any) -> None:
    server = RtmpServer(Feed(BOTH))
    server.start()
    records = Records(broker.bootstrap, "rtmp-record-out")
    try:
        create(rek, "rtmp-record", server.url, "rtmp-record-out", collection)
        rek.start_stream_processor(Name="rtmp-record")
        got = records.wait_for(lambda items: len(items) >= 1, 60)
        assert got, "no record arrived"
        arns = {r["InputInformation"]["KinesisVideo"]["StreamArn"] for r in got}
        assert arns == {server.url.rsplit("/", 1)[0] + "/***"}  # rtmp://.../live/***
    finally:
        records.close()
        remove_processor(rek, "rtmp-record")
        server.stop()
