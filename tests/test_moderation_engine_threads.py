"""One loaded engine under concurrent callers with *different* inputs and batch sizes.

The API's request threads and the moderation stage call the same engine at once; a shared
buffer or a result handed to the wrong caller would only show when callers send different
images (identical inputs hide a swap), so each thread sends its own rotation of the photos,
in its own batch size, and must get exactly the one-at-a-time answer for each of its images.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from test_moderation_engine import _engine, _skimage, needs_nudenet

from streamproc.moderation.engine import ModerationEngine

THREADS = 4


def _key(engine: ModerationEngine, images: list[np.ndarray]) -> list[list[tuple[str, float]]]:
    return [[(x.name, round(x.confidence, 3)) for x in r.labels]
            for r in engine.analyse_many(images)]


@pytest.mark.parametrize("pack", ["open_nsfw",
                                  pytest.param("open_nsfw+nudenet", marks=needs_nudenet)])
def test_concurrent_callers_each_get_their_own_images_answers(pack: str) -> None:
    engine = _engine(pack)
    engine.load()
    images = _skimage()
    alone = [_key(engine, [image])[0] for image in images]
    # The inputs must tell images apart, or a swap between callers could not show.
    assert len({tuple(k) for k in alone}) > len(images) // 2
    got: dict[int, list[list[tuple[str, float]]]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def call(i: int) -> None:
        mine = images[i:] + images[:i]
        try:
            start.wait(10)
            out: list[list[tuple[str, float]]] = []
            for _ in range(2):
                out = []
                for at in range(0, len(mine), i + 1):  # batch sizes 1..THREADS
                    out += _key(engine, mine[at:at + i + 1])
                assert out == alone[i:] + alone[:i]
            got[i] = out
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(got) == list(range(THREADS))
    for thread in threads:
        assert not thread.is_alive()


if __name__ == "__main__":
    pytest.main([__file__])
