"""The monitoring kit in configs/monitoring against a real Prometheus (Debian's package).

promtool checks the scrape config and the rules and runs the rules' unit tests; then a real
Prometheus scrapes a real daemon with a processor on a live ffmpeg stream: every dashboard
query must return series, and StreamprocProcessorFailed must fire when a processor fails.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO, client_for, make_config
from streams import BOTH, MAN, WOMAN, Records, create, enrol, wait_status

from streamproc.daemon import Daemon
from streamproc.tools.broker import EmbeddedBroker, free_port, owns_port, wait_for_port
from streamproc.tools.livestream import LoopingStream

KIT = REPO / "configs" / "monitoring"
# Panels on metrics another part of the daemon may not export yet (stage supervision):
# their queries are checked only when the daemon's /metrics has the metric.
OPTIONAL_METRICS = ("streamproc_stage_up", "streamproc_stage_restarts_total")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: scripts/setup.sh installs Debian's prometheus package")
    return path


def test_promtool_checks_config_and_rules() -> None:
    promtool = _tool("promtool")
    for args in (["check", "config", "prometheus.yml"],
                 ["check", "rules", "streamproc-alerts.yml"],
                 ["test", "rules", "streamproc-alerts.test.yml"]):
        out = subprocess.run([promtool, *args], cwd=KIT, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "SUCCESS" in out.stdout + out.stderr


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target, Grafana's variables filled in."""
    dashboard = json.loads((KIT / "grafana-dashboard.json").read_text())
    fill = {"$__rate_interval": "20s", "$instance": ".*", "$processor": ".*"}
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in fill.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, expr
            out.append((panel["title"], expr))
    return out


class Prometheus:
    """A real prometheus process with the shipped rules, scraping one target every second."""

    def __init__(self, workdir: Path, target: str) -> None:
        config = yaml.safe_load((KIT / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(KIT / "streamproc-alerts.yml")]
        config["scrape_configs"][0]["static_configs"] = [{"targets": [target]}]
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = 0
        self._workdir = workdir
        self._proc: subprocess.Popen | None = None

    def start(self) -> None:
        # A free port can be taken before prometheus binds it: then it exits, and we retry
        # on another (checking that it is prometheus itself that listens).
        for _ in range(5):
            self.port = free_port()
            self._proc = subprocess.Popen(
                [_tool("prometheus"), f"--config.file={self._workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self._workdir / 'tsdb'}", "--log.level=warn",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if owns_port(self._proc, self.port, 20):
                assert wait_for_port("127.0.0.1", self.port, 20)
                return
            self.stop()
        raise AssertionError("prometheus did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]

    def firing(self, alertname: str) -> list[dict[str, str]]:
        return [a["labels"] for a in self.api("alerts")["alerts"]
                if a["labels"]["alertname"] == alertname and a["state"] == "firing"]

    def wait_for(self, check: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value or time.monotonic() > deadline:
                return value
            time.sleep(0.5)


@pytest.fixture
def scraped(tmp_path: Path, broker: EmbeddedBroker) -> Iterator[tuple[Daemon, Prometheus]]:
    """A daemon with a RUNNING processor on a live stream, scraped by Prometheus every 1 s."""
    stream = LoopingStream(BOTH)
    stream.start()
    daemon = Daemon(make_config(tmp_path / "data", **{"kafka.bootstrap": broker.bootstrap}))
    daemon.start()
    prometheus = Prometheus(tmp_path, f"127.0.0.1:{daemon.port}")
    try:
        rek = client_for(daemon.endpoint)
        rek.create_collection(CollectionId="people")
        assert enrol(rek, "people", WOMAN, "woman-W") and enrol(rek, "people", MAN, "man-M")
        create(rek, "live", stream.url, "monitoring-live", "people")
        rek.start_stream_processor(Name="live")
        assert wait_status(rek, "live", {"RUNNING"})["Status"] == "RUNNING"
        records = Records(broker.bootstrap, "monitoring-live")
        try:
            assert records.wait_for(lambda rs: len(rs) >= 5, 60)
        finally:
            records.close()
        prometheus.start()
        yield daemon, prometheus
    finally:
        prometheus.stop()
        daemon.stop()
        stream.stop()


def test_dashboard_queries_and_failed_alert(scraped: tuple[Daemon, Prometheus]) -> None:
    daemon, prometheus = scraped
    rek = client_for(daemon.endpoint)
    with pytest.raises(rek.exceptions.ResourceNotFoundException):
        rek.describe_collection(CollectionId="nobody")  # one API error for the error panel
    assert prometheus.wait_for(lambda: prometheus.query('up{job="streamproc"} == 1'), 20)
    # rates over 20 s need a few samples of every series, including the error counter
    assert prometheus.wait_for(lambda: prometheus.query(
        'count_over_time(streamproc_api_requests_total{code="ResourceNotFoundException"}[20s])'
        ' >= 5'), 30)
    assert prometheus.firing("StreamprocProcessorFailed") == []

    create(rek, "broken", "/nonexistent/clip.mp4", "monitoring-broken", "people")
    rek.start_stream_processor(Name="broken")
    assert wait_status(rek, "broken", {"FAILED"})["Status"] == "FAILED"
    fired = prometheus.wait_for(lambda: prometheus.firing("StreamprocProcessorFailed"), 30)
    assert [(a["processor"], a["status"], a["severity"]) for a in fired] == \
        [("broken", "FAILED", "critical")]

    exported = urllib.request.urlopen(daemon.endpoint + "/metrics", timeout=10).read().decode()
    empty = []
    for title, expr in dashboard_queries():
        optional = [m for m in OPTIONAL_METRICS if m in expr]
        if optional and not re.search(rf"^{optional[0]}\b", exported, re.MULTILINE):
            continue
        if not prometheus.query(expr):
            empty.append((title, expr))
    assert empty == []

    analysed = prometheus.query(
        'rate(streamproc_processor_frames_analysed_total{processor="live"}[20s])')
    assert float(analysed[0]["value"][1]) > 0.5  # frames keep flowing through the processor
    status = {(r["metric"]["processor"], r["metric"]["status"]) for r in prometheus.query(
        'streamproc_processor_status == 1')}
    assert status == {("live", "RUNNING"), ("broken", "FAILED")}
    p50 = prometheus.query('histogram_quantile(0.5, sum by (le) (rate('
                           'streamproc_processor_frame_to_publish_seconds_bucket[20s])))')
    assert 0 < float(p50[0]["value"][1]) < 10
