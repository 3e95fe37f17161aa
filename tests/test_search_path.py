"""The one search path on its own (no models): model check, pinned collections, dimensions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import MODEL, OTHER_MODEL, Harness, unit

from streamproc.errors import InvalidParameterException, ResourceNotFoundException
from streamproc.faces.engine import ModelIdentity
from streamproc.search.searcher import CollectionNotFound, model_mismatch
from streamproc.storage.collections import NewFace
from streamproc.storage.index import FaceIndex


def _face(face_id: str, vector: list[float]) -> NewFace:
    return NewFace(face_id, "img", face_id, {"Width": 1.0, "Height": 1.0, "Left": 0.0,
                                             "Top": 0.0}, 99.0, unit(vector))


def test_thresholds_and_similarity_come_from_one_place(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.add_collection("people")
    h.collections.add_faces("people", [_face("near", [1, 0.1, 0, 0]),
                                       _face("far", [0, 1, 0, 0])])
    query = unit([1, 0, 0, 0])[None, :]
    hits = h.searcher.search("people", query, 10, threshold=80.0)[0]
    # The test scale is linear: Similarity = 50 * (cosine + 1).
    assert [hit.face.face_id for hit in hits] == ["near"]
    assert hits[0].similarity == pytest.approx(50 * (1 + float(unit([1, 0.1, 0, 0])[0])))
    everyone = h.searcher.search("people", query, 10, threshold=0.0)[0]
    assert [hit.face.face_id for hit in everyone] == ["near", "far"]
    assert h.searcher.search("people", query, 10, 0.0, exclude="near")[0][0].face.face_id == \
        "far"
    h.close()


def test_another_recogniser_of_the_same_size_is_refused(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.add_collection("theirs", OTHER_MODEL)
    with pytest.raises(InvalidParameterException, match="created with model pack test_sface"):
        h.searcher.search("theirs", unit([1, 0, 0, 0])[None, :], 5, 80.0)
    with pytest.raises(ResourceNotFoundException):
        h.searcher.check("nobody")
    h.close()


def test_collections_from_before_recognisers_were_recorded_compare_pack_names() -> None:
    from streamproc.storage.collections import CollectionInfo

    old = CollectionInfo("old", "arn", 0.0, "test_mfn", 4, "7.0", None)
    assert model_mismatch(old, MODEL) is None
    assert "test_mfn" in (model_mismatch(old, OTHER_MODEL) or "")
    wider = ModelIdentity("buffalo_l", 512, "x")
    assert "(4-d embeddings); this server runs buffalo_l (512-d)" in (
        model_mismatch(old, wider) or "")


def test_a_pinned_collection_that_was_made_again_is_not_searched(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    pinned = h.add_collection("people")
    h.collections.delete("people")
    h.add_collection("people")  # same name, same model, a different collection
    with pytest.raises(CollectionNotFound, match="deleted"):
        h.searcher.search("people", unit([1, 0, 0, 0])[None, :], 5, 80.0, expect=pinned)
    h.close()


def test_the_index_refuses_vectors_of_another_size() -> None:
    index = FaceIndex(128)
    index.add(np.array([1], np.int64), unit([1.0] * 128)[None, :])
    with pytest.raises(ValueError, match="128-d index"):
        index.search(np.ones((1, 512), np.float32), 1)  # once read as four 128-d rows
    with pytest.raises(ValueError, match="128-d index"):
        index.add(np.array([2], np.int64), np.ones((1, 64), np.float32))
    assert index.search(unit([1.0] * 128), 1)[1].tolist() == [[1]]
