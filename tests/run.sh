#!/usr/bin/env bash
# The test command: formatting, lints (warnings are errors), then every test of the workspace's
# default members (the library's unit tests, the embedder and classifier parity tests, router
# and CLI integration tests). Needs only the Rust toolchain: the model artifacts are committed.
# The tract engine comparison (models/engine-bench) is a benchmark, not built here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (default members, all targets, -D warnings)"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --locked "$@" 2>&1 | tee "$log"
# One closing line for the whole run (cargo prints one `test result` line per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
