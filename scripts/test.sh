#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite.
# Models and data come from $STREAMPROC_SHARED (default: ../shared beside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
