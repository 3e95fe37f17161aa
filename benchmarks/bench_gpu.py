"""GPU benchmark: stage throughput by batch and precision, then N 1080p30 camera streams.

    # a GPU machine whose PyTorch has CUDA (onnxruntime there may be the CPU build):
    python benchmarks/bench_gpu.py --backend torch --device cuda
    # a GPU machine with onnxruntime-gpu (fp16 there needs --providers tensorrt):
    python benchmarks/bench_gpu.py --backend onnxruntime --device cuda
    # smoke test on any machine (tiny settings, CPU):
    python benchmarks/bench_gpu.py --device cpu --quick

1. Stages, on 1080p frames (the shared clips upscaled): detection at batch 1/8/32/64 as
   the data plane runs it (letterbox + inference + box decoding + pose/quality), and the
   inference call alone; embedding of aligned crops at the same batches; fp32 and fp16.
   Baseline in the same run: batch 1 (one image per call, what per-frame detection does).
2. End to end (benchmarks/gpu_streams.py): N synthetic 1080p30 cameras decoded live by
   PyAV, 5 analysed frames/s each, one analyzer batching across cameras, embeddings of every
   face, search, a record per frame; latency from decode to record. The largest N whose p95
   stays under --max-p95-ms with every offered frame analysed, the stage that limits it and
   the CPU cores used; the same sweep with per-frame detection is the baseline.

With ``--device cuda`` the engine is built with ``models.require_gpu``: the benchmark
refuses to run rather than measure a silent CPU fallback. Results: benchmarks/results/
gpu.json (and ``--out-dir``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, VIDEO, save, table  # noqa: E402
from benchmarks.gpu_streams import encode_stream, hd_frames, run_streams  # noqa: E402
from streamproc.config import ExecutionConfig, load_config  # noqa: E402
from streamproc.faces.engine import FaceEngine  # noqa: E402

warnings.filterwarnings("ignore", message="`estimate` is deprecated")
CLIPS = ["classroom.mp4", "face-demographics-walking.mp4"]


def make_engine(args: argparse.Namespace, fp16: bool, batching: str) -> FaceEngine:
    """The engine as the daemon builds it, on the chosen backend and device."""
    providers = args.providers or ("cuda" if args.device == "cuda" else "cpu")
    models = load_config(None, {
        "models.root": str(SHARED), "models.pack": args.pack, "models.backend": args.backend,
        "models.providers": providers, "models.detect_batching": batching,
        "models.require_gpu": args.device == "cuda"}).models
    top = max(args.batches)
    pack = models.packs[args.pack].model_copy(update={
        "execution": ExecutionConfig(fp16=fp16), "det_batch": top, "rec_batch": top})
    engine = FaceEngine(models.model_copy(update={"packs": {**models.packs, args.pack: pack}}))
    engine.load()
    return engine


def clip_frames(limit: int) -> list[np.ndarray]:
    import av

    frames: list[np.ndarray] = []
    for clip in CLIPS:
        with av.open(str(VIDEO / clip)) as container:
            frames += [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    return frames[:limit]


def rate(fn: Any, items: int, min_items: int) -> float:
    """Items per second of ``fn`` (which handles ``items``), after two warm-up calls."""
    fn()
    fn()
    calls = max(3, -(-min_items // items))
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return calls * items / (time.perf_counter() - started)


def stage_rows(engine: FaceEngine, precision: str, frames: list[np.ndarray],
               crops: list[np.ndarray], args: argparse.Namespace) -> list[list[Any]]:
    rows: list[list[Any]] = []
    detector = engine.detector
    size = detector.input_size_for(1920, 1080)
    base: dict[str, float] = {}
    for batch in args.batches:
        chunk = [frames[i % len(frames)] for i in range(batch)]
        blob, _ = detector._prepare_batch(chunk, size)
        faces = np.stack([crops[i % len(crops)] for i in range(batch)])
        figures = {
            "detect stage": rate(lambda c=chunk: engine.detect_many(c), batch, args.min_items),
            "detect inference": rate(lambda b=blob: detector.runner.run(b), batch,
                                     args.min_items),
            "embed inference": rate(lambda f=faces: engine.embedder._infer(f), batch,
                                    args.min_items * 4),
        }
        for stage, value in figures.items():
            base.setdefault(stage, value)
            unit = "faces/s" if stage.startswith("embed") else "frames/s"
            rows.append([stage, precision, batch, f"{value:,.0f} {unit}",
                         f"{1000 / value:.2f} ms", f"{value / base[stage]:.2f}x"])
    return rows


def sweep(engine: FaceEngine, mode: str, source: Any, gallery: np.ndarray,
          args: argparse.Namespace, deadline: float) -> tuple[list[list[Any]], dict[str, Any]]:
    rows: list[list[Any]] = []
    best: dict[str, Any] = {"streams": 0}
    for streams in args.streams:
        if time.monotonic() + args.seconds + 8 > deadline:
            rows.append([mode, streams, "not run: time budget"] + [""] * 9)
            break
        r = run_streams(engine, source, streams, args.seconds, args.batch_frames, gallery)
        ok = r["p95_ms"] < args.max_p95_ms and r["analysed_fps"] >= 0.98 * 5 * streams
        busy = ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["analyzer_busy"].items())
        rows.append([mode, streams, f"{r['offered_fps']:.0f}", f"{r['analysed_fps']:.1f}",
                     f"{r['dropped_pct']:.1f}", f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}",
                     f"{r['p99_ms']:.0f}", f"{r['cpu_cores']:.1f}", f"{r['decode_cores']:.1f}",
                     busy, "yes" if ok else f"no: {r['limit']}"])
        if not ok:
            best.setdefault("failed_at", r)
            break
        best = {**r, "streams": streams}
    return rows, best


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--providers", help="onnxruntime provider choice (e.g. tensorrt)")
    parser.add_argument("--pack", default="test_mfn")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "fp16"],
                        default=["fp32", "fp16"])
    parser.add_argument("--streams", type=int, nargs="+",
                        default=[16, 32, 48, 64, 80, 96, 128, 160])
    parser.add_argument("--seconds", type=float, default=12.0, help="measured, per N")
    parser.add_argument("--batch-frames", type=int, default=32, help="analyzer batch")
    parser.add_argument("--max-p95-ms", type=float, default=300.0)
    parser.add_argument("--min-items", type=int, default=256, help="frames timed per row")
    parser.add_argument("--budget-s", type=float, default=520.0, help="stop the sweeps then")
    parser.add_argument("--out-dir", type=Path, help="also copy the results JSON here")
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test)")
    args = parser.parse_args()
    if args.quick:
        args.batches, args.precisions, args.streams = [1, 4], ["fp32"], [1, 2]
        args.seconds, args.min_items, args.batch_frames = 3.0, 8, 4
    return args


def main() -> None:
    args = parse()
    deadline = time.monotonic() + args.budget_s
    small = clip_frames(40 if args.quick else 150)
    frames = hd_frames(small)
    rows: list[list[Any]] = []
    reports: dict[str, Any] = {}
    for precision in args.precisions:
        engine = make_engine(args, precision == "fp16", "batched")
        reports[precision] = engine.provider_report()
        found = engine.detect_many(frames[:16])
        crops = [engine.embedder.align(image, f.landmarks)
                 for image, faces in zip(frames[:16], found, strict=True) for f in faces] or [
            np.zeros((112, 112, 3), np.uint8)]
        rows += stage_rows(engine, precision, frames, crops, args)
    device = reports[args.precisions[0]]["models"][0]["provider"]
    stages = table(f"Stages on 1080p frames, pack {args.pack}, {device} "
                   f"(baseline: batch {args.batches[0]})",
                   ["stage", "precision", "batch", "throughput", "per item", "x baseline"], rows)
    e2e_precision = "fp16" if "fp16" in args.precisions and args.device == "cuda" else "fp32"
    work = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    try:
        source = encode_stream(frames, work / "camera.mp4") or frames
        e2e_rows, best = [], {}
        for mode in ("batched", "per_frame"):
            engine = make_engine(args, e2e_precision == "fp16", mode)
            gallery = gallery_for(engine, frames[:8])
            mode_rows, best[mode] = sweep(engine, mode, source, gallery, args, deadline)
            e2e_rows += mode_rows
    finally:
        shutil.rmtree(work, ignore_errors=True)
    decoded = "PyAV-decoded H.264" if not isinstance(source, list) else "in-memory (no decode)"
    e2e = table(f"N 1080p30 cameras ({decoded}), 5 analysed fps each, {e2e_precision}, "
                f"analyzer batch {args.batch_frames}, {device}",
                ["detection", "N", "offered fps", "analysed fps", "dropped %", "p50 ms",
                 "p95 ms", "p99 ms", "CPU cores", "decode cores", "analyzer busy",
                 f"p95 < {args.max_p95_ms:.0f} ms, all analysed"], e2e_rows)
    summary = summarise(best)
    print(summary, flush=True)
    path = save("gpu", {"args": {k: str(v) for k, v in vars(args).items()},
                        "providers": reports, "stages": stages, "e2e": e2e, "summary": summary,
                        "stage_rows": rows, "e2e_rows": e2e_rows, "best": best,
                        "gpu": gpu_name()})
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, args.out_dir / path.name)


def gallery_for(engine: FaceEngine, frames: list[np.ndarray], size: int = 1000) -> np.ndarray:
    """Real embeddings of the clips' faces, padded with random unit vectors to ``size``."""
    found = engine.detect_many(frames)
    engine.embed_many(list(zip(frames, found, strict=True)))
    real = [f.embedding for faces in found for f in faces if f.embedding is not None]
    rng = np.random.default_rng(0)
    pad = rng.standard_normal((size - len(real), engine.dim)).astype(np.float32)
    pad /= np.linalg.norm(pad, axis=1, keepdims=True)
    return np.vstack([*real, pad]) if real else pad


def summarise(best: dict[str, dict[str, Any]]) -> str:
    lines = []
    for mode, r in best.items():
        limit = r.get("failed_at", {}).get("limit", "not reached in the sweep")
        cores = f", {r['cpu_cores']:.1f} CPU cores" if r.get("streams") else ""
        lines.append(f"largest N ({mode} detection): {r.get('streams', 0)}{cores}; "
                     f"limited by: {limit}")
    return "\n" + "\n".join(lines)


def gpu_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    except ImportError:
        return "unknown (no torch)"


if __name__ == "__main__":
    main()
