"""How long do the console's lists take to load with 100 processors and 10,000 faces?

    .venv/bin/python benchmarks/bench_console.py [--processors 100] [--faces 10000] [--runs 5]

A real daemon (auth off, loopback; the test pack) gets ``--processors`` stream processors
(created, not started) and a collection of at least ``--faces`` faces, indexed honestly: real
IndexFaces calls on the group photo insightface_wheel/t1.jpg (6 faces a call), repeated, from
a few threads (the time it took is printed and recorded). Headless Chromium (Debian's, as the
tests drive it) then loads ``/console/#/processors`` and ``/console/#/collections?id=...``
from a blank page to ``document.body.dataset.ready`` naming the page, ``--runs`` times each;
the median is the figure. Two clocks: in the page (performance.now() when data-ready is
set, from the navigation's start; the figure) and by the driver (goto until Playwright
sees the selector). The driver's is an upper bound: Playwright checks again after about 0,
20, 50, 100 and 100 ms, then every 500 ms, so it rounds up by up to half a second; and it
also waits for work the page queued after data-ready (laying out 10,000 face cards in the
baseline takes seconds, which the page's own clock does not count against the baseline).

The baseline, measured in the same run on the same daemon: the pages as they were before
paging (benchmarks/console_baseline/: every processor listed then described one by one; every
face listed and drawn), put in place of the served modules by the browser's request routing.
Target: under 1 s with paging.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import SHARED, save, table  # noqa: E402
from streamproc.config import load_config  # noqa: E402
from streamproc.daemon import Daemon  # noqa: E402

PHOTO = SHARED / "data" / "images" / "insightface_wheel" / "t1.jpg"
BASELINE = Path(__file__).resolve().parent / "console_baseline"
CHROMIUM = "/usr/bin/chromium"
COLLECTION = "bench-console"
TARGET_S = 1.0
PAGE_WAIT_MS = 300_000  # the baseline with 10,000 faces may take long; the figure says how


def daemon(work: Path) -> Daemon:
    """A loopback daemon with auth off (the console needs no sign-in there)."""
    config = load_config(None, {
        "server.port": 0, "storage.data_dir": str(work / "data"), "log_level": "WARNING",
        "models.root": str(SHARED), "models.pack": "test_mfn",
        "processors.max_processors": 1000,
        "inputs.media_roots": ["/nonexistent"], "outputs.clusters": ["127.0.0.1:9"]})
    return Daemon(config)


def client(d: Daemon) -> Any:
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client("rekognition", endpoint_url=d.endpoint, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench",
                        config=BotoConfig(retries={"max_attempts": 2},
                                          max_pool_connections=16))


def create_processors(rek: Any, count: int) -> float:
    """``count`` stream processors (not started); the seconds it took."""
    started = time.perf_counter()
    for i in range(count):
        name = f"bench-cam-{i:03d}"
        rek.create_stream_processor(
            Name=name, RoleArn="arn:aws:iam::000000000000:role/bench",
            Input={"KinesisVideoStream": {"Arn": f"/nonexistent/{name}.mp4"}},
            Output={"KinesisDataStream": {"Arn": f"kafka://127.0.0.1:9/{name}"}},
            Settings={"FaceSearch": {"CollectionId": COLLECTION}})
    return time.perf_counter() - started


def index_faces(rek: Any, target: int, workers: int) -> tuple[int, int, float]:
    """IndexFaces on the group photo until the collection holds ``target`` faces.

    Returns (faces, calls, seconds).
    """
    photo = PHOTO.read_bytes()
    per_call = len(rek.index_faces(CollectionId=COLLECTION, Image={"Bytes": photo},
                                   MaxFaces=100, QualityFilter="NONE")["FaceRecords"])
    if per_call == 0:
        raise SystemExit(f"no face indexed from {PHOTO}")
    calls = -(-target // per_call) - 1
    started = time.perf_counter()

    def one(i: int) -> int:
        out = rek.index_faces(CollectionId=COLLECTION, Image={"Bytes": photo},
                              ExternalImageId=f"group-{i:05d}", MaxFaces=100,
                              QualityFilter="NONE")
        return len(out["FaceRecords"])

    with ThreadPoolExecutor(workers) as pool:
        faces = per_call + sum(pool.map(one, range(calls)))
    return faces, calls + 1, time.perf_counter() - started


def serving(body: str) -> Any:
    """A route handler that answers with ``body`` as JavaScript (a baseline module)."""
    def handler(route: Any) -> None:
        route.fulfill(status=200, content_type="text/javascript", body=body)
    return handler


# Notes, in the page, when body[data-ready] first names each page: performance.now() counts
# from the navigation's start, so the figure is the page's own (no driver round trips).
READY_CLOCK = """
window.__readyAt = {};
new MutationObserver(() => {
  const ready = document.body && document.body.dataset.ready;
  if (ready && !(ready in window.__readyAt)) window.__readyAt[ready] = performance.now();
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-ready"] });
"""


def time_page(browser: Any, url: str, ready: str, runs: int,
              baseline: dict[str, Path] | None) -> tuple[list[float], list[float]]:
    """Seconds from navigation to ``body[data-ready=ready]``, ``runs`` times (after a warm-up).

    Returns (in the page: from navigation start, by the driver: goto to the selector seen).
    """
    context = browser.new_context()
    context.add_init_script(READY_CLOCK)
    try:
        for module, path in (baseline or {}).items():
            context.route(f"**/console/static/{module}", serving(path.read_text()))
        page = context.new_page()
        in_page, driver = [], []
        for run in range(runs + 1):  # run 0 warms the caches and starts the session
            page.goto("about:blank")
            started = time.perf_counter()
            page.goto(url, wait_until="commit")
            page.wait_for_selector(f"body[data-ready={ready}]", timeout=PAGE_WAIT_MS)
            seen = time.perf_counter() - started
            if run:
                driver.append(seen)
                in_page.append(page.evaluate(f"window.__readyAt[{ready!r}]") / 1000)
        return in_page, driver
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processors", type=int, default=100)
    parser.add_argument("--faces", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4, help="IndexFaces threads")
    parser.add_argument("--out", default="bench_console")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as work:
        d = daemon(Path(work))
        d.start()
        try:
            rek = client(d)
            rek.create_collection(CollectionId=COLLECTION)
            created_s = create_processors(rek, args.processors)
            faces, calls, indexed_s = index_faces(rek, args.faces, args.workers)
            print(f"created {args.processors} processors in {created_s:.1f} s; indexed "
                  f"{faces} faces in {calls} IndexFaces calls in {indexed_s:.0f} s "
                  f"({faces / indexed_s:.0f} faces/s, {args.workers} threads)", flush=True)
            base = f"{d.endpoint}/console/"
            pages = {"processors": (f"{base}#/processors", "processors", "processors.js"),
                     "collection": (f"{base}#/collections?id={COLLECTION}", "collections",
                                    "collections.js")}
            results: dict[str, dict[str, Any]] = {}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
                try:
                    for name, (url, ready, module) in pages.items():
                        for variant, swap in (("paged", None),
                                              ("baseline", {module: BASELINE / module})):
                            times, driver = time_page(browser, url, ready, args.runs, swap)
                            results[f"{name}/{variant}"] = {
                                "median_s": statistics.median(times), "runs_s": times,
                                "driver_median_s": statistics.median(driver),
                                "driver_runs_s": driver}
                            print(f"{name} {variant}: median {statistics.median(times):.3f} s "
                                  f"{[round(t, 3) for t in times]} (driver: median "
                                  f"{statistics.median(driver):.3f} s)", flush=True)
                finally:
                    browser.close()
        finally:
            d.stop()

    rows = []
    for name in ("processors", "collection"):
        paged, old = results[f"{name}/paged"], results[f"{name}/baseline"]
        rows.append([name, old["median_s"], paged["median_s"],
                     old["median_s"] / paged["median_s"],
                     "yes" if paged["median_s"] < TARGET_S else "NO",
                     old["driver_median_s"], paged["driver_median_s"]])
    text = table(f"Console page load, navigation to ready, median of {args.runs} "
                 f"({args.processors} processors, {faces} faces)",
                 ["page", "baseline (all) s", "paged s", "speed-up", f"under {TARGET_S:g} s",
                  "baseline, driver s", "paged, driver s"], rows)
    save(args.out, {"args": vars(args), "faces": faces, "index_calls": calls,
                    "index_s": indexed_s, "create_processors_s": created_s,
                    "results": results, "table": text})


if __name__ == "__main__":
    main()
