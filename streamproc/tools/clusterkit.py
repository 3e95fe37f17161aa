"""Test and benchmark harness: real `streamproc serve --cluster` processes around one broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from streamproc.tools.client import rekognition

REPO = Path(__file__).resolve().parents[2]


class Node:
    """One daemon process of the cluster; its data dir survives restarts."""

    def __init__(self, root: Path, name: str, bootstrap: str, shared: Path,
                 client: Callable[[str], Any] = rekognition, **settings: Any) -> None:
        self.name = name
        self.shared = shared
        self._client = client
        self.root = root / name
        self.root.mkdir(parents=True, exist_ok=True)
        self.bootstrap = bootstrap
        self.settings = settings
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""
        self.log = self.root / "stderr.log"

    def _config(self) -> Path:
        config: dict[str, Any] = {
            "server": {"port": 0}, "log_level": "INFO",
            "storage": {"data_dir": str(self.root / "data")},
            "models": {"root": str(self.shared), "pack": "test_mfn"},
            "kafka": {"bootstrap": self.bootstrap},
            "cluster": {"bootstrap": self.bootstrap, "node_id": self.name},
            "inputs": {"media_roots": [str(self.shared / "data")]},
        }
        for dotted, value in self.settings.items():
            tree = config
            *parents, leaf = dotted.split(".")
            for key in parents:
                tree = tree.setdefault(key, {})
            tree[leaf] = value
        path = self.root / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self, timeout: float = 90.0) -> Node:
        """Start the process and wait for its ready line."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log, "a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamproc", "serve", "--config", str(self._config())],
                stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO, env=env)
        line = _readline(self.proc, timeout)
        if not line.startswith("streamproc ready on "):
            self.proc.kill()
            msg = f"{self.name} did not start ({line!r}); see {self.log}"
            raise RuntimeError(msg)
        self.endpoint = line.split()[-1]
        return self

    def run_to_exit(self, timeout: float = 90.0) -> tuple[int, str]:
        """Start, expecting the process to exit; (exit code, stderr)."""
        with open(self.log, "w") as err:
            proc = subprocess.run(
                [sys.executable, "-m", "streamproc", "serve", "--config", str(self._config())],
                stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO, timeout=timeout,
                check=False)
        return proc.returncode, self.log.read_text()

    @property
    def rek(self) -> Any:
        """A boto3 client for this node."""
        return self._client(self.endpoint)

    def cluster(self) -> dict[str, Any]:
        """GET /cluster."""
        with urllib.request.urlopen(self.endpoint + "/cluster", timeout=5) as resp:
            return json.loads(resp.read())

    def metric(self, name: str) -> float:
        """The sum of a metric's samples on /metrics (0 if absent)."""
        with urllib.request.urlopen(self.endpoint + "/metrics", timeout=5) as resp:
            text = resp.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, and wait."""
        if not self.alive():
            return None
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL: a crash."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(10)


def _readline(proc: subprocess.Popen[str], timeout: float) -> str:
    out: list[str] = []
    stdout = proc.stdout
    assert stdout is not None, "started with stdout=PIPE"
    reader = threading.Thread(target=lambda: out.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return out[0].strip() if out else ""


def poll(check: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """``check()``'s first truthy value within ``timeout`` (else its last value)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - a node still starting or going away
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


class Overlap:
    """Samples what every node runs; the longest time one processor ran on two nodes."""

    def __init__(self, nodes: Callable[[], list[Node]], every: float = 0.1) -> None:
        self._nodes = nodes
        self._every = every
        self._since: dict[str, float] = {}
        self.longest = 0.0
        self.worst = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Overlap:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            seen: dict[str, int] = {}
            for node in self._nodes():
                if not node.alive():
                    continue
                try:
                    for name in node.cluster()["running_here"]:
                        seen[name] = seen.get(name, 0) + 1
                except Exception:  # noqa: BLE001 - a node going away
                    continue
            now = time.monotonic()
            for name in [n for n in self._since if seen.get(n, 0) < 2]:
                del self._since[name]
            for name, count in seen.items():
                if count >= 2:
                    start = self._since.setdefault(name, now)
                    if now - start > self.longest:
                        self.longest, self.worst = now - start, name
