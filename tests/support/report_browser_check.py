"""Checks of the HTML report as headless chromium rendered it, for tests/report_browser.sh.

Standard library only. Subcommands (each prints one line and exits 1 on a failure):

  dom FILE DAYS         the DOM chromium dumped (--dump-dom) holds both chart SVGs with their
                        series: two spend lines with a dot per day, a stacked bar per tier and
                        day with traffic, and the tier-mix bar
  requests NETLOG       no request the page made (chromium's --log-net-log JSON) went to a URL
                        other than file: or data:; the browser's own background requests (no
                        initiating origin) are counted apart and ignored
  console LOG           chromium's console output (--enable-logging=stderr) has no Content
                        Security Policy violation: the page did not even try to load anything
  png FILE              the screenshot is not blank and shows the charts' colours (the cost and
                        baseline lines, the three tiers' bars)

`requests --expect-outside` and `console --expect-violation` invert the check: the script runs
them on a copy of the report with outside references injected, to show they catch a load.
"""

import collections
import json
import re
import struct
import sys
import zlib

# shared/src/report/charts.rs: COST_COLOR, BASELINE_COLOR, TIER_COLORS.
CHART_COLORS = {
    "actual cost": "2f6fb3",
    "baseline": "8a8f98",
    "tier1": "4e9a6a",
    "tier2": "e0a030",
    "tier3": "c8504a",
}
# Fewest pixels of each chart colour, and fewest distinct colours, in a rendered report.
MIN_PIXELS = 200
MIN_COLORS = 64


def fail(msg):
    print(f"FAIL {msg}")
    sys.exit(1)


def check_dom(path, days):
    dom = open(path, encoding="utf-8").read()
    svgs = re.findall(r"<svg\b[^>]*>", dom)
    charts = [s for s in svgs if re.search(r'class="chart"', s)]
    labels = sorted(re.search(r'aria-label="([^"]*)"', s).group(1) for s in charts)
    want = ["Daily spend against the baseline model's", "Queries per day by tier"]
    if labels != sorted(want):
        fail(f"dom: chart SVGs {labels}, expected {want}")
    spend = re.search(r"<svg\b[^>]*Daily spend.*?</svg>", dom, re.S).group(0)
    tiers = re.search(r"<svg\b[^>]*Queries per day by tier.*?</svg>", dom, re.S).group(0)
    lines = re.findall(r"<polyline\b[^>]*points=\"([^\"]*)\"", spend)
    points = [len(p.split()) for p in lines]
    if points != [days, days]:
        fail(f"dom: spend lines with {points} points, expected two of {days}")
    dots = len(re.findall(r"<circle\b", spend))
    if dots != 2 * days:
        fail(f"dom: {dots} dots on the spend lines, expected {2 * days}")
    bars = re.findall(r"<rect\b[^>]*height=\"([0-9.]+)\"", tiers)
    if len(bars) < days or not all(float(h) > 0 for h in bars):
        fail(f"dom: {len(bars)} tier bars (heights {bars[:5]}...), expected >= {days}, all > 0")
    for t in ("tier1", "tier2", "tier3"):
        if not re.search(rf"<title>[0-9-]+ {t}: [0-9,]+ queries</title>", tiers):
            fail(f"dom: no {t} bar in the tier chart")
    mix = re.search(r'<div class="mix"[^>]*>(.*?)</div>', dom, re.S)
    spans = len(re.findall(r"<span\b", mix.group(1))) if mix else 0
    if spans != 3:
        fail(f"dom: the tier-mix bar has {spans} parts, expected 3")
    print(
        f"ok dom: 2 chart SVGs, spend lines of {days} points with {dots} dots, "
        f"{len(bars)} tier bars, a 3-part mix bar"
    )


def load_netlog(path):
    text = open(path, encoding="utf-8").read()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # A log whose writer was cut short lacks its closing brackets.
        return json.loads(text.rstrip().rstrip(",") + "]}")


