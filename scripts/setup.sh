#!/usr/bin/env bash
# Set up streamproc in ./.venv on a fresh machine.
#   scripts/setup.sh          CPU inference (onnxruntime)
#   scripts/setup.sh --gpu    CUDA inference (onnxruntime-gpu instead, never both)
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=cpu
if [ "${1:-}" = "--gpu" ]; then runtime=gpu; fi
INSIGHTFACE_VERSION=2.1

# Live test servers (tests, demo, benchmarks), all from Debian:
#   ffmpeg            RTMP, SRT (libsrt) and HLS servers, test clips in H.265
#   GStreamer's RTSP server, run by the system python3 (python3-gi, gir1.2-gst-rtsp-server-1.0,
#                     plugins base + good: matroska demuxer, RTP payloaders, rtpbin, UDP)
#   faketime          an RTSP camera whose clock is off, for the camera-time tests
LIVE_PACKAGES="ffmpeg python3 python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good faketime"
missing=""
for pkg in $LIVE_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "warning: missing for the live-stream tests:$missing (apt-get install them)" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${runtime},test]"
# insightface's metadata pins onnxruntime and opencv-python; with --no-deps it cannot pull
# a second ONNX runtime or OpenCV beside the ones chosen above (its needs are in pyproject).
.venv/bin/python -m pip install -q --no-deps "insightface==${INSIGHTFACE_VERSION}"
.venv/bin/python -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
