#!/usr/bin/env bash
# Create .venv and install the project into it (editable), torch first.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test
# Which torch build pip installs depends on the indexes it can see: from plain PyPI, Linux gets the
# CUDA build (several GB), macOS and Windows the CPU build. TORCH_INDEX_URL picks one explicitly,
# e.g. TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for the CPU build on Linux. A torch that
# already imports in .venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
# 2.13.0: the version the test suite runs on; the project itself needs torch>=2.4.
.venv/bin/python -c "import torch" 2>/dev/null ||
  "${pip[@]}" install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} 'torch==2.13.0'
"${pip[@]}" install -e ".${1:+[$1]}"
