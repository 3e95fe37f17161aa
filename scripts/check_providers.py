#!/usr/bin/env python3
"""Print the inference providers that really work here, not only the ones compiled in.

    python scripts/check_providers.py                  # report only, exit 0
    python scripts/check_providers.py --require cuda   # exit 1 unless CUDA really runs
    python scripts/check_providers.py --build          # at image build: libraries present
    docker run --rm --gpus all --entrypoint python streamproc:gpu scripts/check_providers.py

onnxruntime lists ``CUDAExecutionProvider`` as available whenever it was *built* with CUDA,
even when the CUDA or cuDNN libraries are missing; a session then quietly runs on CPU. So
this script runs a one-node model on every accelerated provider and prints which provider
the session actually kept, the CUDA provider library's unresolved dependencies (``ldd``),
and whether PyTorch (the ``torch`` backend) sees a GPU.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ACCELERATED = ("CUDAExecutionProvider", "TensorrtExecutionProvider")


def tiny_model() -> bytes:
    """A 1x1 convolution: enough for a provider to claim and run it."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((4, 3, 1, 1), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])], "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def distribution(names: tuple[str, ...]) -> str:
    """Which of several pip distributions is installed (onnxruntime vs onnxruntime-gpu)."""
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ", ".join(found) or "none"


def missing_libraries(ort_dir: Path) -> list[str] | None:
    """Libraries the CUDA provider needs and cannot find (None: nothing to check).

    The NVIDIA pip wheels (site-packages/nvidia/*/lib) are searched too, as
    ``onnxruntime.preload_dlls()`` loads them from there at run time.
    """
    library = ort_dir / "capi" / "libonnxruntime_providers_cuda.so"
    if not library.is_file() or shutil.which("ldd") is None:
        return None
    wheels = sorted(str(p) for p in (ort_dir.parent / "nvidia").glob("*/lib") if p.is_dir())
    env = {**os.environ, "LD_LIBRARY_PATH": ":".join(
        [*wheels, os.environ.get("LD_LIBRARY_PATH", "")])}
    out = subprocess.run(["ldd", str(library)], capture_output=True, text=True, check=False,
                         env=env)
    return [line.split()[0] for line in out.stdout.splitlines() if "not found" in line]


def check_build() -> int:
    """Image build check (no GPU there): the CUDA provider and all but the driver's libraries.

    Returns the exit status, 0 or 1.
    """
    import onnxruntime as ort

    missing = missing_libraries(Path(ort.__file__).parent)
    if "CUDAExecutionProvider" not in ort.get_available_providers() or missing is None:
        print(f"FAILED: onnxruntime {ort.__version__} has no CUDA provider", file=sys.stderr)
        return 1
    # libcuda.so.1 is the driver's, mounted into the container at run time (--gpus all).
    missing = [m for m in missing if not m.startswith("libcuda.so")]
    if missing:
        print(f"FAILED: the CUDA provider cannot find {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"onnxruntime {ort.__version__}: CUDA provider and its CUDA/cuDNN libraries present")
    return 0


def probe_onnxruntime(device_id: int) -> dict[str, bool]:
    """Run the tiny model on each accelerated provider; True where the session kept it."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    print(f"onnxruntime: {ort.__version__} ({distribution(('onnxruntime', 'onnxruntime-gpu'))})")
    print(f"  compiled-in providers: {', '.join(available)}")
    if any(p in available for p in ACCELERATED) and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # NVIDIA libraries from their pip wheels (onnxruntime-gpu[cuda,cudnn])
    missing = missing_libraries(Path(ort.__file__).parent) or []
    if missing:
        print(f"  CUDA provider library: unresolved {', '.join(missing)}"
              + (" (libcuda comes from the driver: run the container with --gpus all)"
                 if any(m.startswith("libcuda.so") for m in missing) else ""))
    works: dict[str, bool] = {}
    options = ort.SessionOptions()
    options.log_severity_level = 4
    for provider in ACCELERATED:
        if provider not in available:
            print(f"  {provider}: not compiled in")
            continue
        try:
            session = ort.InferenceSession(
                tiny_model(), options,
                providers=[(provider, {"device_id": str(device_id)}), "CPUExecutionProvider"])
            session.run(None, {"x": np.ones((1, 3, 8, 8), np.float32)})
            kept = session.get_providers()[0]
        except Exception as exc:  # report every failure, whatever its type
            kept = f"error: {exc}".splitlines()[0]
        works[provider] = kept == provider
        print(f"  {provider}: {'WORKS' if works[provider] else 'does not load'}"
              f" (session runs on {kept})")
    return works


def probe_torch(device_id: int) -> bool:
    """Whether PyTorch is installed and can run on ``cuda:device_id``."""
    try:
        import torch
    except ImportError:
        print("torch: not installed (models.backend: torch needs streamproc[torch])")
        return False
    ok = torch.cuda.is_available() and device_id < torch.cuda.device_count()
    name = torch.cuda.get_device_name(device_id) if ok else "no usable GPU"
    print(f"torch: {torch.__version__}, cuda:{device_id}: {name}")
    return ok


def main() -> int:
    """Print the report; the exit status says whether ``--require``/``--build`` held."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--require", choices=["cuda", "tensorrt", "torch-cuda"],
                        help="exit 1 unless this really runs")
    parser.add_argument("--device-id", type=int, default=0)
    parser.add_argument("--build", action="store_true",
                        help="image build check (no GPU needed): CUDA provider and libraries")
    args = parser.parse_args()
    if args.build:
        return check_build()
    works = probe_onnxruntime(args.device_id)
    torch_ok = probe_torch(args.device_id)
    needed = {"cuda": works.get("CUDAExecutionProvider", False),
              "tensorrt": works.get("TensorrtExecutionProvider", False),
              "torch-cuda": torch_ok}
    if args.require and not needed[args.require]:
        print(f"FAILED: {args.require} was required and does not run here", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
