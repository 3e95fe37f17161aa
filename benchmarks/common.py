"""Shared helpers for the benchmarks: machine facts, tables, JSON results, sample data."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from streamproc.redaction import HIDDEN, redact

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("STREAMPROC_SHARED", REPO.parent / "shared")).resolve()
VIDEO = SHARED / "data" / "video" / "intel_sample_videos"
RESULTS = REPO / "benchmarks" / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import onnxruntime

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": sys.version.split()[0],
            "platform": platform.platform(), "onnxruntime": onnxruntime.__version__,
            "providers": onnxruntime.get_available_providers(),
            # UTC with its offset, ISO 8601: the older files' local time named no zone.
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    """A plain-text (Markdown) table, printed and returned."""
    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) and abs(v) < 1000 else (
            f"{v:,.0f}" if isinstance(v, float) else str(v))
    lines = [f"\n### {title}", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    text = "\n".join(lines)
    print(text, flush=True)
    return text


# Options whose values must never reach a results file (they are committed).
_SECRET_WORDS = ("secret", "password", "token", "key", "credential")
MASK = HIDDEN


def is_secret(option: str) -> bool:
    """Whether an option (``--secret-key``) or argparse dest (``secret_key``) names a secret."""
    return any(w in option.lower() for w in _SECRET_WORDS)


def command(argv: list[str] | None = None) -> str:
    """The command line that is running, as ``python benchmarks/<script> <args>``.

    Values of options that look like credentials (``--secret-key X``, ``--token=X``) are
    replaced by ``***``: results files are committed and published in the docs.
    """
    import shlex

    # `python -m benchmarks.x` runs: recorded as run (the path form would not import).
    module = (argv is None and sys.orig_argv[1:2] == ["-m"] and len(sys.orig_argv) > 2
              and Path(sys.argv[0]).stem == sys.orig_argv[2].rsplit(".", 1)[-1])
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]) if argv else Path("?")
    try:
        shown = script.resolve().relative_to(REPO).as_posix()
    except ValueError:
        shown = script.name
    head = ["python", "-m", sys.orig_argv[2]] if module else ["python", shown]
    words, hide_next = [], False
    for arg in argv[1:]:
        flag, eq, _ = arg.partition("=")
        secret = flag.startswith("-") and is_secret(flag)
        if hide_next and not arg.startswith("-"):  # a flag without a value hides nothing
            words.append(MASK)
        elif secret and eq:
            words.append(f"{flag}={MASK}")
        else:
            # A URL argument (--endpoint http://AK:SECRET@host) through the project's one
            # redaction rule: userinfo, query values, RTMP stream keys.
            words.append(redact(arg))
        hide_next = secret and not eq
    return shlex.join([*head, *words])


def masked_args(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` (a script's ``vars(args)``) with the values of secret-looking options masked.

    The same rule as ``command``: the dict is stored beside the command line, so a secret
    hidden there must not be readable here. None and flags carry no value to hide.
    """
    return {k: MASK if is_secret(k) and v is not None and not isinstance(v, bool) else v
            for k, v in args.items()}


def _git(*args: str) -> str | None:
    """``git ARGS`` in the checkout, its output stripped; None where git or the repo is missing."""
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit() -> str | None:
    """The checkout's short commit, ``+dirty`` when the tree differs from it; None without git.

    A figure measured on uncommitted code cannot be reproduced from the commit alone, so the
    file says so (any ``git status --porcelain`` line, untracked files included, counts).
    """
    commit = _git("rev-parse", "--short", "HEAD")
    if not commit:
        return None
    return commit + "+dirty" if _git("status", "--porcelain") else commit


def save(name: str, data: dict[str, Any]) -> Path:
    """Write results JSON under benchmarks/results/, with the machine, command and commit.

    A recorded ``args`` dict is masked like the command line (``masked_args``).
    """
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    recorded: dict[str, Any] = {"machine": machine(), "command": command()}
    commit = git_commit()
    if commit:
        recorded["commit"] = commit
    if isinstance(data.get("args"), dict):
        data = {**data, "args": masked_args(data["args"])}
    path.write_text(json.dumps({**recorded, **data}, indent=2, default=str))
    print(f"\nresults: {path}", flush=True)
    return path


def stop_and_delete(call: Any, names: list[str], timeout: float = 30.0) -> None:
    """Stop processors, wait for STOPPED (Stop answers at once), then delete them.

    ``call(operation, body)`` sends one control-API request and returns its answer.
    """
    for name in names:
        call("StopStreamProcessor", {"Name": name})
    for name in names:
        deadline = time.monotonic() + timeout
        while call("DescribeStreamProcessor", {"Name": name})["Status"] != "STOPPED" and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        call("DeleteStreamProcessor", {"Name": name})


def percentiles(values: list[float], points: tuple[int, ...] = (50, 95, 99)) -> list[float]:
    """Percentiles of ``values`` (NaN when empty)."""
    import numpy as np

    if not values:
        return [float("nan")] * len(points)
    return [float(np.percentile(values, p)) for p in points]


def sample_record(faces: int = 1) -> bytes:
    """A realistic face-search record (what a processor publishes)."""
    face = {"DetectedFace": {"BoundingBox": {"Width": 0.1, "Height": 0.2, "Left": 0.4,
                                             "Top": 0.3}, "Confidence": 87.5,
                             "Landmarks": [{"Type": t, "X": 0.45, "Y": 0.35} for t in (
                                 "eyeLeft", "eyeRight", "nose", "mouthLeft", "mouthRight")],
                             "Pose": {"Roll": 1.2, "Yaw": -3.4, "Pitch": 5.6},
                             "Quality": {"Brightness": 55.1, "Sharpness": 97.3}},
            "MatchedFaces": [{"Similarity": 93.2, "Face": {
                "FaceId": "11111111-2222-5333-8444-555555555555",
                "BoundingBox": {"Width": 0.3, "Height": 0.4, "Left": 0.2, "Top": 0.1},
                "ImageId": "66666666-7777-5888-9999-000000000000", "Confidence": 88.0,
                "ExternalImageId": "person-42", "IndexFacesModelVersion": "7.0"}}]}
    record = {"InputInformation": {"KinesisVideo": {
        "StreamArn": "tcp://127.0.0.1:5000", "FragmentNumber": "1795310091176",
        "ServerTimestamp": 1795310091.2, "ProducerTimestamp": 1795310091.176,
        "FrameOffsetInSeconds": 0.4}}, "StreamProcessorInformation": {"Status": "RUNNING"},
        "FaceSearchResponse": [face] * faces}
    return json.dumps(record, separators=(",", ":")).encode()


def rss_mb(pid: int) -> float:
    """A process's resident set size in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def serve_process(config: dict[str, Any], work: Path
                  ) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``streamproc serve`` as its own process (its RSS is its own); yields (process, port).

    ``config`` is written to ``work/serve.yaml``; give it ``server.port: 0``.
    """
    import yaml

    path = work / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([str(REPO / ".venv" / "bin" / "streamproc"), "serve",
                             "--config", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    port, seen = 0, []
    for line in proc.stdout:
        seen.append(line)
        if "streamproc ready on" in line:
            port = int(line.rsplit(":", 1)[1].strip().strip("/"))
            break
    if not port:
        proc.kill()
        raise SystemExit("the daemon did not start:\n" + "".join(seen[-20:]))
    # Keep reading its output so a chatty daemon never blocks on a full pipe.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    try:
        yield proc, port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
