#!/usr/bin/env bash
# tests/bench.sh: cold-start, peak-RSS and warm-latency bench of the `tierwise` CLI embedder.
#
#   1. builds `cargo build --release -p tierwise` (honours CARGO_TARGET_DIR);
#   2. cold start with hyperfine: `tierwise embed "What is the capital of France?"` against the
#      same-run baseline of a trivial process (`tierwise --version`), 3 warm-ups + 30 runs each;
#   3. peak RSS of `tierwise embed "<256-token text>"` via /usr/bin/time -v;
#   4. warm latency: `cargo bench -p tierwise --bench embed` (skip with SKIP_WARM=1).
# Prints a short summary at the end. Cargo runs at `nice -n 19` (a shared build machine).
# Env: RUNS (hyperfine runs, default 30), WARMUP (default 3), SKIP_WARM=1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR="$ROOT/$TARGET_DIR" ;; esac
BIN="$TARGET_DIR/release/tierwise"
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
QUERY="What is the capital of France?"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

log() { printf '\n== %s\n' "$*" >&2; }

# Installs a Debian package if missing and we are root; returns 1 if it stays missing.
ensure_pkg() { # ensure_pkg <command-path-or-name> <package>
    if command -v "$1" >/dev/null 2>&1; then return 0; fi
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing $2 (apt-get)"
        if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2 \
            || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >&2; }; then
            command -v "$1" >/dev/null 2>&1 && return 0
        fi
    fi
    return 1
}

# --- 1. build -------------------------------------------------------------------------------
log "building: cargo build --release -p tierwise"
nice -n 19 cargo build --release -p tierwise >&2
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }
VERSION=$("$BIN" --version)
echo "binary: $BIN ($VERSION, $(du -h "$BIN" | cut -f1))" >&2

# --- 2. cold start --------------------------------------------------------------------------
COLD_MEDIAN="" COLD_SUMMARY="skipped (hyperfine missing)" BASE_MEDIAN="" NET_MEDIAN=""
if ensure_pkg hyperfine hyperfine; then
    log "cold start: hyperfine -N --warmup $WARMUP --runs $RUNS"
    hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$TMP/cold.json" \
        "'$BIN' embed '$QUERY'" "'$BIN' --version" >&2
    # One line per command: median mean min max stddev (ms).
    python3 - "$TMP/cold.json" >"$TMP/cold.txt" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    ms = lambda v: v * 1000.0
    print(" ".join(f"{ms(r[k]):.2f}" for k in ("median", "mean", "min", "max", "stddev")))
PY
    read -r COLD_MEDIAN COLD_MEAN COLD_MIN COLD_MAX COLD_SD < <(sed -n 1p "$TMP/cold.txt")
    read -r BASE_MEDIAN BASE_MEAN BASE_MIN BASE_MAX BASE_SD < <(sed -n 2p "$TMP/cold.txt")
    NET_MEDIAN=$(awk -v a="$COLD_MEDIAN" -v b="$BASE_MEDIAN" 'BEGIN { printf "%.2f", a - b }')
    COLD_SUMMARY="median ${COLD_MEDIAN} ms, mean ${COLD_MEAN} ms, min ${COLD_MIN} ms, max ${COLD_MAX} ms (sd ${COLD_SD})"
    BASE_SUMMARY="median ${BASE_MEDIAN} ms, mean ${BASE_MEAN} ms, min ${BASE_MIN} ms, max ${BASE_MAX} ms"
else
    echo "hyperfine not found and cannot be installed (not root / no apt): cold start skipped" >&2
fi

