"""A notice that can never be sent, end to end: a real daemon, real models, real Kafka.

A notice for an illegal topic is refused at Start. Records Kafka can never take that an
earlier run left at the head of the spool (an illegal topic, a record over
``kafka.max_request_size``) are moved aside, and the notices behind them arrive, once.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import client_for, make_config
from deadletters import dead_letters
from jobs_helpers import channel, notices_for, video, wait_job
from streams import WOMAN, Records

from streamproc.daemon import Daemon
from streamproc.storage.spool import Spool


def test_poison_notices_are_refused_or_set_aside_and_the_rest_arrive_once(
        tmp_path: Path, broker: Any) -> None:
    objects, data = tmp_path / "objects", tmp_path / "data"
    (objects / "vids").mkdir(parents=True)
    shutil.copy(WOMAN, objects / "vids" / WOMAN.name)
    earlier = Spool(data / "spool.db")  # as an earlier run (before the Start check) left it
    earlier.open()
    earlier.append(broker.bootstrap, [
        ("old-job", "bad topic", b"old-job", json.dumps({"JobId": "old-job"}).encode()),
        ("old-big", "poison-notices", b"old-big", b"x" * (5 * 1024 * 1024)),
        ("old-ok", "poison-notices", b"old-ok", json.dumps({"JobId": "old-ok"}).encode())])
    earlier.close()
    d = Daemon(make_config(data, **{"objects.local_root": str(objects),
                                    "kafka.bootstrap": broker.bootstrap}))
    d.start()
    try:
        rek = client_for(d.endpoint)
        with pytest.raises(rek.exceptions.InvalidParameterException,
                           match="not a legal Kafka topic name"):
            rek.start_face_detection(Video=video(WOMAN.name),
                                     NotificationChannel=channel("bad topic"))
        job = rek.start_face_detection(Video=video(WOMAN.name),
                                       NotificationChannel=channel("poison-notices"))["JobId"]
        assert wait_job(rek.get_face_detection, job)["JobStatus"] == "SUCCEEDED"
        records = Records(broker.bootstrap, "poison-notices")
        got = records.wait_for(lambda r: notices_for(r, job), 30)
        time.sleep(3.0)  # longer than a reset's retry delay: a resend would show now
        records.poll()
        records.close()
        got = records.items
        # Each once (keyed by job: partitions, and so the order between them, may differ).
        assert sorted(n["JobId"] for n in got) == sorted(["old-ok", job])
        destination = d.health()["destinations"][broker.bootstrap]
        assert destination["state"] == "ok" and destination["set_aside"] == 2
        for error in ("InvalidTopicError", "MessageSizeTooLargeError"):
            assert d.registry.get_sample_value("streamproc_records_set_aside_total", {
                "cluster": broker.bootstrap, "error": error}) == 1
    finally:
        d.stop()
    spool = Spool(data / "spool.db")
    spool.open()
    letters = dead_letters(spool, broker.bootstrap)
    assert [(x.processor, x.topic) for x in letters] == [("old-job", "bad topic"),
                                                         ("old-big", "poison-notices")]
    assert spool.clusters() == {}
    spool.close()
