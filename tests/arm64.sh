#!/usr/bin/env bash
# arm64 (AWS Lambda on Graviton) checked from an x86-64 machine: installs the aarch64 Rust
# target, the cross linker and qemu-user (Debian packages) when missing; cross-builds
#   1. the router Lambda's `bootstrap` for aarch64 (what `sam build` / `cargo lambda build
#      --arm64` ship; its zipped size is printed),
#   2. the `tierwise` CLI and the embed benchmark for aarch64;
# then runs under qemu-aarch64 (software emulation: numerics are real, speed is not):
#   - the embed benchmark against the same benchmark natively, as a ratio (emulation stated),
#   - `tierwise parity` on the NEON (-cpu cortex-a72), dot-product (-cpu neoverse-n1) and
#     i8mm (-cpu max) kernel paths.
# The last line is the parity (cosine min and mean, worst path); exit non-zero when parity
# fails on any path. `--no-bundle` skips the Lambda build (the AWS SDK is the long part).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=aarch64-unknown-linux-gnu
bundle=1
[ "${1:-}" = "--no-bundle" ] && bundle=0
need=()
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v zip >/dev/null || need+=(zip)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]} (Debian)" >&2
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
out="${CARGO_TARGET_DIR:-target}"
if [ $bundle = 1 ]; then
  echo "== router Lambda bootstrap for $target (release)" >&2
  cargo build --quiet --locked --release --target "$target" -p tierwise-router --bin router
  stage="$(mktemp -d)"
  cp "$out/$target/release/router" "$stage/bootstrap"
  (cd "$stage" && zip -q -9 router.zip bootstrap)
  echo "arm64 bundle: bootstrap $(stat -c %s "$stage/bootstrap") bytes, zipped $(stat -c %s "$stage/router.zip") bytes"
  rm -rf "$stage"
fi
echo "== tierwise CLI and embed bench for $target" >&2
cargo build --quiet --locked --release --target "$target" -p tierwise --bin tierwise
bench_arm=$(cargo bench --quiet --locked --target "$target" -p tierwise --bench embed --no-run \
  --message-format=json 2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="embed": print(m["executable"])' | tail -1)
bench_x86=$(cargo bench --quiet --locked -p tierwise --bench embed --no-run --message-format=json \
  2>/dev/null | python3 -c 'import json,sys
for l in sys.stdin:
    m=json.loads(l)
    if m.get("reason")=="compiler-artifact" and m.get("executable") and m["target"]["name"]=="embed": print(m["executable"])' | tail -1)
echo "== embed benchmark at 32 tokens: native x86-64 vs aarch64 under qemu (emulated)" >&2
native=$(TIERWISE_BENCH_ITERS=30 "$bench_x86" --bench embed/32 | tail -1)
emulated=$(TIERWISE_BENCH_ITERS=5 qemu-aarch64 -cpu max "$bench_arm" --bench embed/32 | tail -1)
python3 - "$native" "$emulated" <<'PY'
import json, sys
n, e = (json.loads(a) for a in sys.argv[1:3])
def p50(r):
    return r.get("tokens", {}).get("32", {}).get("p50_ms")
a, b = p50(n), p50(e)
print(f"embed/32 P50: native x86-64 {a} ms, aarch64 under qemu-user TCG {b} ms "
      f"(emulation, not arm64 speed: ratio {b / a:.1f}x)" if a and b else f"bench: {n} | {e}")
PY
bin="$out/$target/release/tierwise"
ref=tests/data/minilm_reference.jsonl
results=()
status=0
for cpu in cortex-a72 neoverse-n1 max; do
  line=$(qemu-aarch64 -cpu "$cpu" "$bin" parity --reference "$ref") || status=1
  echo "$line"
  results+=("$line")
done
python3 - "${results[@]}" <<'PY'
import json, sys
rs = [json.loads(a) for a in sys.argv[1:] if a.strip()]
worst = min(rs, key=lambda r: r["cosine_min"])
print(f"arm64 parity: cosine min {min(r['cosine_min'] for r in rs):.4f} "
      f"mean {min(r['cosine_mean'] for r in rs):.4f} (worst path {worst['kernel']}, "
      f"{len(rs)} paths: {', '.join(r['kernel'] for r in rs)})")
PY
exit $status
