"""Stateless image operations: DetectFaces and CompareFaces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamproc.collections.quality import quality_reasons
from streamproc.collections.service import largest_face
from streamproc.config import Config
from streamproc.errors import InvalidParameterException
from streamproc.faces.engine import FaceEngine
from streamproc.faces.types import Face, embedding_of
from streamproc.rekognition.constants import MAX_TARGET_FACES, face_match_threshold
from streamproc.search.searcher import FaceSearcher


@dataclass
class Comparison:
    """CompareFaces result: the source face and each target face with its Similarity."""

    source: Face
    matches: list[tuple[float, Face]]
    unmatched: list[Face]


class ImageService:
    """Face detection and one-to-one comparison on request images."""

    def __init__(self, engine: FaceEngine, searcher: FaceSearcher, config: Config) -> None:
        self._engine = engine
        self._searcher = searcher
        self._config = config

    def detect_faces(self, image: np.ndarray) -> list[Face]:
        """Faces in the image, largest first (at most 100, as Rekognition)."""
        return self._engine.detect(image)[:MAX_TARGET_FACES]

    def compare_faces(self, source: np.ndarray, target: np.ndarray, threshold: float | None,
                      quality_filter: str) -> Comparison:
        """Compare the largest source face with every target face."""
        src = largest_face(self._engine, source, self._config, quality_filter)
        level = self._config.models.quality.get(quality_filter)
        targets = [f for f in self._engine.detect(target) if not quality_reasons(f, level)]
        targets = targets[:MAX_TARGET_FACES]
        if not targets:
            raise InvalidParameterException(
                "There are no faces in the target image. Should be at least 1.")
        self._engine.embed(source, [src])
        self._engine.embed(target, targets)
        cosines = np.vstack([embedding_of(t) for t in targets]) @ embedding_of(src)
        sims = np.asarray(self._searcher.similarity(cosines), dtype=float)
        cut = face_match_threshold(threshold)
        matches = sorted(((float(s), t) for s, t in zip(sims, targets, strict=True) if s >= cut),
                         key=lambda m: -m[0])
        unmatched = [t for s, t in zip(sims, targets, strict=True) if s < cut]
        return Comparison(src, matches, unmatched)
