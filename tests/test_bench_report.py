"""The performance page's tables come from the results files (benchmarks/report.py)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from benchmarks import common, report

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGE = DOCS / "performance.md"
# The docs hook's marker, as docs/hooks.py reads it: a name, then optional table names.
MARKER = re.compile(r"<!--\s*gen:results((?:\s+[^\s>-][^\s>]*)+)\s*-->")
MACHINE = {"cpu": "Test CPU 9000", "cores": 3, "onnxruntime": "9.9.9",
           "providers": ["CPUExecutionProvider"], "date": "2030-01-02 03:04:05"}


def _markers(page: Path = PAGE) -> list[list[str]]:
    return [m[1].split() for m in MARKER.finditer(page.read_text())]


def _every_marker() -> list[tuple[str, list[str]]]:
    """(page, marker words) for every ``gen:results`` marker of every docs page."""
    return [(page.name, words) for page in sorted(DOCS.glob("*.md")) for words in _markers(page)]


def _write(folder: Path, name: str, data: dict[str, Any]) -> None:
    (folder / f"{name}.json").write_text(json.dumps(data))


def _publish(rate: float, **extra: Any) -> dict[str, Any]:
    return {"machine": MACHINE, **extra, "rows": [
        ["baseline: KafkaProducer defaults, send() per record", "burst", 5000.0, "-"],
        ["streamproc publisher", "burst", rate, "-"]]}


def test_the_page_has_generated_tables() -> None:
    names = {words[0] for words in _markers()}
    # The main benchmark families each appear; a page that lost its markers fails here.
    assert {"e2e", "bench_cluster", "stages", "publish", "search-face", "jobs", "ingest",
            "moderation"} <= names


def test_the_other_pages_have_their_generated_tables() -> None:
    pages: dict[str, set[str]] = {}
    for page, words in _every_marker():
        pages.setdefault(page, set()).add(words[0])
    # The tables once pasted into these pages; losing a marker fails here.
    assert {"quality"} <= pages["models.md"] and {"users"} <= pages["users.md"]
    assert {"soak"} <= pages["security-attacks.md"]
    assert {"moderation_accuracy_open_nsfw",
            "moderation_accuracy_open_nsfw_nudenet"} <= pages["moderation.md"]
    # Issue 25: the adapter's and the base model's F1, and the adapters' cost.
    assert {"adapter_accuracy", "bench_adapters"} <= pages["custom-labels.md"]
    assert {"adapter_accuracy", "bench_adapters"} <= pages["performance.md"]


def test_every_results_file_is_on_a_page() -> None:
    shown = {words[0] for _, words in _every_marker()}
    unshown = sorted(p.stem for p in report.RESULTS.glob("*.json") if p.stem not in shown)
    assert not unshown, f"results files on no docs page: {unshown}"


@pytest.mark.parametrize(("page", "words"), _every_marker(),
                         ids=[f"{page}:{' '.join(w)}" for page, w in _every_marker()])
def test_every_marker_names_a_results_file_and_renders(page: str, words: list[str]) -> None:
    name, *parts = words
    assert (report.RESULTS / f"{name}.json").is_file()
    text = report.render(name, *parts)
    tables = [line for line in text.splitlines() if line.startswith("|---")]
    assert len(tables) == (len(parts) or len(report.tables_of(name)))
    machine = json.loads((report.RESULTS / f"{name}.json").read_text())["machine"]
    provenance = text.strip().splitlines()[-1]
    assert provenance.startswith("Command: ")
    assert machine["date"] in provenance and machine["onnxruntime"] in provenance


def test_every_results_file_has_a_renderer() -> None:
    for path in sorted(report.RESULTS.glob("*.json")):
        assert "| " in report.render(path.stem), path.name


def test_numbers_come_from_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "publish", _publish(12345.0))
    first = report.render("publish", results_dir=tmp_path)
    assert "| streamproc publisher | burst | 12,345 | - |" in first
    _write(tmp_path, "publish", _publish(67890.0))
    second = report.render("publish", results_dir=tmp_path)
    assert "67,890" in second and "12,345" not in second
    assert "Test CPU 9000, 3 cores, onnxruntime 9.9.9 (CPUExecutionProvider)" in second
    assert "2030-01-02 03:04:05" in second


def test_adapter_f1_and_counts_come_from_the_file(tmp_path: Path) -> None:
    data = json.loads((report.RESULTS / "adapter_accuracy.json").read_text())
    split = data["adapter_time_split"]
    split["base_f1"], split["adapter_f1"] = 0.25, 0.875
    split["adapter_counts"] = {"TruePositive": 7, "TrueNegative": 200, "FalsePositive": 1,
                               "FalseNegative": 1}
    data["custom_labels"]["accuracy"] = 0.5
    _write(tmp_path, "adapter_accuracy", data)
    text = report.render("adapter_accuracy", "adapter", "custom_labels",
                         results_dir=tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| time blocks"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3:5] == ["0.25", "0.88"]
    assert cells[6] == "TP 7, FP 1, FN 1, TN 200"
    assert "| 50.0% |" in text and "98.9%" not in text
    assert "Violence at ConfidenceThreshold 50" in text


def test_adapter_cost_share_is_the_files(tmp_path: Path) -> None:
    data = json.loads((report.RESULTS / "bench_adapters.json").read_text())
    data["added_share"] = {"p50_ms": 0.123, "p95_ms": -0.01}
    data["within_target"] = False
    data["training_cost"][1]["seconds"] = 99.0
    _write(tmp_path, "bench_adapters", data)
    text = report.render("bench_adapters", results_dir=tmp_path)
    assert "| +12.3% | -1.0% |" in text and "| False |" in text
    assert "| 10,000 | the real ones replicated, 5% noise | 99 |" in text
    with pytest.raises(report.ReportError, match="shape"):
        _write(tmp_path, "bench_adapters", {"machine": MACHINE, "per_image": {}})
        report.render("bench_adapters", results_dir=tmp_path)


def test_e2e_rows_are_computed_from_the_runs(tmp_path: Path) -> None:
    data = json.loads((report.RESULTS / "e2e.json").read_text())
    data["n=4"]["streamproc"]["fps"] = 100.0
    data["n=4"]["streamproc"]["cpu_cores"] = 1.5
    data["n=4"]["cpu_allows_fps"] = 125.0
    _write(tmp_path, "e2e", data)
    text = report.render("e2e", "streams", results_dir=tmp_path)
    row = next(line for line in text.splitlines() if line.startswith("| 4 | streamproc"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # analysed fps, CPU ms/frame (1.5 cores * 1000 / 100 fps) and share of what CPU allows
    assert cells[3] == "100" and cells[9] == "15" and cells[11] == "80%"
    assert "| varied |" not in text  # only the part asked for


def test_recorded_command_and_commit_are_shown(tmp_path: Path) -> None:
    _write(tmp_path, "publish", _publish(1.0, command="python benchmarks/bench_publish.py "
                                         "--records 7", commit="abc1234"))
    line = report.render("publish", results_dir=tmp_path).strip().splitlines()[-1]
    assert "`python benchmarks/bench_publish.py --records 7` at commit `abc1234`" in line
    assert "not recorded in the file" not in line and "rebuilt" not in line


def test_documented_command_is_labelled_as_such(tmp_path: Path) -> None:
    _write(tmp_path, "publish", _publish(1.0))
    line = report.render("publish", results_dir=tmp_path).strip().splitlines()[-1]
    assert "`python benchmarks/bench_publish.py` (command as documented; not recorded in " \
           "the file)" in line
    _write(tmp_path, "publish-other", _publish(1.0))
    line = report.render("publish-other", results_dir=tmp_path).strip().splitlines()[-1]
    assert "not recorded in the file, nor documented" in line


def test_later_cluster_run_shows_the_earlier_in_brackets(tmp_path: Path) -> None:
    for name in ("bench_cluster", "bench_cluster_handover"):
        shutil.copy(report.RESULTS / f"{name}.json", tmp_path)
    earlier = json.loads((tmp_path / "bench_cluster.json").read_text())
    earlier["rebalance"][0][1] = 42.0
    _write(tmp_path, "bench_cluster", earlier)
    text = report.render("bench_cluster_handover", "rebalance", results_dir=tmp_path)
    assert re.search(r"\| 10 \| [\d.]+ s \(42\.0\) \|", text)


@pytest.mark.parametrize("name", ["no-such-benchmark", "../e2e", ""])
def test_unknown_file_raises(name: str) -> None:
    with pytest.raises(report.ReportError):
        report.render(name)


def test_unknown_family_and_part_raise(tmp_path: Path) -> None:
    _write(tmp_path, "mystery", {"machine": MACHINE})
    with pytest.raises(report.ReportError, match="no renderer"):
        report.render("mystery", results_dir=tmp_path)
    with pytest.raises(report.ReportError, match="no table"):
        report.render("e2e", "nonsense")


def test_misshapen_file_raises(tmp_path: Path) -> None:
    _write(tmp_path, "publish", {"machine": MACHINE})
    with pytest.raises(report.ReportError, match="shape"):
        report.render("publish", results_dir=tmp_path)


def test_save_records_command_and_commit(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "machine", lambda: MACHINE)
    monkeypatch.setattr(common, "git_commit", lambda: "def5678")
    monkeypatch.setattr("sys.argv", [str(ROOT / "benchmarks" / "bench_publish.py"),
                                     "--records", "9"])
    data = json.loads(common.save("publish", {"rows": []}).read_text())
    assert data["command"] == "python benchmarks/bench_publish.py --records 9"
    assert data["commit"] == "def5678" and data["machine"] == MACHINE
    monkeypatch.setattr(common, "git_commit", lambda: None)
    assert "commit" not in json.loads(common.save("publish", {}).read_text())


def test_command_never_records_credentials() -> None:
    argv = [str(ROOT / "benchmarks" / "bench_soak.py"), "--secret-key", "s3cr3t",
            "--token=t0k3n", "--out", "soak"]
    text = common.command(argv)
    assert "s3cr3t" not in text and "t0k3n" not in text
    assert text.startswith("python benchmarks/bench_soak.py ") and "--out soak" in text


def _results_files() -> list[str]:
    return sorted(p.stem for p in report.RESULTS.glob("*.json"))


@pytest.mark.parametrize("name", _results_files())
def test_the_shown_command_runs_the_recorded_arguments(name: str) -> None:
    data = report.load(name)
    shown = report.shown_command(name, data)
    if shown is None:
        pytest.skip(f"{name}: no command recorded, rebuilt or documented")
    command, how = shown
    parsed = report.parse_command(command)  # the script's own options: raises if refused
    if isinstance(data.get("args"), dict):
        assert how in {"recorded", "rebuilt"}
        assert {k: parsed.get(k) for k in data["args"]} == data["args"]
    assert report.render(name).strip().splitlines()[-1].count(command) == 1


@pytest.mark.parametrize("name", sorted(report.DOCUMENTED_COMMANDS))
def test_documented_commands_parse_with_their_scripts_options(name: str) -> None:
    command = report.DOCUMENTED_COMMANDS[name][0]
    assert report.script_of(command) == report.script_for(name)
    report.parse_command(command)


def test_a_command_the_script_refuses_raises() -> None:
    with pytest.raises(report.ReportError, match="unrecognized"):
        report.parse_command("python benchmarks/bench_e2e.py --no-such-option 3")
    with pytest.raises(report.ReportError, match="invalid float"):
        report.parse_command("python benchmarks/bench_e2e.py --seconds soon")


def _e2e_with(args: dict[str, Any]) -> dict[str, Any]:
    data = json.loads((report.RESULTS / "e2e-n1.json").read_text())
    data["args"] = args
    return data


def test_the_command_is_rebuilt_from_the_non_default_arguments(tmp_path: Path) -> None:
    args = {"streams": [1, 3], "seconds": 15.0, "speed": 2.0, "clip": "classroom.mp4",
            "collection_size": 1000, "out": "e2e-x", "scaling": True}
    _write(tmp_path, "e2e-x", _e2e_with(args))
    line = report.render("e2e-x", "streams", results_dir=tmp_path).strip().splitlines()[-1]
    cmd = "python benchmarks/bench_e2e.py --streams 1 3 --seconds 15 --out e2e-x --scaling"
    assert f"`{cmd}` (command rebuilt from the arguments recorded in the file)" in line
    parsed = report.parse_command(cmd)
    assert {k: parsed[k] for k in args} == args
    assert "renamed" not in line


def test_a_renamed_file_names_what_it_was_written_as(tmp_path: Path) -> None:
    args = {"streams": [4], "seconds": 20.0, "out": "e2e-quiet"}
    _write(tmp_path, "e2e-abc", _e2e_with(args))
    line = report.render("e2e-abc", "streams", results_dir=tmp_path).strip().splitlines()[-1]
    assert "`python benchmarks/bench_e2e.py --streams 4 --out e2e-quiet` (command rebuilt " \
           "from the arguments recorded in the file; written as e2e-quiet.json, renamed)" in line


def test_arguments_the_script_no_longer_has_fall_back(tmp_path: Path) -> None:
    _write(tmp_path, "e2e-n1", _e2e_with({"streams": [1], "gone_option": 3}))
    line = report.render("e2e-n1", "streams", results_dir=tmp_path).strip().splitlines()[-1]
    assert "not recorded in the file, nor documented" in line


def test_dates_with_and_without_a_zone(tmp_path: Path) -> None:
    _write(tmp_path, "publish", _publish(1.0))
    assert "date: 2030-01-02 03:04:05 (time zone not recorded);" in report.render(
        "publish", results_dir=tmp_path)
    _write(tmp_path, "publish", {**_publish(1.0), "machine": {
        **MACHINE, "date": "2030-01-02T03:04:05+00:00"}})
    assert "date: 2030-01-02T03:04:05+00:00;" in report.render("publish", results_dir=tmp_path)


def test_a_dirty_tree_is_said(tmp_path: Path) -> None:
    _write(tmp_path, "publish", _publish(1.0, command="python benchmarks/bench_publish.py",
                                         commit="abc1234+dirty"))
    line = report.render("publish", results_dir=tmp_path).strip().splitlines()[-1]
    assert "at commit `abc1234` plus uncommitted changes" in line


def test_users_bold_only_where_users_beat_faces(tmp_path: Path) -> None:
    data = json.loads((report.RESULTS / "users.json").read_text())
    res = data["runs"][0]["results"]
    res["SearchUsersByImage@fmr<=0.0"]["tmr"] = res["SearchFacesByImage@fmr<=0.0"]["tmr"]
    res["SearchUsersByImage@80"]["tmr"] = res["SearchFacesByImage@80"]["tmr"] + 0.1
    _write(tmp_path, "users", data)
    rows = [line for line in report.render("users", results_dir=tmp_path).splitlines()
            if line.startswith(f"| `{data['runs'][0]['pack']}` | SearchUsersByImage")]
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    assert not cells[2].startswith("**") and cells[5].startswith("**")


def test_git_commit_marks_a_dirty_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"rev-parse": "abc1234", "status": " M streamproc/x.py"}
    monkeypatch.setattr(common, "_git", lambda *args: answers[args[0]])
    assert common.git_commit() == "abc1234+dirty"
    answers["status"] = ""
    assert common.git_commit() == "abc1234"
    answers["rev-parse"] = None  # type: ignore[assignment]
    assert common.git_commit() is None


def test_save_masks_secret_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "RESULTS", tmp_path)
    monkeypatch.setattr(common, "machine", lambda: MACHINE)
    monkeypatch.setattr(common, "git_commit", lambda: None)
    monkeypatch.setattr("sys.argv", [str(ROOT / "benchmarks" / "bench_soak.py"),
                                     "--secret-key", "s3cr3t", "--fuzz", "5"])
    args = {"secret_key": "s3cr3t", "api_token": "t0k3n", "fuzz": 5, "password": None}
    text = common.save("soak", {"args": args}).read_text()
    assert "s3cr3t" not in text and "t0k3n" not in text
    saved = json.loads(text)["args"]
    assert saved == {"secret_key": "***", "api_token": "***", "fuzz": 5, "password": None}
    assert args["secret_key"] == "s3cr3t"  # the caller's dict is left alone


def test_machine_dates_are_utc_iso_8601(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    # platform.platform() runs uname, a process the unit tier refuses.
    monkeypatch.setattr(common.platform, "platform", lambda: "Test-OS")
    date = datetime.fromisoformat(common.machine()["date"])
    assert date.utcoffset() == timedelta(0)
    assert abs((datetime.now(timezone.utc) - date).total_seconds()) < 60


def test_a_valueless_secret_looking_flag_hides_nothing_and_url_passwords_are_masked() -> None:
    from benchmarks.common import command

    shown = command(["benchmarks/bench_x.py", "--no-key-check", "--out", "foo",
                     "--endpoint", "http://AKID:SECRET@host:9000/b", "--token", "abc"])
    assert "--no-key-check --out foo" in shown
    assert "SECRET" not in shown and "AKID" not in shown and "abc" not in shown
    assert "http://***:***@host:9000/b" in shown
