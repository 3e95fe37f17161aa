"""The label converter's source pins and its locked, atomic, self-repairing pack writes.

Small fake files stand in for the models: what is checked is the hashing and the writing,
not TensorFlow (the real conversion: scripts/labels_pack.sh, tests/test_detect_labels.py).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from conftest import REPO
from labels_helpers import label_pack_dir

from streamproc.labels import labelmap, pack
from streamproc.labels.pack import PackError, check_pack
from streamproc.tools.labelpack import atomic, venv
from streamproc.tools.labelpack.sources import (
    CLASSES,
    CLASSIFIER,
    DETECTOR,
    SourceError,
    check_sources,
)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_site(root: Path) -> MappingProxyType[str, str]:
    pins = {}
    for relative in (DETECTOR, CLASSIFIER, CLASSES):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(relative.encode())
        pins[relative] = digest(relative.encode())
    return MappingProxyType(pins)


def test_pinned_sources_are_found(tmp_path: Path) -> None:
    found = check_sources(tmp_path, fake_site(tmp_path))
    assert found.detector == tmp_path / DETECTOR and found.classes == tmp_path / CLASSES


def test_a_source_with_another_hash_is_refused(tmp_path: Path) -> None:
    pins = fake_site(tmp_path)
    (tmp_path / CLASSIFIER).write_bytes(b"not the pinned model")
    with pytest.raises(SourceError, match="not the pinned"):
        check_sources(tmp_path, pins)


def test_a_missing_source_is_refused(tmp_path: Path) -> None:
    pins = fake_site(tmp_path)
    (tmp_path / DETECTOR).unlink()
    with pytest.raises(SourceError, match="is missing"):
        check_sources(tmp_path, pins)


def test_the_converter_pins_every_requirement_exactly() -> None:
    lines = [line for line in venv.REQUIREMENTS.read_text().splitlines()
             if line and not line.startswith("#")]
    assert all("==" in line for line in lines)
    pins = venv.pins()
    assert pins["tensorflow-cpu"] == "2.21.0" and pins["tf2onnx"] == "1.17.0"
    assert pins["onnx"] == "1.23.2" and "protobuf" in pins


def test_a_venv_with_other_tool_versions_is_refused() -> None:
    venv.check_tools({"tensorflow": "2.21.0", "tf2onnx": "1.17.0", "onnx": "1.23.2"})
    with pytest.raises(venv.ConverterError, match="tf2onnx 1.16.1"):
        venv.check_tools({"tensorflow": "2.21.0", "tf2onnx": "1.16.1", "onnx": "1.23.2"})


def fill(folder: Path, tag: str = "a") -> None:
    """A pack that passes check_pack, made of small fake files."""
    files = {}
    for name in pack.FILES:
        (folder / name).write_text(f"{name} {tag}")
        files[name] = digest(f"{name} {tag}".encode())
    doc = {"format": pack.FORMAT, "model_version": f"fake/{tag}", "files": files,
           "taxonomy": labelmap.taxonomy_digest(),
           "inputs": {"detector": 300, "classifier": 280, "classifier_scale": 1 / 256}}
    (folder / pack.MANIFEST).write_text(json.dumps(doc))


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_a_pack_is_written_whole_and_kept_when_valid(tmp_path: Path) -> None:
    target = tmp_path / "labels-pack"
    assert atomic.write_pack(target, fill)
    assert check_pack(target).model_version == "fake/a"
    assert not atomic.write_pack(target, lambda work: fill(work, "b"))  # valid: kept
    assert check_pack(target).model_version == "fake/a"
    assert atomic.write_pack(target, lambda work: fill(work, "b"), force=True)
    assert check_pack(target).model_version == "fake/b"
    assert leftovers(tmp_path) == []


def test_a_failed_build_leaves_the_old_pack_and_no_temp_folder(tmp_path: Path) -> None:
    target = tmp_path / "labels-pack"
    atomic.write_pack(target, fill)

    def dies(work: Path) -> None:
        fill(work, "b")
        (work / pack.DETECTOR).write_text("cut short")
        msg = "the conversion died"
        raise RuntimeError(msg)

    with pytest.raises(RuntimeError, match="died"):
        atomic.write_pack(target, dies, force=True)
    assert check_pack(target).model_version == "fake/a"
    assert leftovers(tmp_path) == []


def test_a_build_that_makes_a_bad_pack_is_not_installed(tmp_path: Path) -> None:
    def bad(work: Path) -> None:
        fill(work)
        (work / pack.CLASSIFIER).write_text("altered after hashing")

    with pytest.raises(PackError, match="classifier.onnx"):
        atomic.write_pack(tmp_path / "labels-pack", bad)
    assert not (tmp_path / "labels-pack").exists()


@pytest.mark.parametrize("damage", ["truncate", "delete", "manifest"])
def test_a_broken_pack_is_rebuilt_without_force(tmp_path: Path, damage: str) -> None:
    target = tmp_path / "labels-pack"
    atomic.write_pack(target, fill)
    if damage == "truncate":
        (target / pack.DETECTOR).write_text("")
    elif damage == "delete":
        (target / pack.LABELMAP).unlink()
    else:
        (target / pack.MANIFEST).write_text("{not json")
    assert atomic.is_valid(target) is not None
    assert atomic.write_pack(target, lambda work: fill(work, "b"))
    assert check_pack(target).model_version == "fake/b"


def test_two_writers_at_once_build_once(tmp_path: Path) -> None:
    target = tmp_path / "labels-pack"
    builds: list[str] = []
    inside = threading.Event()

    def slow(work: Path) -> None:
        builds.append(threading.current_thread().name)
        inside.set()
        time.sleep(0.3)  # the second writer arrives while this one is mid-build
        fill(work)

    results: dict[str, bool] = {}

    def run(name: str) -> None:
        results[name] = atomic.write_pack(target, slow)

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert inside.wait(5)
    second = threading.Thread(target=run, args=("second",), name="second")
    second.start()
    first.join(5)
    second.join(5)
    assert builds == ["first"]  # the second waited for the lock, then found a valid pack
    assert results == {"first": True, "second": False}
    assert check_pack(target).model_version == "fake/a"


def convert_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "streamproc", "models", "convert", "labels",
                           *args], capture_output=True, text=True, timeout=120, check=False,
                          cwd=REPO)


def test_the_cli_keeps_a_valid_pack() -> None:
    done = convert_cli("--out", str(label_pack_dir()))
    assert done.returncode == 0, done.stderr
    assert "a valid pack is already at" in done.stderr


def test_the_cli_reports_a_converter_that_cannot_be_made(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "venv"
    not_a_folder.write_text("a file where the venv should go")
    done = convert_cli("--out", str(tmp_path / "pack"), "--converter-venv", str(not_a_folder))
    assert done.returncode == 1
    assert "streamproc models convert: python -m venv failed (exit 1):\n" in done.stderr
    assert "Unable to create directory" in done.stderr  # the cause, from venv itself
    assert not (tmp_path / "pack").exists() and leftovers(tmp_path) == []


def test_models_list_shows_the_label_pack(tmp_path: Path) -> None:
    import io

    from streamproc.config import load_config
    from streamproc.tools.models import list_packs

    def listing(**overrides: object) -> str:
        out = io.StringIO()
        list_packs(load_config(None, {"models.root": str(tmp_path), **overrides}).models, out)
        return out.getvalue().splitlines()[-1]

    assert listing() == (f"label pack (DetectLabels): missing at {tmp_path / 'labels-pack'}; "
                         "make it with `streamproc models convert labels`")
    (tmp_path / "labels-pack").mkdir()
    fill(tmp_path / "labels-pack")
    assert "installed at" in listing() and "fake/a" in listing()
    (tmp_path / "labels-pack" / pack.LICENCE).write_text("edited")
    assert "broken (" in listing() and "LICENCE.txt" in listing()


def test_verify_refuses_answers_beyond_the_tolerances(tmp_path: Path) -> None:
    """The pack's own answers pass; nudged past a tolerance, the same answers are refused."""
    import cv2
    import numpy as np
    import onnxruntime as ort

    from streamproc.tools.labelpack import verify

    folder = label_pack_dir()
    images = verify.probes()[:2]
    detector = ort.InferenceSession(str(folder / pack.DETECTOR),
                                    providers=["CPUExecutionProvider"])
    classifier = ort.InferenceSession(str(folder / pack.CLASSIFIER),
                                      providers=["CPUExecutionProvider"])
    names = [o.name for o in detector.get_outputs()]
    ssd: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for image in images:
        for name, value in zip(names, detector.run(None, {"image_tensor:0": image[None]}),
                               strict=True):
            ssd[name].append(value[0])
    inputs = np.stack([cv2.resize(i, (280, 280)) for i in images])
    scores = np.stack([classifier.run(None, {"images": x[None]})[0][0] for x in inputs])
    good = {**{f"ssd/{k}": np.stack(v) for k, v in ssd.items()},
            "classifier/input": inputs, "classifier/scores": scores}

    def check(**changes: np.ndarray) -> dict[str, float]:
        np.savez(tmp_path / "reference.npz", **{**good, **changes})  # type: ignore[arg-type]
        return verify.verify(folder, images, tmp_path / "reference.npz")

    assert check() == {"detector_box": 0.0, "detector_score": 0.0, "classifier_steps": 0.0}
    boxes = good["ssd/detection_boxes:0"].copy()
    boxes[0, 0, 0] += 1e-3
    with pytest.raises(verify.VerifyError, match="detector answers differ"):
        check(**{"ssd/detection_boxes:0": boxes})
    classes = good["ssd/detection_classes:0"].copy()
    classes[0, 0] = 90 if classes[0, 0] != 90 else 1
    with pytest.raises(verify.VerifyError, match="other objects"):
        check(**{"ssd/detection_classes:0": classes})
    shifted = np.clip(scores.astype(int) + 11, 0, 255).astype(np.uint8)
    shifted[:, scores[0].argmax()] = scores[:, scores[0].argmax()]
    with pytest.raises(verify.VerifyError):
        check(**{"classifier/scores": shifted})


