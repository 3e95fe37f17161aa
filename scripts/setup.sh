#!/usr/bin/env bash
# Set up streamproc in ./.venv on a fresh machine.
#   scripts/setup.sh          CPU inference (onnxruntime)
#   scripts/setup.sh --gpu    CUDA inference (onnxruntime-gpu instead, never both)
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=cpu
if [ "${1:-}" = "--gpu" ]; then runtime=gpu; fi
INSIGHTFACE_VERSION=2.1

# ffmpeg serves live test streams (RTSP/TCP) in the tests and the demo; stunnel puts TLS in
# front of the test Kafka broker (tests/tls_broker.py).
missing=""
command -v ffmpeg >/dev/null 2>&1 || missing="$missing ffmpeg"
command -v stunnel4 >/dev/null 2>&1 || command -v stunnel >/dev/null 2>&1 || missing="$missing stunnel4"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  else
    echo "warning: not found:$missing; install them (apt-get install$missing) for the tests" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${runtime},test]"
# insightface's metadata pins onnxruntime and opencv-python; with --no-deps it cannot pull
# a second ONNX runtime or OpenCV beside the ones chosen above (its needs are in pyproject).
.venv/bin/python -m pip install -q --no-deps "insightface==${INSIGHTFACE_VERSION}"
.venv/bin/python -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
