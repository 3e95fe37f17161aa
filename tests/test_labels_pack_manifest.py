"""A damaged manifest or a pack of another taxonomy: one PackError, never a traceback.

For the daemon (``label_detector`` raises LabelPackBroken, ``serve`` exits 2 with one line)
and for the converter (the pack is rebuilt, as the message tells the operator).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED
from test_convert_labels import fill

from streamproc.config import load_config
from streamproc.daemon.labels import LabelPackBroken, label_detector
from streamproc.labels import labelmap, pack
from streamproc.labels.pack import PackError, check_pack
from streamproc.tools.labelpack import atomic

DAMAGES = {
    "truncated": lambda text: text[:len(text) // 2],
    "a list": lambda text: json.dumps([json.loads(text)]),
    "files a list": lambda text: json.dumps({**json.loads(text), "files": ["detector.onnx"]}),
    "no inputs": lambda text: json.dumps({k: v for k, v in json.loads(text).items()
                                          if k != "inputs"}),
    "inputs reshaped": lambda text: json.dumps({**json.loads(text), "inputs": [300, 280]}),
    "size a word": lambda text: json.dumps({**json.loads(text), "inputs": {
        "detector": "big", "classifier": 280, "classifier_scale": 0.5}}),
}


def damaged(folder: Path, damage: str) -> Path:
    folder.mkdir()
    fill(folder)
    manifest = folder / pack.MANIFEST
    manifest.write_text(DAMAGES[damage](manifest.read_text()))
    return folder


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_manifest_is_a_pack_error(tmp_path: Path, damage: str) -> None:
    folder = damaged(tmp_path / "pack", damage)
    with pytest.raises(PackError, match="manifest.json"):
        check_pack(folder)
    with pytest.raises(PackError):
        pack.read_manifest(folder)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_the_daemon_refuses_a_damaged_manifest_as_a_broken_pack(tmp_path: Path,
                                                                  damage: str) -> None:
    folder = damaged(tmp_path / "pack", damage)
    config = load_config(None, {"models.label_pack": str(folder)})
    with pytest.raises(LabelPackBroken, match="manifest.json.*convert labels --out"):
        label_detector(config)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_the_converter_rebuilds_a_pack_with_a_damaged_manifest(tmp_path: Path,
                                                              damage: str) -> None:
    target = damaged(tmp_path / "labels-pack", damage)
    assert atomic.is_valid(target) is not None
    assert atomic.write_pack(target, lambda work: fill(work, "b"))
    assert check_pack(target).model_version == "fake/b"


def test_serve_exits_2_with_one_line_for_a_damaged_manifest(tmp_path: Path) -> None:
    folder = damaged(tmp_path / "pack", "no inputs")  # was a KeyError traceback
    config = tmp_path / "streamproc.yaml"
    config.write_text(f"models:\n  label_pack: {folder}\n")
    out = subprocess.run(
        [sys.executable, "-m", "streamproc", "serve", "--config", str(config), "--port", "0",
         "--data-dir", str(tmp_path / "data"), "--model-root", str(SHARED),
         "--model-pack", "test_mfn"], capture_output=True, text=True, timeout=90, check=False)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = [line for line in out.stderr.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and "manifest.json" in lines[0] and "convert labels" in lines[0]


def test_a_pack_of_another_taxonomy_is_refused_and_rebuilt(tmp_path: Path) -> None:
    target = tmp_path / "labels-pack"
    atomic.write_pack(target, fill)
    manifest = target / pack.MANIFEST
    doc = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**doc, "taxonomy": "0" * 64}))
    with pytest.raises(PackError, match="another taxonomy"):
        check_pack(target)
    config = load_config(None, {"models.label_pack": str(target)})
    with pytest.raises(LabelPackBroken, match="another taxonomy"):
        label_detector(config)
    assert atomic.write_pack(target, lambda work: fill(work, "b"))
    assert check_pack(target).model_version == "fake/b"


def real_map() -> dict[str, object]:
    """The map this taxonomy makes (classifier indices as a 1000-class list would give)."""
    classes = [f"class {i}" for i in range(1000)]
    for i, name in enumerate(labelmap.IMAGENET):
        classes[i] = name
    low, high, low_name, high_name = labelmap.IMAGENET_DOGS
    classes[low], classes[high] = low_name, high_name
    return labelmap.build(classes).to_json()


def unrecorded(folder: Path, the_map: dict[str, object]) -> Path:
    """A pack as made before the taxonomy digest was recorded, with ``the_map`` in it."""
    folder.mkdir()
    fill(folder)
    (folder / pack.LABELMAP).write_text(json.dumps(the_map))
    doc = json.loads((folder / pack.MANIFEST).read_text())
    del doc["taxonomy"]
    doc["files"][pack.LABELMAP] = pack.sha256_of(folder / pack.LABELMAP)
    (folder / pack.MANIFEST).write_text(json.dumps(doc))
    return folder


def test_a_pack_without_a_digest_is_checked_by_its_label_map(tmp_path: Path) -> None:
    assert check_pack(unrecorded(tmp_path / "same", real_map())).model_version == "fake/a"
    changed = real_map()
    changed["labels"]["Car"]["aliases"] = ["Auto"]  # type: ignore[index]
    with pytest.raises(PackError, match="another taxonomy.*Car"):
        check_pack(unrecorded(tmp_path / "changed", changed))
    with pytest.raises(PackError, match="not a label map"):
        check_pack(unrecorded(tmp_path / "reshaped", {"format": 1, "labels": []}))


def test_the_digest_follows_the_taxonomy(monkeypatch: pytest.MonkeyPatch) -> None:
    before = labelmap.taxonomy_digest()
    assert before == labelmap.taxonomy_digest()
    monkeypatch.setattr(labelmap, "COCO", {**labelmap.COCO, 99: "Hydrant"})
    assert labelmap.taxonomy_digest() != before
