"""Helpers for the label-pack tests: where the test pack is, and the config that loads it.

Config keys set by :func:`label_config`: ``models.label_pack`` only (the folder of a pack made
by ``streamproc models convert labels``). The fragment uses make_config's dotted keys, so
``make_config(data_dir, **label_config(label_pack_dir()))`` gives a daemon that serves
DetectLabels (and label jobs) from the test pack.

The pack is built once per machine by ``scripts/labels_pack.sh`` (``scripts/test.sh`` runs it
before the suite) into ``$STREAMPROC_LABEL_PACK``, default ``~/.cache/streamproc/labels-pack``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DEFAULT_PACK = Path("~/.cache/streamproc/labels-pack")
# Written last by the converter (the folder is renamed into place whole), so its presence
# means a complete pack.
MANIFEST = "manifest.json"


def label_pack_dir() -> Path:
    """The test label pack's folder; fails (never skips) when it has not been built."""
    folder = Path(os.environ.get("STREAMPROC_LABEL_PACK") or DEFAULT_PACK).expanduser()
    if not (folder / MANIFEST).is_file():
        pytest.fail(f"no label pack at {folder}: build it with scripts/labels_pack.sh "
                    "(set STREAMPROC_LABEL_PACK to choose the folder)", pytrace=False)
    return folder.resolve()


def label_config(root: Path) -> dict[str, object]:
    """make_config overrides pointing a daemon at the label pack in folder ``root``.

    ``root`` is a pack folder, normally :func:`label_pack_dir`'s answer.
    """
    return {"models.label_pack": str(root)}
