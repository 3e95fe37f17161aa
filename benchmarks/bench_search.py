"""FAISS search per query: flat, IVF and HNSW at 100k and 1M faces, 128-d and 512-d.

    .venv/bin/python benchmarks/bench_search.py [--sizes 100000 1000000] [--dims 128 512]
                                               [--data face|uniform|both] [--no-hnsw-1m]

Recall@1 is against exact (flat) search on the same queries. Queries are noisy copies of
stored vectors (cosine ~0.75 to their source), as a new photo of an enrolled person is.

Data: "face" vectors have the structure of face embeddings (identities with several photos
each, most variance in a low-dimensional subspace); "uniform" vectors are uniformly random
on the sphere, the worst case for partitioned indexes. The baseline is the flat index, and
"auto" is what a collection of that size uses on its own (streamproc.storage.index).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import percentiles, save, table  # noqa: E402
from streamproc.storage.index import IndexPolicy, build_index  # noqa: E402

QUERIES = 500


def unit(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    faiss.normalize_L2(x)
    return x


def dataset(kind: str, n: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        base = unit(rng.standard_normal((n, dim), dtype=np.float32))
    else:
        sub = 32
        basis = np.linalg.qr(rng.standard_normal((dim, sub)))[0].astype(np.float32).T
        people = max(n // 5, 1)
        centres = unit(rng.standard_normal((people, sub), dtype=np.float32) @ basis)
        who = rng.integers(0, people, n)
        base = unit(centres[who]
                    + (rng.standard_normal((n, sub), dtype=np.float32) * np.float32(0.35 / 6))
                    @ basis
                    + rng.standard_normal((n, dim), dtype=np.float32) * np.float32(0.5 / dim**0.5))
    picks = rng.integers(0, n, QUERIES)
    noise = rng.standard_normal((QUERIES, dim), dtype=np.float32) * np.float32(0.6 / dim**0.5)
    return base, unit(base[picks] + noise)


def timed_search(index: Any, queries: np.ndarray, truth: np.ndarray | None
                 ) -> tuple[list[float], float, np.ndarray]:
    latencies, found = [], []
    for q in queries:
        started = time.perf_counter()
        _, ids = index.search(q[None, :], 1)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append(ids[0, 0])
    found_arr = np.array(found)
    recall = float((found_arr == truth).mean()) if truth is not None else 1.0
    return latencies, recall, found_arr


def run(kind: str, n: int, dim: int, hnsw: bool) -> list[list[Any]]:
    base, queries = dataset(kind, n, dim)
    ids = np.arange(n, dtype=np.int64)
    rows = []
    started = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(base)
    build = time.perf_counter() - started
    lat, _, truth = timed_search(flat, queries, None)
    rows.append([kind, dim, n, "flat (baseline, exact)", build, *percentiles(lat), 1.0])
    started = time.perf_counter()
    ivf, _ = build_index(dim, ids, base, IndexPolicy(flat_max_elements=0))
    build = time.perf_counter() - started
    for nprobe in (16, 32, 64):
        ivf.nprobe = nprobe
        lat, recall, _ = timed_search(ivf, queries, truth)
        rows.append([kind, dim, n, f"IVF{ivf.nlist} nprobe={nprobe}", build, *percentiles(lat),
                     recall])
    policy = IndexPolicy()
    auto, auto_kind = (ivf, "ivf") if n * dim > policy.flat_max_elements else (flat, "flat")
    ivf.nprobe = policy.nprobe
    lat, recall, _ = timed_search(auto, queries, truth)
    rows.append([kind, dim, n, f"auto ({auto_kind}, streamproc default)", "-",
                 *percentiles(lat), recall])
    if hnsw:
        started = time.perf_counter()
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 64
        index.add(base)
        build = time.perf_counter() - started
        for ef in (64, 128):
            index.hnsw.efSearch = ef
            lat, recall, _ = timed_search(index, queries, truth)
            rows.append([kind, dim, n, f"HNSW32 ef={ef}", build, *percentiles(lat), recall])
    for row in rows[-8:]:
        print(" | ".join(str(round(v, 3) if isinstance(v, float) else v) for v in row),
              flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--data", choices=["face", "uniform", "both"], default="both")
    parser.add_argument("--no-hnsw-1m", action="store_true",
                        help="skip HNSW builds at 1M (minutes each on 2 cores)")
    parser.add_argument("--out", default="search", help="results file name")
    args = parser.parse_args()
    kinds = ["face", "uniform"] if args.data == "both" else [args.data]
    rows: list[list[Any]] = []
    for kind in kinds:
        for dim in args.dims:
            for n in args.sizes:
                rows += run(kind, n, dim, not (args.no_hnsw_1m and n >= 1_000_000))
    text = table("FAISS search, one query at a time (ms)",
                 ["data", "dim", "faces", "index", "build s", "p50", "p95", "p99",
                  "recall@1"], rows)
    save(args.out, {"queries": QUERIES, "table": text, "rows": rows})


if __name__ == "__main__":
    main()
