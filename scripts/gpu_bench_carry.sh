#!/usr/bin/env bash
# Gather, in .gpucarry/ (git-ignored), what benchmarks/bench_gpu.py needs on a GPU machine
# that has PyTorch with CUDA, numpy, OpenCV, onnx, a CPU onnxruntime, PyYAML, scikit-image,
# requests and tqdm, but no registry access: wheels of the few packages it lacks (pinned to
# the versions in this checkout's .venv) and the test pack and two clips. Well under 64 MiB.
#   bash scripts/gpu_bench_carry.sh             # wheels for the GPU image's Python 3.12
#   GPU_PYTHON=3.11 bash scripts/gpu_bench_carry.sh
# Then, on the GPU machine, from the repository root (docs/operating.md: GPU):
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site \
#       .gpucarry/wheels/*.whl
#   PYTHONPATH=/tmp/site:$PWD STREAMPROC_SHARED=$PWD/.gpucarry/shared \
#       python3 benchmarks/bench_gpu.py --backend torch --device cuda
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${GPU_PYTHON:-3.12}"
SHARED="${STREAMPROC_SHARED:-../shared}"
out=.gpucarry
rm -rf "$out"
mkdir -p "$out/wheels" "$out/shared/models/test_mfn" "$out/shared/data/video/intel_sample_videos"

pins=$(.venv/bin/python - <<'PY'
import importlib.metadata as m
names = ["pydantic", "pydantic_core", "annotated_types", "typing_inspection",
         "typing_extensions", "av", "insightface"]
print(" ".join(f"{n}=={m.version(n)}" for n in names))
PY
)
# shellcheck disable=SC2086  # one argument per pin
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version "$PY" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$out/wheels" $pins
cp "$SHARED/models/test_mfn/"*.onnx "$out/shared/models/test_mfn/"
for clip in classroom.mp4 face-demographics-walking.mp4; do
  cp "$SHARED/data/video/intel_sample_videos/$clip" "$out/shared/data/video/intel_sample_videos/"
done
du -sh "$out"
