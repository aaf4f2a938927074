#!/usr/bin/env bash
# The HTML cost report checked in a real browser: Debian's chromium, headless (installed with
# apt when missing). Writes a DynamoDB export of 28 days of varied traffic (the
# tests/examples/report_export.rs example, through the tests' export fixture), renders it with
# `tierwise report --export DIR --format html`, loads the page from its file in chromium with
# every host name unresolvable, and checks (tests/support/report_browser_check.py):
#   - the rendered DOM holds both chart SVGs and their series (lines, dots, bars, mix bar);
#   - the page requested nothing but file:/data: URLs (chromium's network log), and raised no
#     Content Security Policy violation (its console): it did not even try;
#   - the screenshot is not blank and shows the charts' colours.
# Both request checks are first shown to catch a load, on a copy of the page with outside
# references injected (with and without its CSP). Prints the screenshot's path; exits non-zero
# on any failure; the last line is a one-line summary. Not part of tests/run.sh (it needs a
# browser); run it after changing shared/src/report/html.rs or charts.rs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target="${CARGO_TARGET_DIR:-target}"
out="$target/report-browser"
check=tests/support/report_browser_check.py
trap 'status=$?; [ $status -eq 0 ] || echo "report_browser: FAILED (exit $status; the first FAIL above says why)"' EXIT

if ! command -v chromium >/dev/null; then
  echo "== installing chromium (Debian)" >&2
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null
fi
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
echo "== the export and the report ($out)"
cargo build --quiet --locked -p tierwise --bin tierwise
export_dir="$(cargo run --quiet --locked -p tierwise-tests --example report_export -- "$out/export")"
[ -d "$export_dir" ] || { echo "no export written" >&2; exit 1; }
bin="$target/debug/tierwise"
"$bin" report --export "$out/export" --group-by tier --format html --out "$out/report.html"
days="$("$bin" report --export "$out/export" 2>/dev/null |
  python3 -c 'import json, sys; print(len(json.load(sys.stdin)["days"]))')"

# One chromium run on FILE: screenshot to $out/NAME.png, DOM to $out/NAME.dom.html, network
# log to $out/NAME.netlog.json, console and browser log to $out/NAME.log. No host resolves
# (MAP * ~NOTFOUND): even a load that slipped through would leave nothing but a log line.
browse() {
  local name="$1" file="$2"
  local profile="$out/profile-$name"
  rm -rf "$profile"
  mkdir -p "$profile"
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --host-resolver-rules="MAP * ~NOTFOUND" \
    --log-net-log="$out/$name.netlog.json" --enable-logging=stderr --v=0 \
    --window-size=1000,2400 --hide-scrollbars \
    --screenshot="$out/$name.png" --dump-dom "file://$file" \
    >"$out/$name.dom.html" 2>"$out/$name.log" ||
    { echo "chromium failed on $file (log: $out/$name.log)" >&2; tail -5 "$out/$name.log" >&2; return 1; }
}

echo "== the checks can fail: a copy with outside references"
inject='<body><img src="http://example.com/tracker.png" alt=""><div style="background:url(https://cdn.example.net/bg.png)">.</div>'
sed "s#<body>#$inject#" "$out/report.html" >"$out/control-csp.html"
sed -e "s#<body>#$inject#" -e '/Content-Security-Policy/d' "$out/report.html" >"$out/control-open.html"
grep -q 'example.com/tracker' "$out/control-open.html" && ! grep -q Content-Security-Policy "$out/control-open.html" ||
  { echo "the control page was not built as intended" >&2; exit 1; }
browse control-csp "$out/control-csp.html"
browse control-open "$out/control-open.html"
python3 "$check" console "$out/control-csp.log" --expect-violation
python3 "$check" requests "$out/control-open.netlog.json" --expect-outside

echo "== the report in chromium"
browse report "$out/report.html"
python3 "$check" dom "$out/report.dom.html" "$days"
python3 "$check" requests "$out/report.netlog.json"
python3 "$check" console "$out/report.log"
python3 "$check" png "$out/report.png"
echo "screenshot: $out/report.png"
echo "report_browser: ok: $days days of traffic rendered by $(chromium --version 2>/dev/null | head -1 | cut -d' ' -f1-2): charts in the DOM and on screen, no outside request"
