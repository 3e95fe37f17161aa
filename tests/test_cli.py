"""The ``streamproc serve`` command: starts, answers, and exits cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import SHARED, client_for


def test_serve_runs_until_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamproc", "serve", "--port", "0", "--data-dir",
         str(tmp_path), "--model-root", str(SHARED), "--model-pack", "test_mfn",
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("streamproc ready on http://127.0.0.1:"), line
        endpoint = line.split()[-1]
        rek = client_for(endpoint)
        rek.create_collection(CollectionId="cli")
        assert rek.list_collections()["CollectionIds"] == ["cli"]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
    finally:
        proc.kill()
        proc.wait()


def test_serve_reports_missing_pack(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "streamproc", "serve", "--port", "0", "--data-dir",
         str(tmp_path), "--model-root", str(tmp_path), "--model-pack", "test_mfn"],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "model pack 'test_mfn' not found" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_config_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("server:\n  prot: 1\n")
    out = subprocess.run([sys.executable, "-m", "streamproc", "serve", "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "prot" in out.stderr
