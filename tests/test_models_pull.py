"""``streamproc models pull``: a local HTTP server serves a pack archive built from the test pack.

Progress, pinned checksums, interrupted and resumed downloads, a full disk, mirrors and local
archives, broken archives, and that the model root never holds a half-installed pack.
"""

from __future__ import annotations

import fcntl
import io
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from packserver import PACK_FILES, TEST_PACK, PackServer, build_archive

from streamproc.config import ModelsConfig, load_config
from streamproc.storage.digest import sha256_of
from streamproc.tools import packs
from streamproc.tools.models import PullError, pull
from streamproc.tools.packs import PackSource


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PackServer]:
    s = PackServer()
    s.files["/test_mfn.zip"] = build_archive(tmp_path / "served.zip")
    s.start()
    yield s
    s.stop()


def models_at(root: Path, **extra: object) -> ModelsConfig:
    overrides = {"models.root": str(root), "models.pack": "test_mfn"}
    overrides.update({f"models.{k}": v for k, v in extra.items()})
    return load_config(None, overrides).models


def assert_installed(root: Path) -> None:
    """The pack is complete and byte-identical; no staging, backup or download is left."""
    for name in PACK_FILES:
        assert (root / "models" / "test_mfn" / name).read_bytes() == \
            (TEST_PACK / name).read_bytes()
    assert sorted(p.name for p in (root / "models").iterdir()) == ["test_mfn"]
    assert not list((root / "downloads").glob("*")) if (root / "downloads").exists() else True


def assert_nothing_installed(root: Path) -> None:
    models = root / "models"
    assert not models.exists() or list(models.iterdir()) == [], list(models.iterdir())


def test_pull_from_mirror_shows_licence_and_progress(tmp_path: Path, server: PackServer) -> None:
    out = io.StringIO()
    folder = pull(models_at(tmp_path, mirror=server.url), "test_mfn", out=out)
    assert folder == tmp_path / "models" / "test_mfn"
    assert_installed(tmp_path)
    text = out.getvalue()
    assert "licence: test pack: SCRFD detector non-commercial" in text
    assert "100%" in text and "6.52M/6.52M" in text  # tqdm's bar, in bytes
    assert [r["path"] for r in server.requests] == ["/test_mfn.zip"]
    again = io.StringIO()
    pull(models_at(tmp_path, mirror=server.url), "test_mfn", out=again)
    assert "already installed" in again.getvalue() and len(server.requests) == 1


def test_checksum_mismatch_is_refused(tmp_path: Path, server: PackServer) -> None:
    good = sha256_of(tmp_path / "served.zip")
    with pytest.raises(PullError, match="checksum mismatch.*the download was deleted"):
        pull(models_at(tmp_path), "test_mfn", server.url + "test_mfn.zip", sha256="0" * 64,
             out=io.StringIO())
    assert_nothing_installed(tmp_path)
    assert not list((tmp_path / "downloads").iterdir())
    pull(models_at(tmp_path), "test_mfn", server.url + "test_mfn.zip", sha256=good,
         out=io.StringIO())
    assert_installed(tmp_path)


def test_catalogue_pins_are_enforced(tmp_path: Path, server: PackServer) -> None:
    """A published archive digest and per-file digests are checked (here through a mirror)."""
    def catalog(**pins: Any) -> dict[str, PackSource]:
        return {"test_mfn": PackSource("test_mfn.zip", 7, **pins)}

    models = models_at(tmp_path, mirror=server.url)
    with pytest.raises(PullError, match="checksum mismatch"):
        pull(models, "test_mfn", out=io.StringIO(), catalog=catalog(sha256="1" * 64))
    assert_nothing_installed(tmp_path)
    with pytest.raises(PullError, match="det_500m.onnx does not match its pinned SHA-256"):
        pull(models, "test_mfn", out=io.StringIO(),
             catalog=catalog(file_sha256={"det_500m.onnx": "2" * 64}))
    assert_nothing_installed(tmp_path)
    # buffalo_sc's pinned detector digest is the test pack's det_500m (the same file)
    real_pin = catalog(file_sha256=packs.CATALOG["buffalo_sc"].file_sha256,
                       sha256=sha256_of(tmp_path / "served.zip"))
    pull(models, "test_mfn", out=io.StringIO(), catalog=real_pin)
    assert_installed(tmp_path)