def page_requests(path):
    """URLs of the requests a page made, and the count of the browser's own."""
    log = load_netlog(path)
    sources = collections.defaultdict(lambda: {"urls": set(), "page": False})
    for event in log.get("events", []):
        params = event.get("params") or {}
        src = sources[event.get("source", {}).get("id")]
        if isinstance(params.get("url"), str):
            src["urls"].add(params["url"])
        initiator = params.get("initiator")
        nik = str(params.get("network_isolation_key", ""))
        # A page's requests carry its origin ("null" for a file: page) or its site in the
        # isolation key; the browser's own carry "not an origin".
        if (initiator is not None and initiator != "not an origin") or "file:" in nik:
            src["page"] = True
    page, browser = set(), 0
    for src in sources.values():
        if src["page"]:
            page |= src["urls"]
        elif src["urls"]:
            browser += 1
    return page, browser


def check_requests(path, expect_outside):
    page, browser = page_requests(path)
    outside = sorted(u for u in page if not u.startswith(("file:", "data:")))
    if expect_outside:
        if not outside:
            fail(f"requests: the injected outside loads were not seen in {path}")
        print(f"ok requests (control): {len(outside)} outside loads seen: {', '.join(outside)}")
        return
    if outside:
        fail(f"requests: the page loaded from outside: {', '.join(outside)}")
    print(
        f"ok requests: the page made no request beyond file:/data: "
        f"({browser} browser background requests ignored)"
    )


def check_console(path, expect_violation):
    text = open(path, encoding="utf-8", errors="replace").read()
    hits = [l for l in text.splitlines() if "CONSOLE" in l and "Content Security Policy" in l]
    if expect_violation:
        if not hits:
            fail(f"console: the injected outside loads raised no CSP violation in {path}")
        print(f"ok console (control): {len(hits)} CSP violations reported")
        return
    if hits:
        fail(f"console: {hits[0][:300]}")
    print("ok console: no Content Security Policy violation")


def decode_png(path):
    """(width, height, bytes per pixel, rows) of an 8-bit RGB/RGBA non-interlaced PNG."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"png: {path} is not a PNG")
    pos, idat, hdr = 8, [], None
    while pos + 8 <= len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if hdr is None:
        fail(f"png: {path} has no header")
    width, height, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        fail(f"png: unsupported format {hdr}")
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    i = 0
    for _ in range(height):
        kind = raw[i]
        line = bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, bpp, rows


def check_png(path):
    width, height, bpp, rows = decode_png(path)
    counts = collections.Counter()
    for row in rows:
        for x in range(0, len(row), bpp):
            counts[row[x : x + 3]] += 1
    if len(counts) < MIN_COLORS:
        fail(f"png: {width}x{height} with {len(counts)} distinct colours (blank?)")
    seen = {name: counts[bytes.fromhex(hex_)] for name, hex_ in CHART_COLORS.items()}
    missing = [f"{name} #{CHART_COLORS[name]} ({n} px)" for name, n in seen.items() if n < MIN_PIXELS]
    if missing:
        fail(f"png: chart colours missing or too few pixels: {', '.join(missing)}")
    shown = ", ".join(f"{name} {n}" for name, n in seen.items())
    print(f"ok png: {width}x{height}, {len(counts)} distinct colours; chart pixels: {shown}")


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    cmd, args = argv[1], argv[2:]
    flags = {a for a in args if a.startswith("--")}
    args = [a for a in args if not a.startswith("--")]
    if cmd == "dom" and len(args) == 2:
        check_dom(args[0], int(args[1]))
    elif cmd == "requests" and len(args) == 1:
        check_requests(args[0], "--expect-outside" in flags)
    elif cmd == "console" and len(args) == 1:
        check_console(args[0], "--expect-violation" in flags)
    elif cmd == "png" and len(args) == 1:
        check_png(args[0])
    else:
        fail(f"usage: {__doc__}")


if __name__ == "__main__":
    main(sys.argv)
