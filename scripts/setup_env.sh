#!/usr/bin/env bash
# Create (or reuse) a virtual environment in .venv and install isrnet into it, torch first.
# Usage: source scripts/setup_env.sh     (activates .venv for the calling shell)
set -e
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${ISRNET_VENV:-$here/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# torch before the package: 2.13.0 is the CPU wheel cached on these machines (no multi-GB CUDA download).
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e "$here[test]"
set +e
