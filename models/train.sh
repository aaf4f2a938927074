#!/usr/bin/env bash
# Retrain the router's tier classifier (models/router/) from ../shared/data, reproducibly:
#   1. build the `tierwise` CLI (release) and write every data file's feature vectors with it
#      (`tierwise features`: the serving code path, so no train/serve skew);
#   2. train LightGBM in a virtualenv with pinned packages (models/requirements.txt);
#   3. write classifier.json, check.jsonl (Rust/LightGBM parity vectors) and training.json;
#   4. add the task-kind head (`tierwise train --exemplars models/data/everyday_train.jsonl`).
# Usage: models/train.sh [DATA_DIR]   (default: ../shared/data beside the checkout)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
data="${1:-$root/../shared/data}"
venv="${TIERWISE_MODELS_VENV:-$here/.venv}"
feat="$(mktemp -d)"
trap 'rm -rf "$feat"' EXIT
cargo build --release -p tierwise --manifest-path "$root/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$root/target}/release/tierwise"
for f in "$data"/*_train.jsonl "$data"/*_test.jsonl; do
  "$bin" features --data "$f" --out "$feat/$(basename "$f" .jsonl).features.jsonl"
done
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r "$here/requirements.txt"
"$venv/bin/python" "$here/train.py" "$data" "$feat" "$("$bin" feature-names)"
# 4. the task-kind head on the everyday asks, over the trees just trained (their provenance
#    is kept in training.json under "base"); the pool's [task_kinds] table gives the tiers.
cp "$here/router/classifier.json" "$feat/trees.json"
(cd "$root" && "$bin" train --base "$feat/trees.json" \
  --exemplars models/data/everyday_train.jsonl --out models/router)
echo "retrained: commit models/router/ and re-run the tests (classifier_parity checks the trees)"
