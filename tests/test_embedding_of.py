"""``embedding_of``: the one check that a face was embedded before it is used as a vector."""

from __future__ import annotations

import numpy as np
import pytest

from streamproc.faces.types import Face, NotEmbedded, embedding_of


def _face(embedding: np.ndarray | None) -> Face:
    return Face(np.array([0, 0, 10, 10], np.float32), 0.9, np.zeros((5, 2), np.float32),
                embedding=embedding)


def test_an_embedded_face_gives_its_own_vector() -> None:
    vector = np.array([0.6, 0.8], np.float32)
    assert embedding_of(_face(vector)) is vector


def test_a_face_not_embedded_is_a_bug_not_bad_input() -> None:
    """Not a ValueError: nothing a client sent is wrong (the API answers 500)."""
    with pytest.raises(NotEmbedded, match="before it was embedded") as caught:
        embedding_of(_face(None))
    assert not isinstance(caught.value, ValueError)
