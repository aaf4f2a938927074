#!/usr/bin/env bash
# The test command: the SAM template's lint, formatting, lints (warnings are errors), then every
# test of the workspace's default members (the library's unit tests, the embedder and classifier
# parity tests, router and CLI integration tests, the OpenAI SDK test). Needs the Rust toolchain
# and the Python tools of tests/requirements.txt (cfn-lint; moto[server], whose servers the AWS
# tests start themselves; openai) and tests/requirements-nodeps.txt (cargo-lambda, whose
# emulator the OpenAI SDK test starts); the model artifacts are committed.
# The tract engine comparison (models/engine-bench) is a benchmark, not built here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v cargo >/dev/null || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy

# tests/requirements.txt (pinned): moto[server] for the AWS integration tests (each test binary
# starts its own server: tests/support/moto_server.py), cfn-lint for template.yaml, openai for
# the OpenAI SDK test; tests/requirements-nodeps.txt: cargo-lambda (its emulator), without its
# cross-compiling toolchain. Installed into a venv inside the clone (.venv-ci, git-ignored)
# unless the venv is already complete, so neither an "externally managed" system Python nor
# other installs get in the way; its bin/ leads PATH, so `python3`, `cfn-lint` and
# `cargo-lambda` below and in the tests are the pinned ones.
command -v python3 >/dev/null || { echo "python3 not found: install Python 3 (with pip)" >&2; exit 1; }
venv="$PWD/.venv-ci"
stamp="$venv/.requirements"
wanted="$(cat tests/requirements.txt tests/requirements-nodeps.txt)"
if [ "$wanted" != "$(cat "$stamp" 2>/dev/null)" ]; then
  echo "== installing tests/requirements.txt and tests/requirements-nodeps.txt into .venv-ci"
  if [ -x "$venv/bin/python3" ] || python3 -m venv "$venv"; then
    "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
    "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check --no-deps \
      -r tests/requirements-nodeps.txt
    printf '%s\n' "$wanted" >"$stamp"
  else
    # No venv module (Debian without python3-venv): a user install, into ~/.local.
    rm -rf "$venv"
    echo "python3 -m venv failed: installing tests/requirements.txt with pip --user" >&2
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
      --no-warn-script-location --root-user-action=ignore --user -r tests/requirements.txt
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
      --no-warn-script-location --root-user-action=ignore --user --no-deps \
      -r tests/requirements-nodeps.txt
    export PATH="$(python3 -m site --user-base)/bin:$PATH"
  fi
fi
if [ -d "$venv/bin" ]; then export PATH="$venv/bin:$PATH"; fi
pyreq="install with: python3 -m pip install -r tests/requirements.txt"
nodeps="install with: python3 -m pip install --no-deps -r tests/requirements-nodeps.txt"
echo "== cfn-lint template.yaml"
command -v cfn-lint >/dev/null || { echo "cfn-lint not found: $pyreq" >&2; exit 1; }
cfn-lint template.yaml || { echo "cfn-lint: template.yaml has the problems above" >&2; exit 1; }
python3 -c 'import moto.server' ||
  { echo "moto[server] cannot be imported by $(command -v python3): $pyreq" >&2; exit 1; }
python3 -c 'import openai' ||
  { echo "openai cannot be imported by $(command -v python3): $pyreq" >&2; exit 1; }
command -v cargo-lambda >/dev/null || { echo "cargo-lambda not found: $nodeps" >&2; exit 1; }
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
