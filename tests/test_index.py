"""The collection index picks its type by size and rebuilds without blocking searches."""

from __future__ import annotations

import threading
import time

import numpy as np

from streamproc.storage.builder import IndexBuilder
from streamproc.storage.index import FaceIndex, IndexPolicy, flat_max, nlist_for


def unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_policy_by_size_and_dimension() -> None:
    policy = IndexPolicy()
    assert flat_max(128, policy) == 100_000 and flat_max(512, policy) == 25_000
    assert nlist_for(1_000_000) == 4096 and nlist_for(10) == 256


def test_rebuild_to_ivf_keeps_serving_and_replays_changes() -> None:
    dim = 64
    vectors = unit(2200, dim, 1)
    index = FaceIndex(dim, IndexPolicy(flat_max_elements=dim * 1000, nprobe=256))
    index.add(np.arange(2000), vectors[:2000])
    assert index.kind == "flat" and index.wants_rebuild()
    gate = threading.Event()

    def snapshot() -> tuple[np.ndarray, np.ndarray]:
        ids, vecs = np.arange(2000), vectors[:2000].copy()
        gate.wait(10)  # hold the build open while the test changes and searches
        return ids, vecs

    builder = IndexBuilder()
    builder.start()
    try:
        assert builder.submit("c", index, snapshot)
        index.add(np.arange(2000, 2100), vectors[2000:2100])
        index.remove(np.arange(0, 10))
        started = time.monotonic()
        for probe in (20, 1500, 2050):  # searches are answered during the rebuild
            _, ids = index.search(vectors[probe], 1)
            assert ids[0, 0] == probe
        assert time.monotonic() - started < 1.0
        gate.set()
        deadline = time.monotonic() + 30
        while index.kind != "ivf":
            assert time.monotonic() < deadline, "rebuild did not finish"
            time.sleep(0.05)
    finally:
        gate.set()
        assert builder.stop(5.0)
    assert len(index) == 2090 and index.built_for == 2000
    for probe in (20, 1500, 2050, 2099):
        _, ids = index.search(vectors[probe], 1)
        assert ids[0, 0] == probe
    _, ids = index.search(vectors[5], 3)
    assert 5 not in ids[0]
    assert not index.wants_rebuild()
    index.add(np.arange(2100, 2200), vectors[2100:2200])
    index.remove(np.arange(10, 1995))  # shrinking far below the flat limit asks for flat again
    assert index.wants_rebuild()