PINNED = {"tensorflow-cpu": "2.21.0", "tf2onnx": "1.17.0", "onnx": "1.23.2"}


def stub_venv(folder: Path, versions: Mapping[str, str | None], pip_rc: int = 0) -> Path:
    """A folder whose bin/python logs pip's calls and answers the tool-version query."""
    python = folder / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/usr/bin/env bash\n"
                      f'if [ "$1" = "-m" ]; then echo "$*" >> {folder / "pip.log"}; '
                      f"echo 'pip said no' >&2; exit {pip_rc}; fi\n"
                      f"echo '{json.dumps(versions)}'\n")
    python.chmod(0o755)
    return folder


def pip_calls(folder: Path) -> int:
    log = folder / "pip.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.e2e  # runs the stub venv's python
def test_a_venv_without_a_completed_install_is_installed_again(tmp_path: Path) -> None:
    import io

    folder = stub_venv(tmp_path / "venv", PINNED)
    assert venv.ensure(folder, io.StringIO()) == folder / "bin" / "python"
    assert pip_calls(folder) == 1  # no marker: a half-made venv is not trusted
    marker = folder / venv.MARKER
    assert marker.read_text().strip() == digest(venv.REQUIREMENTS.read_bytes())
    venv.ensure(folder, io.StringIO())
    assert pip_calls(folder) == 1  # complete: reused
    marker.write_text("0" * 64)  # made from other requirements
    out = io.StringIO()
    venv.ensure(folder, out)
    assert pip_calls(folder) == 2 and "other requirements" in out.getvalue()
    marker.unlink()
    with pytest.raises(venv.ConverterError, match="no complete install"):
        venv.ensure(folder, io.StringIO(), create=False)


