#!/usr/bin/env bash
# tests/local.sh: the router Lambda on this machine against moto, no AWS account needed.
#
#   1. installs what is missing: moto[server] (tests/requirements.txt) and cargo-lambda
#      (tests/requirements-nodeps.txt, without the cross-compiling toolchain it pulls in);
#   2. starts moto_server on 127.0.0.1:$MOTO_PORT (default 5055) and creates the cost table and
#      the queues in it (`tierwise setup-local`, the same definitions the tests use);
#   3. runs the router under `cargo lambda watch` (the Lambda runtime emulator; rebuilds on
#      change) on 127.0.0.1:$PORT (default 9000), pointed at moto through AWS_ENDPOINT_URL.
#
# Then, from another shell:
#   curl -s localhost:9000/lambda-url/router/v1/route -d '{"query": "What is the capital of France?"}'
#   curl -s localhost:9000/lambda-url/router/v1/models
#   python3: OpenAI(base_url="http://127.0.0.1:9000/lambda-url/router/v1", api_key="local")
# Stop with Ctrl-C (moto stops with it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MOTO_PORT=${MOTO_PORT:-5055}
PORT=${PORT:-9000}

# The test command's venv (tests/run.sh), when there is one, has every tool pinned.
if [ -d .venv-ci/bin ]; then export PATH="$PWD/.venv-ci/bin:$PATH"; fi
python3 -c 'import moto.server' 2>/dev/null \
    || python3 -m pip install --quiet -r tests/requirements.txt
command -v cargo-lambda >/dev/null 2>&1 || cargo lambda --version >/dev/null 2>&1 \
    || python3 -m pip install --quiet --no-deps -r tests/requirements-nodeps.txt
# pip may have put cargo-lambda where PATH does not look (a pyenv not yet rehashed).
export PATH="$PATH:$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local

python3 -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >/tmp/tierwise-local-moto.log 2>&1 &
MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true' EXIT INT TERM
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break
    sleep 0.1
done

ENV_FILE=$(mktemp)
cargo run --quiet -p tierwise --features aws -- setup-local >"$ENV_FILE"
echo "moto on $AWS_ENDPOINT_URL; resources:" >&2
cat "$ENV_FILE" >&2
# Every query is sampled locally, so the shadow queue shows what the evaluator would get.
echo "TIERWISE_SHADOW_RATE=${TIERWISE_SHADOW_RATE:-1}" >>"$ENV_FILE"
# The proxy (POST v1/chat/completions) needs a provider key: OPENROUTER_API_KEY from the
# environment when set; without it the local router routes only.
if [ -n "${OPENROUTER_API_KEY:-}" ]; then
    # Quoted: the runtime emulator's env-file parser refuses a second '=' in a bare value.
    echo "TIERWISE_API_KEY_REFS=\"openrouter=env:OPENROUTER_API_KEY\"" >>"$ENV_FILE"
    echo "OPENROUTER_API_KEY=\"$OPENROUTER_API_KEY\"" >>"$ENV_FILE"
else
    echo "TIERWISE_PROXY=false" >>"$ENV_FILE"
fi
echo "router on http://127.0.0.1:$PORT/lambda-url/router/ (POST v1/route, GET v1/models)" >&2
cargo lambda watch -p tierwise-router --bin router \
    --invoke-address 127.0.0.1 --invoke-port "$PORT" --env-file "$ENV_FILE"
