#!/usr/bin/env bash
# Create .venv and install the project into it (editable), torch's CPU-sized build first.
# Usage: scripts/setup.sh [EXTRAS]   e.g. scripts/setup.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
# A bare `torch>=2.4` would pull the newest CUDA build (several GB); 2.13.0 satisfies the range.
.venv/bin/python -c "import torch" 2>/dev/null || "${pip[@]}" install 'torch==2.13.0'
"${pip[@]}" install -e ".${1:+[$1]}"
