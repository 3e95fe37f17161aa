"""``streamproc serve`` as a real process: exposure refused, policies checked and reloaded."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SHARED
from test_security import client

KEY, SECRET = "AKIDRELOADTEST000001", "reload/Secret+1"
ONLY_LIST = json.dumps({KEY: {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "rekognition:List*", "Resource": "*"}]}})
LIST_AND_CREATE = ONLY_LIST.replace('"rekognition:List*"',
                                    '["rekognition:List*", "rekognition:CreateCollection"]')


def _serve_args(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "streamproc", "serve", "--port", "0", "--data-dir",
            str(tmp_path / "data"), "--model-root", str(SHARED), "--model-pack", "test_mfn",
            *extra]


class Served:
    """A running ``streamproc serve`` whose stderr is collected as it comes."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        ready = self.proc.stdout.readline()
        assert ready.startswith("streamproc ready on "), (ready, self.stderr)
        self.endpoint = ready.split()[-1]

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_log(self, text: str, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until ``text`` has been logged ``count`` times."""
        deadline = time.monotonic() + timeout
        while self.stderr.count(text) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.stderr.count(text) >= count

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        self._reader.join(5)
        return code


@pytest.fixture
def served() -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()


def test_non_loopback_bind_without_auth_is_refused(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "::", ""):
        out = subprocess.run(_serve_args(tmp_path, "--host", host), capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 2, (host, out.stderr)
        assert "refusing to serve" in out.stderr and "configure access keys" in out.stderr
        assert "--allow-unauthenticated" in out.stderr and "Traceback" not in out.stderr
    config = tmp_path / "open.yaml"
    config.write_text("server:\n  host: 0.0.0.0\n  allow_unauthenticated: false\n")
    out = subprocess.run(_serve_args(tmp_path, "--config", str(config)), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2 and "refusing to serve 0.0.0.0" in out.stderr


def test_explicit_opt_out_serves_and_warns(tmp_path: Path, served: list[Served]) -> None:
    s = Served(_serve_args(tmp_path, "--host", "0.0.0.0", "--allow-unauthenticated",
                           "--log-level", "WARNING"))
    served.append(s)
    assert "open to anyone who can reach it" in s.stderr
    port = s.endpoint.rsplit(":", 1)[1]
    assert client(f"http://127.0.0.1:{port}").list_collections()["CollectionIds"] == []
    assert s.stop() == 0


def test_malformed_policy_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "keys.yaml").write_text(f"{KEY}: {SECRET}\n")
    (tmp_path / "policies.json").write_text(json.dumps(
        {KEY: {"Statement": [{"Effect": "Allow", "Action": "rekognition:List*"}]}}))
    config = tmp_path / "auth.yaml"
    config.write_text(f"auth:\n  enabled: true\n  access_keys_file: {tmp_path / 'keys.yaml'}\n"
                      f"  policy_file: {tmp_path / 'policies.json'}\n")
    out = subprocess.run(_serve_args(tmp_path, "--config", str(config)), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert f"policy of {KEY}.Statement[0]: exactly one of Resource and NotResource" in \
        out.stderr
    assert SECRET not in out.stderr and "Traceback" not in out.stderr


def test_sighup_reloads_policies_and_keeps_them_when_malformed(tmp_path: Path,
                                                               served: list[Served]) -> None:
    keys, policies = tmp_path / "keys.yaml", tmp_path / "policies.json"
    keys.write_text(f"{KEY}: {SECRET}\n")
    policies.write_text(ONLY_LIST)
    config = tmp_path / "auth.yaml"
    config.write_text(f"auth:\n  enabled: true\n  access_keys_file: {keys}\n"
                      f"  policy_file: {policies}\n")
    s = Served(_serve_args(tmp_path, "--config", str(config), "--log-level", "INFO"))
    served.append(s)
    rek: Any = client(s.endpoint, KEY, SECRET)
    assert rek.list_collections()["CollectionIds"] == []
    with pytest.raises(rek.exceptions.AccessDeniedException):
        rek.create_collection(CollectionId="late")
    policies.write_text(LIST_AND_CREATE)
    s.proc.send_signal(signal.SIGHUP)
    assert s.wait_log("access control reloaded: 1 keys, 1 with a policy")
    rek.create_collection(CollectionId="late")
    policies.write_text(json.dumps({KEY: {"Statement": "nonsense"}}))
    s.proc.send_signal(signal.SIGHUP)
    assert s.wait_log("reload refused, previous keys and policies kept")
    rek.create_collection(CollectionId="still-allowed")  # the previous policy is in force
    assert s.proc.poll() is None
    keys.write_text(f"{KEY}: rotated/Secret+2\n")
    policies.write_text(ONLY_LIST)
    s.proc.send_signal(signal.SIGHUP)
    assert s.wait_log("access control reloaded", count=2)
    with pytest.raises(rek.exceptions.AccessDeniedException):
        rek.list_collections()  # the old secret no longer signs
    rotated: Any = client(s.endpoint, KEY, "rotated/Secret+2")
    assert sorted(rotated.list_collections()["CollectionIds"]) == ["late", "still-allowed"]
    assert s.stop() == 0
    assert SECRET not in s.stderr and "rotated/Secret+2" not in s.stderr


def test_docker_config_serves_all_interfaces_only_with_auth() -> None:
    from conftest import REPO

    from streamproc.api.exposure import check_exposure
    from streamproc.config import load_config

    config = load_config(REPO / "configs" / "docker.yaml")
    assert config.server.host == "0.0.0.0" and config.auth.enabled
    assert config.auth.access_keys_file == Path("/run/secrets/streamproc_keys")
    check_exposure(config)  # does not raise: authentication is on
    dockerfile = (REPO / "Dockerfile").read_text()
    assert '"--config", "/app/configs/docker.yaml"' in dockerfile
    assert "--allow-unauthenticated" not in dockerfile
