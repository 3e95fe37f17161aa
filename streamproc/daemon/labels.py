"""The label pack, loaded at start when one is installed (DetectLabels, label jobs).

The pack is optional: without one, label operations answer ``LabelPackMissing`` and nothing
downloads or converts (``streamproc models convert labels`` is the operator's step). A pack
that is there but broken (a file cut short or altered) stops the start instead of serving
half a pack: the converter repairs it.
"""

from __future__ import annotations

import logging

from streamproc.config import Config
from streamproc.faces.errors import ModelPackError
from streamproc.faces.providers import ExecutionOptions
from streamproc.labels.detector import PackDetector
from streamproc.labels.labelmap import LabelMapError
from streamproc.labels.pack import MANIFEST, PackError
from streamproc.labels.types import LabelDetector

logger = logging.getLogger(__name__)


class LabelPackBroken(ModelPackError):
    """An installed label pack that fails its checks (the message says how to repair it).

    A model-pack error, so ``serve`` logs its one line and exits 2, as for a face pack.
    """


def label_detector(config: Config) -> LabelDetector | None:
    """The loaded pack at ``models.label_pack`` (else ROOT/labels-pack), None when absent."""
    models = config.models
    folder = models.label_pack_folder()
    if not (folder / MANIFEST).exists():
        logger.info("no label pack at %s: DetectLabels and label jobs are off "
                    "(streamproc models convert labels makes one)", folder)
        return None
    detector = PackDetector(folder, ExecutionOptions(
        providers=models.providers if isinstance(models.providers, str)
        else tuple(models.providers),
        device_id=models.device_id, intra_op_threads=models.intra_op_threads))
    try:
        detector.load()
    except (PackError, LabelMapError) as exc:  # check_pack reads the map; load reads it again
        msg = (f"{exc}; repair it with `streamproc models convert labels --out {folder}` "
               "(a broken pack is rebuilt)")
        raise LabelPackBroken(msg) from None
    return detector
