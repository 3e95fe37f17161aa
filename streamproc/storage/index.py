"""A per-collection FAISS index of unit vectors keyed by the faces' row ids.

The index picks its own type by size: exact inner-product search (``Flat``) while a query
costs at most ``flat_max_elements`` multiply-adds (100k faces at 128-d, 25k at 512-d:
a few ms on one core), an inverted file (``IVF{nlist},Flat``, nlist ~ 4*sqrt(N)) above. Moving
between them is a rebuild that runs in the background: searches keep using the old index,
adds and removes made meanwhile are logged and replayed onto the new one before the swap.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import faiss
import numpy as np


@dataclass(frozen=True)
class IndexPolicy:
    """When to use which index, and how to search an IVF one."""

    flat_max_elements: int = 12_800_000
    nprobe: int = 32
    growth: float = 2.0  # rebuild an IVF index once the collection doubled since it was built
    train_per_list: int = 40  # training vectors per inverted list
    # OpenMP threads per search. One suits this workload: a few vectors at a time, where
    # extra OpenMP threads only spin-wait (12% of the streaming CPU profile on a 1,000-face
    # collection). OpenMP settings are per thread, so each search sets it.
    search_threads: int = 1


def flat_max(dim: int, policy: IndexPolicy) -> int:
    """Most faces a flat index of this dimension holds."""
    return max(1, policy.flat_max_elements // dim)


def nlist_for(count: int) -> int:
    """Inverted lists for ``count`` vectors: a power of two near 4*sqrt(N)."""
    return int(min(65536, max(256, 2 ** round(math.log2(4 * math.sqrt(max(count, 1)))))))


def build_index(dim: int, ids: np.ndarray, vectors: np.ndarray,
                policy: IndexPolicy) -> tuple[faiss.Index, str]:
    """A new index holding ``vectors`` under ``ids``, of the type their number calls for."""
    count = len(ids)
    index: faiss.Index
    if count <= flat_max(dim, policy):
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        kind = "flat"
    else:
        nlist = nlist_for(count)
        index = faiss.index_factory(dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        sample = min(count, nlist * policy.train_per_list)
        pick = np.random.default_rng(0).choice(count, sample, replace=False)
        index.train(np.ascontiguousarray(vectors[np.sort(pick)]))
        faiss.extract_index_ivf(index).nprobe = policy.nprobe
        kind = "ivf"
    if count:
        index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids.astype(np.int64))
    return index, kind


T = TypeVar("T")


class FaceIndex:
    """Thread-safe search over one collection; see the module docstring for rebuilds."""

    def __init__(self, dim: int, policy: IndexPolicy | None = None) -> None:
        self.dim = dim
        self.policy = policy or IndexPolicy()
        self._index, self.kind = build_index(dim, np.empty(0, np.int64),
                                             np.empty((0, dim), np.float32), self.policy)
        self.built_for = 0
        self._lock = threading.Lock()
        self._log: list[tuple[str, np.ndarray, np.ndarray | None]] | None = None

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def _rows(self, vectors: np.ndarray, count: int | None = None) -> np.ndarray:
        """``vectors`` as a contiguous (N, dim) float32 array; a wrong size is a bug, not data.

        Reshaping instead (a 512-d query read as four 128-d rows) once turned a model
        mismatch into silent nonsense, so the shape is asserted, never coerced.
        """
        array = np.ascontiguousarray(vectors, dtype=np.float32)
        if array.ndim == 1 and count in (None, 1) and array.size == self.dim:
            array = array.reshape(1, self.dim)
        if array.ndim != 2 or array.shape[1] != self.dim or (
                count is not None and array.shape[0] != count):
            msg = f"vectors of shape {array.shape} given to a {self.dim}-d index"
            raise ValueError(msg)
        return array

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors (N, dim) under int64 ids."""
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        vectors = self._rows(vectors, len(ids))
        with self._lock:
            self._index.add_with_ids(vectors, ids)
            if self._log is not None:
                self._log.append(("add", ids, vectors))

    def remove(self, ids: np.ndarray) -> None:
        """Remove vectors by id (unknown ids are ignored)."""
        if len(ids) == 0:
            return
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            self._index.remove_ids(ids)  # type: ignore[arg-type]  # faiss wraps numpy ids
            if self._log is not None:
                self._log.append(("remove", ids, None))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query; ids are -1 where fewer than k exist."""
        queries = self._rows(queries)
        faiss.omp_set_num_threads(self.policy.search_threads)
        with self._lock:
            k = max(1, min(k, int(self._index.ntotal)))
            return self._index.search(queries, k)

    def search_hits(self, queries: np.ndarray, k: int, min_cosine: float,
                    lookup: Callable[[int], T | None]) -> list[list[tuple[float, T]]]:
        """Per query, up to ``k`` (cosine, item) with cosine >= ``min_cosine``, best first.

        ``lookup`` turns an id into its item; ids it no longer knows (removed meanwhile)
        are left out.
        """
        if len(self) == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = self.search(queries, k)
        out = []
        for row_scores, row_ids in zip(scores, ids, strict=True):
            hits = []
            for score, key in zip(row_scores.tolist(), row_ids.tolist(), strict=True):
                item = lookup(key) if key >= 0 and score >= min_cosine else None
                if item is not None:
                    hits.append((score, item))
            out.append(hits)
        return out

    # ---- rebuilds ----------------------------------------------------------------------
    @property
    def rebuilding(self) -> bool:
        """True between begin_rebuild and finish/abort."""
        return self._log is not None

    def wants_rebuild(self) -> bool:
        """True if the size calls for another index type or a bigger IVF."""
        count = len(self)
        if self.rebuilding:
            return False
        limit = flat_max(self.dim, self.policy)
        if self.kind == "flat":
            return count > limit
        return count > self.built_for * self.policy.growth or count <= limit // 2

    def begin_rebuild(self) -> None:
        """Start logging changes; call before reading the snapshot to build from."""
        with self._lock:
            self._log = []

    def finish_rebuild(self, index: faiss.Index, kind: str, built_for: int,
                       snapshot_max_id: int) -> None:
        """Replay changes made since :meth:`begin_rebuild`, then swap the new index in."""
        with self._lock:
            for op, ids, vectors in self._log or []:
                if op == "add":
                    assert vectors is not None  # adds are logged with their vectors
                    newer = ids > snapshot_max_id  # older adds are already in the snapshot
                    if newer.any():
                        index.add_with_ids(vectors[newer], ids[newer])
                else:
                    index.remove_ids(ids)  # type: ignore[arg-type]  # faiss wraps numpy ids
            self._index, self.kind, self.built_for, self._log = index, kind, built_for, None

    def abort_rebuild(self) -> None:
        """Give up a rebuild; the current index stays."""
        with self._lock:
            self._log = None