@pytest.mark.e2e  # runs the stub venv's python
def test_a_failed_install_leaves_no_marker(tmp_path: Path) -> None:
    import io

    folder = stub_venv(tmp_path / "venv", PINNED, pip_rc=1)
    with pytest.raises(venv.ConverterError, match="(?s)requirements failed.*pip said no"):
        venv.ensure(folder, io.StringIO())
    assert not (folder / venv.MARKER).exists()


@pytest.mark.e2e  # runs the stub venv's python
@pytest.mark.parametrize("versions", [{**PINNED, "tf2onnx": "1.16.1"},
                                      {**PINNED, "onnx": None}])
def test_a_venv_with_other_tools_is_refused_before_anything_runs(tmp_path: Path,
                                                                 versions: dict[str, Any]
                                                                 ) -> None:
    import io

    folder = stub_venv(tmp_path / "venv", versions)
    (folder / venv.MARKER).write_text(digest(venv.REQUIREMENTS.read_bytes()))
    with pytest.raises(venv.ConverterError, match="not the pinned.*fresh venv"):
        venv.ensure(folder, io.StringIO())
    assert pip_calls(folder) == 0


@pytest.mark.e2e  # runs the stub venv's python
def test_two_conversions_share_the_venv_one_at_a_time(tmp_path: Path) -> None:
    import io

    folder = stub_venv(tmp_path / "venv", PINNED)
    with atomic.locked(folder):
        worker = threading.Thread(target=venv.ensure, args=(folder, io.StringIO()))
        worker.start()
        time.sleep(0.3)
        assert pip_calls(folder) == 0  # waits for the venv's lock
    worker.join(10)
    assert pip_calls(folder) == 1


def test_a_killed_runs_temporary_folders_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "labels-pack"
    for name in (".labels-pack.tmp-dead1", ".labels-pack.old-dead2"):
        (tmp_path / name / "pack").mkdir(parents=True)
    (tmp_path / ".other-pack.tmp-keep").mkdir()
    atomic.write_pack(target, fill)
    assert leftovers(tmp_path) == [".other-pack.tmp-keep"]
    assert check_pack(target).model_version == "fake/a"
