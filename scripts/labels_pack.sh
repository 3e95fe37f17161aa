#!/usr/bin/env bash
# Build the label pack once into a cache folder, for the tests (scripts/test.sh runs this).
#   STREAMPROC_LABEL_PACK   the pack folder (default ~/.cache/streamproc/labels-pack)
#   STREAMPROC_LABEL_VENV   the converter venv (default ~/.cache/streamproc/labels-converter;
#                           made on first use: TensorFlow + tf2onnx, ~1.6 GB, from PyPI)
# A valid pack (manifest + every file's SHA-256) is kept; a broken one is rebuilt. Two runs at
# once are safe: the second waits for the first's lock, then finds the pack made.
set -euo pipefail
cd "$(dirname "$0")/.."
pack="${STREAMPROC_LABEL_PACK:-$HOME/.cache/streamproc/labels-pack}"
converter="${STREAMPROC_LABEL_VENV:-$HOME/.cache/streamproc/labels-converter}"
exec .venv/bin/python -m streamproc models convert labels --out "$pack" \
  --converter-venv "$converter"