def test_interrupted_download_resumes_on_the_next_run(tmp_path: Path,
                                                      server: PackServer) -> None:
    url = server.url + "test_mfn.zip"
    server.drop_after = 3_000_000
    with pytest.raises(PullError, match=r"interrupted after 3\.0 MB.*run the same command again"):
        pull(models_at(tmp_path), "test_mfn", url, retries=0, out=io.StringIO())
    assert (tmp_path / "downloads" / "test_mfn.zip.part").stat().st_size == 3_000_000
    assert_nothing_installed(tmp_path)
    pull(models_at(tmp_path), "test_mfn", url, out=io.StringIO())
    assert_installed(tmp_path)
    first, second = server.requests
    assert first["range"] is None
    assert second["range"] == "bytes=3000000-" and second["if_range"]


def test_dropped_connection_is_resumed_within_one_run(tmp_path: Path,
                                                      server: PackServer) -> None:
    server.drop_after = 1_000_000
    pull(models_at(tmp_path), "test_mfn", server.url + "test_mfn.zip", retries=1,
         out=io.StringIO())
    assert_installed(tmp_path)
    assert [r["range"] for r in server.requests] == [None, "bytes=1000000-"]


def test_changed_remote_file_is_downloaded_whole(tmp_path: Path, server: PackServer) -> None:
    """If-Range: a partial file of an older archive is never glued to a newer one."""
    url = server.url + "test_mfn.zip"
    server.drop_after = 2_000_000
    with pytest.raises(PullError, match="interrupted"):
        pull(models_at(tmp_path), "test_mfn", url, retries=0, out=io.StringIO())
    server.files["/test_mfn.zip"] = build_archive(tmp_path / "new.zip", folder="test_mfn")
    pull(models_at(tmp_path), "test_mfn", url, out=io.StringIO())
    assert_installed(tmp_path)  # the wrapped layout (as antelopev2.zip has) is unwrapped too
    assert server.requests[1]["range"] == "bytes=2000000-"


def test_local_archive_and_folder(tmp_path: Path) -> None:
    archive = tmp_path / "air-gapped.zip"
    build_archive(archive)
    pull(models_at(tmp_path / "a"), "test_mfn", str(archive), out=io.StringIO())
    assert_installed(tmp_path / "a")
    assert archive.is_file()  # the operator's archive is not ours to delete
    pull(models_at(tmp_path / "b"), "test_mfn", f"file://{archive}", out=io.StringIO())
    assert_installed(tmp_path / "b")
    pull(models_at(tmp_path / "c"), "test_mfn", str(TEST_PACK), out=io.StringIO())
    assert_installed(tmp_path / "c")


@pytest.mark.parametrize(("files", "error"), [
    ({"det_500m.onnx": (TEST_PACK / "det_500m.onnx").read_bytes()},
     "lacks mobilefacenet_foamliu_128d.onnx"),
    ({"det_500m.onnx": b"not onnx", "mobilefacenet_foamliu_128d.onnx": b"nor this"},
     "models do not load"),
])
def test_wrong_archives_install_nothing(tmp_path: Path, files: dict[str, bytes],
                                        error: str) -> None:
    archive = tmp_path / "wrong.zip"
    build_archive(archive, files)
    with pytest.raises(PullError, match=error):
        pull(models_at(tmp_path / "root"), "test_mfn", str(archive), out=io.StringIO())
    assert_nothing_installed(tmp_path / "root")


def test_failed_reinstall_keeps_the_working_pack(tmp_path: Path) -> None:
    pull(models_at(tmp_path), "test_mfn", str(TEST_PACK), out=io.StringIO())
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(build_archive(tmp_path / "full.zip")[:4_000_000])
    with pytest.raises(PullError, match="not a zip archive"):
        pull(models_at(tmp_path), "test_mfn", str(truncated), force=True, out=io.StringIO())
    assert_installed(tmp_path)


def test_unknown_pack_and_pack_without_source(tmp_path: Path) -> None:
    with pytest.raises(PullError, match="unknown model pack 'nope'; known packs: antelopev2"):
        pull(models_at(tmp_path), "nope", out=io.StringIO())
    with pytest.raises(PullError, match="no public download is known for test_mfn; pass --from"):
        pull(models_at(tmp_path), "test_mfn", out=io.StringIO())
    with pytest.raises(PullError, match="does not exist"):
        pull(models_at(tmp_path), "test_mfn", str(tmp_path / "missing.zip"), out=io.StringIO())
    assert_nothing_installed(tmp_path)


def _cli(*args: str, limit_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # a file-size limit makes writes fail like a full disk (EFBIG)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run([sys.executable, "-m", "streamproc", *args], capture_output=True,
                          text=True, timeout=120, preexec_fn=limit if limit_bytes else None)


