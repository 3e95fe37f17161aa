#!/usr/bin/env bash
# Set up streamproc in ./.venv on a fresh machine.
#   scripts/setup.sh          CPU inference (onnxruntime)
#   scripts/setup.sh --gpu    CUDA inference (onnxruntime-gpu instead, never both)
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=cpu
if [ "${1:-}" = "--gpu" ]; then runtime=gpu; fi

# ffmpeg serves live test streams (RTSP/TCP) in the tests and the demo; Debian's prometheus
# package (prometheus + promtool) checks the monitoring kit in configs/monitoring.
apt_packages=()
command -v ffmpeg >/dev/null 2>&1 || apt_packages+=(ffmpeg)
command -v promtool >/dev/null 2>&1 || apt_packages+=(prometheus)
if [ "${#apt_packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    # --no-install-recommends: no node exporter. Tests run their own prometheus on a free port.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${apt_packages[@]}" >/dev/null
  else
    echo "warning: ${apt_packages[*]} not found; install them (apt-get install" \
      "${apt_packages[*]}) for the live-stream and monitoring tests" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${runtime},test]"
# insightface's metadata pins onnxruntime and opencv-python; with --no-deps it cannot pull
# a second ONNX runtime or OpenCV beside the ones chosen above (its needs are in pyproject).
insightface_pin=$(.venv/bin/python -c "from streamproc.tools.deps import INSIGHTFACE; print(INSIGHTFACE)")
.venv/bin/python -m pip install -q --no-deps "${insightface_pin}"
.venv/bin/python -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
