#!/usr/bin/env bash
# The retraining loop on a deployment's own judged traffic, shown with AlpacaEval (CC BY-NC 4.0:
# used here to evaluate, never committed, never in the shipped classifier): the judged answers
# of ~50 models to real instructions stand for a team's shadow verdicts.
#   1. split ../shared/data/alpacaeval1_dev.jsonl by a hash of the id: half "verdicts so far",
#      half "traffic to come";
#   2. APGR on the second half with the bundled classifier (before);
#   3. `tierwise train --data <first half> --prices models/data/model_tiers.json` (the kind
#      head is kept, the difficulty head is learned from the verdicts);
#   4. APGR on the second half with the retrained classifier (after).
# Usage: models/retrain_demo.sh [DATA_DIR] (default ../shared/data); needs a release build.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
data="${1:-$root/../shared/data}"
bin="${CARGO_TARGET_DIR:-$root/target}/release/tierwise"
[ -x "$bin" ] || cargo build --release -p tierwise --manifest-path "$root/Cargo.toml"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$data/alpacaeval1_dev.jsonl" "$work" <<'PY'
import hashlib, sys
src, out = sys.argv[1], sys.argv[2]
with open(f"{out}/seen.jsonl", "w") as a, open(f"{out}/unseen.jsonl", "w") as b:
    for line in open(src):
        if not line.strip():
            continue
        key = line.split('"id": "', 1)[1].split('"', 1)[0]
        (a if hashlib.sha256(key.encode()).digest()[0] % 2 == 0 else b).write(line)
PY
echo "rows: $(wc -l < "$work/seen.jsonl") verdicts to learn from, $(wc -l < "$work/unseen.jsonl") to route" >&2
"$bin" train --data "$work/seen.jsonl" --prices "$here/data/model_tiers.json" --out "$work/model" \
  >/dev/null 2>"$work/train.log" || { cat "$work/train.log" >&2; exit 1; }
for pair in "vicuna-13b gpt4" "llama-2-13b-chat-hf gpt4" "alpaca-7b gpt4" "gpt-3.5-turbo-0301 gpt4"; do
  set -- $pair
  before=$("$bin" eval --data "$work/unseen.jsonl" --weak "$1" --strong "$2" 2>/dev/null)
  after=$("$bin" eval --data "$work/unseen.jsonl" --weak "$1" --strong "$2" \
    --classifier "$work/model/classifier.json" 2>/dev/null)
  python3 - "$1" "$2" "$before" "$after" <<'PY'
import json, sys
w, s, b, a = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
f = lambda v: "n/a" if v is None else f"{v:.3f}"
print(f"{w} vs {s}: n {a['n']}, APGR before {f(b['apgr'])} after {f(a['apgr'])}; "
      f"CPT(50%) before {f(b['cpt50_pct'])} after {f(a['cpt50_pct'])}")
PY
done