# --- 3. peak RSS ----------------------------------------------------------------------------
# ~320 word pieces: truncated by the embedder to the full 256-token window.
LONG_TEXT="I'm planning a two-week trip to Japan in late October with my partner and our two kids, \
who are eight and eleven. We land in Tokyo on a Saturday morning and fly home from Osaka. Could \
you suggest a day-by-day itinerary that balances big sights with quieter days, keeps train rides \
under three hours, and avoids hotels that change every night? We would like to see Kyoto's \
temples, spend a day at a theme park, try a cooking class, and maybe visit a hot spring town in \
the mountains. Our budget is moderate: we can splurge on one or two nights in a traditional inn, \
but otherwise prefer business hotels near major stations. Please also explain whether a \
nationwide rail pass still makes sense after the recent price increase, how to handle luggage \
forwarding between cities, what to pack for the weather in autumn, and which restaurants are \
friendly to a child with a peanut allergy. Finally, list a few phrases we should learn, typical \
costs for meals and local transport, and any etiquette rules that visitors often get wrong, such \
as tipping, shoes indoors, eating while walking, and talking on the phone in trains."
RSS_MB="" RSS_SUMMARY="skipped (/usr/bin/time missing)"
if [ -x /usr/bin/time ] || { ensure_pkg /usr/bin/time time && [ -x /usr/bin/time ]; }; then
    log "peak RSS: /usr/bin/time -v $BIN embed <256-token text>"
    RSS_SAMPLES=()
    for _ in 1 2 3; do
        /usr/bin/time -v "$BIN" embed "$LONG_TEXT" >/dev/null 2>"$TMP/time.txt"
        kb=$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$TMP/time.txt")
        RSS_SAMPLES+=("$kb")
    done
    # Median of three runs, in MB (MiB).
    kb=$(printf '%s\n' "${RSS_SAMPLES[@]}" | sort -n | sed -n 2p)
    RSS_MB=$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')
    RSS_SUMMARY="${RSS_MB} MB (median of 3; KB: ${RSS_SAMPLES[*]})"
    # Same-run baseline: a process that loads nothing.
    /usr/bin/time -v "$BIN" --version >/dev/null 2>"$TMP/time.txt"
    kb=$(awk -F': *' '/Maximum resident set size/ { print $2 }' "$TMP/time.txt")
    RSS_SUMMARY="$RSS_SUMMARY; --version baseline $(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }') MB"
else
    echo "/usr/bin/time not found and cannot be installed: peak RSS skipped" >&2
fi

# --- 4. warm latency ------------------------------------------------------------------------
WARM_JSON=""
if [ "${SKIP_WARM:-0}" = "1" ]; then
    echo "SKIP_WARM=1: warm latency skipped" >&2
else
    log "warm latency: cargo bench -p tierwise --bench embed"
    nice -n 19 cargo bench -p tierwise --bench embed | tee "$TMP/warm.txt"
    WARM_JSON=$(grep '^{' "$TMP/warm.txt" | tail -n 1 || true)
fi

# --- summary --------------------------------------------------------------------------------
echo
echo "=== tierwise bench summary ($VERSION, $(uname -m), $(nproc) cores) ==="
echo "cold start, embed \"$QUERY\": $COLD_SUMMARY"
if [ -n "$BASE_MEDIAN" ]; then
    echo "cold start, --version (process baseline): $BASE_SUMMARY"
    echo "cold start net of process baseline (median): ${NET_MEDIAN} ms"
fi
echo "peak RSS, embed <256-token text>: $RSS_SUMMARY"
python3 - "$COLD_MEDIAN" "$BASE_MEDIAN" "$NET_MEDIAN" "$RSS_MB" "$WARM_JSON" <<'PY'
import json, sys

def num(s):
    return float(s) if s else None

cold, base, net, rss, warm = sys.argv[1:6]
warm = json.loads(warm) if warm else None
if warm:
    for n, t in sorted(warm["tokens"].items(), key=lambda kv: int(kv[0])):
        print(f"warm {n:>3} tokens: P50 {t['p50_ms']:.2f} ms, P99 {t['p99_ms']:.2f} ms, "
              f"mean {t['mean_ms']:.2f} ms, {t['p50_over_yardstick']:.2f}x yardstick")
    print(f"yardstick (naive 256x256 f32 matmul) P50: {warm['yardstick_ms']:.3f} ms")
print(json.dumps({"bench": "bench.sh", "cold_start_median_ms": num(cold),
                  "process_baseline_median_ms": num(base), "cold_start_net_ms": num(net),
                  "peak_rss_mb": num(rss), "warm": warm}))
PY
