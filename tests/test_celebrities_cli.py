"""The celebrity settings as the daemon applies them: ``streamproc serve`` refuses a bad
catalog before any heavy work (exit 2), and auth judges the gallery's collection."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED


@pytest.mark.parametrize(("content", "why"), [
    (b"A1: {name: J, nickname: x}\n", "A1.nickname: Extra inputs are not permitted"),
    ("A1: {name: Jos\xe9}\n".encode("latin-1"), "not UTF-8"),
])
def test_serve_refuses_a_bad_catalog_cleanly(tmp_path: Path, content: bytes, why: str) -> None:
    catalog = tmp_path / "stars.yaml"
    catalog.write_bytes(content)
    cfg = tmp_path / "streamproc.yaml"
    cfg.write_text(f"celebrities:\n  gallery: stars\n  catalog: {catalog}\n"
                   f"storage:\n  data_dir: {tmp_path / 'data'}\n"
                   f"models:\n  root: {SHARED}\n  pack: test_mfn\n", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "streamproc", "serve", "--config", str(cfg),
                          "--port", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert "cannot start: celebrities.catalog" in out.stderr and why in out.stderr
    assert "Traceback" not in out.stderr and "_File" not in out.stderr


@pytest.mark.e2e
def test_a_daemon_with_auth_judges_the_gallery_for_the_celebrity_operations(
        tmp_path: Path) -> None:
    """Through boto3, auth on: Allow ``*`` with a Deny on the gallery's collection refuses
    each celebrity operation; the key without the Deny gets past the policy."""
    import cv2
    import numpy as np
    from botocore.exceptions import ClientError
    from console_browser import keyed_client, keyed_daemon

    arn = "arn:aws:rekognition:us-east-1:000000000000:collection/stars"
    allow = {"Effect": "Allow", "Action": "rekognition:*", "Resource": "*"}
    policies = {"AKDENIED": {"Version": "2012-10-17", "Statement": [
        allow, {"Effect": "Deny", "Action": "rekognition:*", "Resource": arn}]},
        "AKOPEN": {"Version": "2012-10-17", "Statement": [allow]}}
    daemon = keyed_daemon(tmp_path, {"AKDENIED": "s1", "AKOPEN": "s2"}, policies,
                          **{"celebrities.gallery": "stars"})
    daemon.start()
    try:
        ok, jpeg = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
        assert ok
        calls = {"recognize_celebrities": {"Image": {"Bytes": jpeg.tobytes()}},
                 "get_celebrity_info": {"Id": "W1"},
                 "start_celebrity_recognition": {
                     "Video": {"S3Object": {"Bucket": "vids", "Name": "v.mp4"}}},
                 "get_celebrity_recognition": {"JobId": "a" * 64}}
        denied, open_ = (keyed_client(daemon, "AKDENIED", "s1"),
                         keyed_client(daemon, "AKOPEN", "s2"))
        for method, params in calls.items():
            with pytest.raises(ClientError) as caught:
                getattr(denied, method)(**params)
            error = caught.value.response["Error"]
            assert error["Code"] == "AccessDeniedException", (method, error)
            assert arn in error["Message"]
            try:
                getattr(open_, method)(**params)
            except ClientError as exc:  # no such celebrity, job or video: not the policy
                assert exc.response["Error"]["Code"] != "AccessDeniedException", method
    finally:
        daemon.stop()
