#!/usr/bin/env bash
# Embedding parity on every x86-64 int8 kernel path, on any x86-64 machine: this CPU's own
# path natively, then AVX2 without AVX-512/VNNI (qemu -cpu Haswell: rten's vpmaddubsw kernel)
# and the generic kernel (qemu -cpu Nehalem: no AVX2) under qemu-user emulation (Debian's
# qemu-user, installed when missing). Numerics only: speed under emulation means nothing.
# Prints one line per path, `tierwise parity`'s JSON; exits non-zero when any path fails
# (cosine min < 0.98, mean < 0.99, or a token count differs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(uname -m)" = x86_64 ] || { echo "tests/kernels.sh checks x86-64 paths: run tests/arm64.sh on arm64" >&2; exit 1; }
if ! command -v qemu-x86_64 >/dev/null; then
  echo "== installing qemu-user (Debian)" >&2
  apt-get update -qq && apt-get install -y -qq qemu-user >/dev/null
fi
cargo build --quiet --locked -p tierwise --bin tierwise
bin="${CARGO_TARGET_DIR:-target}/debug/tierwise"
ref=tests/data/minilm_reference.jsonl
status=0
"$bin" parity --reference "$ref" || status=1
for cpu in Haswell Nehalem; do
  # -cpu warnings (features TCG lacks) are noise; the JSON names the path rten took.
  qemu-x86_64 -cpu "$cpu" "$bin" parity --reference "$ref" 2>/dev/null || status=1
done
exit $status
