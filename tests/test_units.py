"""Small pieces on their own: validation, calibration, providers, lifecycle, config."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from streamproc.api.validate import ServiceSpec
from streamproc.config import load_config
from streamproc.errors import ImageTooLargeException, InvalidParameterException
from streamproc.faces.runner import resolve_providers
from streamproc.faces.similarity import SimilarityScale
from streamproc.lifecycle import Service

REPO = Path(__file__).resolve().parent.parent


def test_validator_checks_what_botocore_does_not() -> None:
    spec = ServiceSpec()
    assert spec.validate("CreateCollection", {"CollectionId": "ok.id-1"}) == {
        "CollectionId": "ok.id-1"}
    with pytest.raises(InvalidParameterException, match="at .Tags.key."):
        spec.validate("CreateCollection", {"CollectionId": "a", "Tags": {"aws:x": "v"}})
    with pytest.raises(InvalidParameterException, match="MaxFaces"):
        spec.validate("SearchFaces", {"CollectionId": "a", "MaxFaces": 4097,
                                      "FaceId": "00000000-0000-0000-0000-000000000000"})
    with pytest.raises(ImageTooLargeException):
        import base64
        spec.validate("DetectFaces", {"Image": {"Bytes": base64.b64encode(
            b"x" * (5 * 1024 * 1024 + 1)).decode()}})
    assert spec.validate("DetectFaces", {"Image": {"Bytes": "aGk="}}) == {
        "Image": {"Bytes": b"hi"}}
    with pytest.raises(InvalidParameterException, match="Member must be a boolean"):
        spec.validate("UpdateStreamProcessor", {"Name": "n", "DataSharingPreferenceForUpdate": {
            "OptIn": "yes"}})


def test_similarity_scale_is_monotonic_through_its_knots() -> None:
    config = load_config(None, {})
    for pack in config.models.packs.values():
        scale = SimilarityScale(pack.calibration)
        cos = np.linspace(-1, 1, 401)
        sims = scale.similarity(cos)
        assert np.all(np.diff(sims) >= 0) and sims[0] == 0 and sims[-1] == 100
        for knot in pack.calibration:
            assert scale.similarity(knot.cosine) == pytest.approx(knot.similarity)


def test_auto_providers_fall_back_to_cpu() -> None:
    assert resolve_providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    both = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert resolve_providers("auto", both) == both
    with pytest.raises(RuntimeError, match="none of the providers"):
        resolve_providers(["CUDAExecutionProvider"], ["CPUExecutionProvider"])


class _Blocked(Service):
    """A service whose thread ignores the stop event (a stuck stage)."""

    def __init__(self) -> None:
        super().__init__("blocked")
        self.release = threading.Event()

    def _run(self) -> None:
        self.release.wait(30)


class _Polite(Service):
    def _run(self) -> None:
        while not self.wait(10):
            pass


def test_stop_is_bounded_even_when_the_thread_is_stuck() -> None:
    polite = _Polite("polite")
    polite.start()
    started = time.monotonic()
    assert polite.stop(timeout=2) is True
    assert time.monotonic() - started < 0.5
    stuck = _Blocked()
    stuck.start()
    started = time.monotonic()
    assert stuck.stop(timeout=0.3) is False
    assert time.monotonic() - started < 1.0
    stuck.release.set()


def test_shipped_config_is_valid_and_strict(tmp_path: Path) -> None:
    shipped = load_config(REPO / "configs" / "streamproc.yaml")
    assert shipped == load_config(None, {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  pack: x\n  unknown_key: 1\n")
    with pytest.raises(ValueError, match="unknown_key"):
        load_config(bad)
