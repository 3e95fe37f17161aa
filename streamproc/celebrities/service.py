"""RecognizeCelebrities and GetCelebrityInfo: the image operations over the gallery."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streamproc.celebrities.catalog import CelebrityInfo
from streamproc.celebrities.gallery import CelebrityMatch, Gallery
from streamproc.faces.engine import FaceEngine
from streamproc.faces.types import Face, embedding_of
from streamproc.rekognition.constants import MAX_CELEBRITY_FACES


@dataclass
class RecognizedImage:
    """The image's largest faces, each recognised as a celebrity or not (largest first)."""

    width: int
    height: int
    celebrities: list[tuple[Face, CelebrityMatch]] = field(default_factory=list)
    unrecognized: list[Face] = field(default_factory=list)


class CelebrityService:
    """Finds the faces (the face engine) and asks the gallery who each one is."""

    def __init__(self, gallery: Gallery, engine: FaceEngine) -> None:
        self._gallery = gallery
        self._engine = engine

    def recognize(self, image: np.ndarray) -> RecognizedImage:
        """The 64 largest faces, recognised or not; with an empty gallery none is embedded."""
        height, width = image.shape[:2]
        out = RecognizedImage(width, height)
        faces = self._engine.detect(image)[:MAX_CELEBRITY_FACES]
        if faces and self._gallery.active():  # the request's one check of the gallery
            self._engine.embed(image, faces)
            matches = self._gallery.search([embedding_of(f) for f in faces])
        else:
            matches = [None] * len(faces)
        for face, match in zip(faces, matches, strict=True):
            if match is None:
                out.unrecognized.append(face)
            else:
                out.celebrities.append((face, match))
        return out

    def info(self, celebrity_id: str) -> CelebrityInfo:
        """GetCelebrityInfo (ResourceNotFoundException for an Id that is no celebrity)."""
        return self._gallery.info(celebrity_id)