def test_full_disk_keeps_a_resumable_download(tmp_path: Path, server: PackServer) -> None:
    url = server.url + "test_mfn.zip"
    out = _cli("models", "pull", "test_mfn", "--model-root", str(tmp_path), "--from", url,
               limit_bytes=1_500_000)
    assert out.returncode == 1, out.stderr
    assert "cannot write" in out.stderr and "File too large" in out.stderr
    assert "run the same command again to resume" in out.stderr
    assert "Traceback" not in out.stderr
    assert_nothing_installed(tmp_path)
    assert (tmp_path / "downloads" / "test_mfn.zip.part").stat().st_size == 1_500_000
    out = _cli("models", "pull", "test_mfn", "--model-root", str(tmp_path), "--from", url)
    assert out.returncode == 0, out.stderr
    assert_installed(tmp_path)
    assert server.requests[-1]["range"] == "bytes=1500000-"


def test_cli_list_and_errors(tmp_path: Path) -> None:
    listed = _cli("models", "list", "--model-root", str(TEST_PACK.parent.parent))
    assert listed.returncode == 0
    rows = {line.lstrip("* ").split()[0]: line for line in listed.stdout.splitlines()[2:]
            if line.startswith(("*", " "))}
    assert "installed" in rows["test_mfn"] and "missing" in rows["buffalo_l"]
    assert "~288 MB" in rows["buffalo_l"] and rows["buffalo_l"].startswith("*")
    assert "non-commercial research use only" in listed.stdout
    bad = _cli("models", "pull", "nope", "--model-root", str(tmp_path))
    assert bad.returncode == 1 and "unknown model pack 'nope'" in bad.stderr
    bad_sum = _cli("models", "pull", "test_mfn", "--sha256", "xyz")
    assert bad_sum.returncode == 2 and "64 hexadecimal digits" in bad_sum.stderr


def _serve_until_ready(config: Path) -> str:
    """Start ``serve``, wait for its ready line, SIGTERM it; returns the ready line."""
    proc = subprocess.Popen([sys.executable, "-m", "streamproc", "serve", "--config",
                             str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        line = proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stderr.read()
        return line
    finally:
        proc.kill()
        proc.wait()


def test_serve_prints_the_command_that_installs_a_missing_pack(tmp_path: Path,
                                                               server: PackServer) -> None:
    config = tmp_path / "streamproc.yaml"
    config.write_text(f"server: {{port: 0}}\nstorage: {{data_dir: {tmp_path / 'data'}}}\n"
                      f"models: {{root: {tmp_path / 'models'}, pack: test_mfn, "
                      f"mirror: '{server.url}'}}\n")
    out = subprocess.run([sys.executable, "-m", "streamproc", "serve", "--config", str(config)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "model pack 'test_mfn' not found" in out.stderr
    command = out.stderr.split("Install it with:\n")[1].strip()
    assert command == f"streamproc models pull test_mfn --config {config}"
    assert server.requests == []  # nothing downloads unless the operator asks
    fixed = _cli(*command.split()[1:])
    assert fixed.returncode == 0, fixed.stderr
    assert "licence: test pack" in fixed.stderr
    assert _serve_until_ready(config).startswith("streamproc ready on http://127.0.0.1:")


def test_auto_pull_is_an_explicit_opt_in(tmp_path: Path, server: PackServer) -> None:
    config = tmp_path / "streamproc.yaml"
    config.write_text(f"server: {{port: 0}}\nstorage: {{data_dir: {tmp_path / 'data'}}}\n"
                      f"models: {{root: {tmp_path / 'models'}, pack: test_mfn, "
                      f"mirror: '{server.url}', auto_pull: true}}\n")
    assert _serve_until_ready(config).startswith("streamproc ready on")
    assert [r["path"] for r in server.requests] == ["/test_mfn.zip"]
    assert_installed(tmp_path / "models")


def test_one_pull_at_a_time_per_model_root(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    fd = os.open(tmp_path / "models", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a concurrent pull (or auto-pulling daemon) holds it
        with pytest.raises(PullError, match="another pull into .* is running"):
            pull(models_at(tmp_path), "test_mfn", str(TEST_PACK), out=io.StringIO())
    finally:
        os.close(fd)
    pull(models_at(tmp_path), "test_mfn", str(TEST_PACK), out=io.StringIO())
    assert_installed(tmp_path)
