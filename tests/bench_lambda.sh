#!/usr/bin/env bash
# tests/bench_lambda.sh: cold start of the router Lambda binary, locally: process start to the
# first API Gateway response posted back to a local Lambda Runtime API emulator
# (tests/support/lambda_runtime_api.py), with the first query's DynamoDB record and SQS sample
# written to a moto_server this script starts. Also prints the binary's own init time (its
# "router ready" log line) and the deployment bundle's sizes.
#
#   tests/bench_lambda.sh [BOOTSTRAP]   (default: builds target/release/router)
# Env: RUNS (default 20).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
RUNS=${RUNS:-20}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${1:-}
if [ -z "$BIN" ]; then
    nice cargo build --release -p tierwise-router --bin router >&2
    BIN="$TARGET_DIR/release/router"
fi
python3 -c 'import moto.server' 2>/dev/null || python3 -m pip install --quiet -r tests/requirements.txt
TMP=$(mktemp -d)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m moto.server -H 127.0.0.1 -p "$PORT" >"$TMP/moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true; rm -rf "$TMP"' EXIT
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done
# The table, queues and provider key secret (boto3 comes with moto).
python3 - >"$TMP/env" <<'PY'
import boto3
ddb = boto3.client("dynamodb"); sqs = boto3.client("sqs")
ddb.create_table(TableName="costs", BillingMode="PAY_PER_REQUEST",
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
print("TIERWISE_TABLE=costs")
print("TIERWISE_SHADOW_QUEUE_URL=" + sqs.create_queue(QueueName="shadow")["QueueUrl"])
print("TIERWISE_FALLBACK_QUEUE_URL=" + sqs.create_queue(QueueName="fallback")["QueueUrl"])
print("TIERWISE_SHADOW_RATE=1")
# The proxy's provider key, read at init as deployed (a Secrets Manager call in the init).
arn = boto3.client("secretsmanager").create_secret(Name="openrouter", SecretString="sk-bench")["ARN"]
print("TIERWISE_API_KEY_REFS=openrouter=secretsmanager:" + arn)
PY
ENV_ARGS=()
while read -r line; do ENV_ARGS+=(--env "$line"); done <"$TMP/env"
echo "== cold start: $BIN, $RUNS runs (each: new process, init, one POST /v1/route with its record and sample)" >&2
python3 tests/support/lambda_runtime_api.py --event tests/fixtures/apigw/route.json --runs "$RUNS" \
    --expect-status 200 --log "$TMP/fn.log" "${ENV_ARGS[@]}" -- "$BIN" | tee "$TMP/cold.txt"
python3 - "$TMP/fn.log" <<'PY'
import json, statistics, sys
inits = []
for line in open(sys.argv[1]):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    if v.get("message") == "router ready" or v.get("fields", {}).get("message") == "router ready":
        inits.append(float(v.get("init_ms") or v.get("fields", {}).get("init_ms")))
if inits:
    inits.sort()
    print(json.dumps({"binary_init_ms": {"runs": len(inits), "min": round(inits[0], 2), "p50": round(statistics.median(inits), 2), "max": round(inits[-1], 2)}}))
PY
echo "== bundle: $BIN" >&2
cp "$BIN" "$TMP/bootstrap"
(cd "$TMP" && python3 -m zipfile -c bootstrap.zip bootstrap)
python3 -c "import os,sys,json; print(json.dumps({'unzipped_bytes': os.path.getsize(sys.argv[1]), 'zipped_bytes': os.path.getsize(sys.argv[2])}))" "$TMP/bootstrap" "$TMP/bootstrap.zip"
