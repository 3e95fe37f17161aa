"""``pip install`` from a built wheel gives a working ``streamproc`` command.

The wheel goes into a fresh virtual environment. Its dependencies are not downloaded again:
a ``.pth`` line puts this checkout's ``.venv`` site-packages after the wheel's own (a plain
path line: the editable install's finder there is not activated, so ``streamproc`` is the
wheel's copy).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO, SHARED


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(work / "dist"), str(REPO)], check=True, timeout=300)
    wheel = next((work / "dist").glob("streamproc-*.whl"))
    env = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=300)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True)
    Path(site.stdout.strip(), "deps-from-checkout.pth").write_text(
        sysconfig.get_path("purelib") + "\n")
    return env


def test_wheel_installs_a_working_command(wheel_env: Path, tmp_path: Path) -> None:
    python, command = wheel_env / "bin" / "python", wheel_env / "bin" / "streamproc"
    # cwd elsewhere: ``python -c`` would find this checkout's streamproc/ first
    where = subprocess.run([str(python), "-c", "import streamproc; print(streamproc.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert where.startswith(str(wheel_env)), where
    listed = subprocess.run([str(command), "models", "list", "--model-root", str(SHARED)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert listed.returncode == 0 and "test_mfn    installed" in listed.stdout
    proc = subprocess.Popen([str(command), "serve", "--port", "0", "--data-dir", str(tmp_path),
                             "--model-root", str(SHARED), "--model-pack", "test_mfn"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        assert proc.stdout.readline().startswith("streamproc ready on http://")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("module", "fix"), [
    ("insightface", "-m pip install --no-deps insightface==2.1"),
    ("onnxruntime", "-m pip install onnxruntime "),
])
def test_missing_dependency_says_what_to_run(wheel_env: Path, module: str, fix: str,
                                             tmp_path: Path) -> None:
    """What a plain ``pip install streamproc.whl`` leaves out is named with its command."""
    python = wheel_env / "bin" / "python"
    hide = (f"import sys; sys.modules[{module!r}] = None; from streamproc.cli import main; "
            f"sys.exit(main(['serve', '--model-root', {str(SHARED)!r}, '--model-pack', "
            "'test_mfn', '--port', '0']))")
    out = subprocess.run([str(python), "-c", hide], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"{python} {fix}" in out.stderr, out.stderr
