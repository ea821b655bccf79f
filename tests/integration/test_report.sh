#!/usr/bin/env bash
# `outpost report` over a real lab outage, looked at in a real browser.
# Two agents watch the lab at once: itest-report-vp from the vp, and
# itest-report-isp from the isp router (past the vp's uplink, before the
# carrier). The carrier drops everything for 10 s (both see group `lab`
# down), then the vp's own uplink is cut for 10 s (only the vp's agent sees
# it: its vantage_down). Then:
#   - the report of both files is written (exit 0) and is self-contained:
#     no <script>, nothing it would fetch (no src= or href=);
#   - headless Chromium, run inside the lab's vp namespace (so nothing it
#     might send leaves the lab), loads it with no console message or error
#     (a page with an error is checked first, to show the check can fail),
#     and its DOM holds a chart (svg.chart, data-target, data-method) for
#     every target and method of the series records of each agent, an
#     outage band for the group outage and a vantage band for the cut, and
#     the outage table labels the vp's outage as its own, reached meanwhile
#     from the isp's agent, and the carrier outage as seen from both;
#   - a screenshot (1400x3000) is a PNG of some size;
#   - a cut line is reported as FILE:LINE on stderr and counted on the page;
#     a missing input file is exit 1.
# REPORT_SAVE=DIR keeps the records, the page and the screenshot. Exit 77
# (skip) when not root or Chromium is missing (scripts/setup installs it).
set -uo pipefail
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/outage_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/outage_lib.sh"
lib_init rp
lib_need_tools chromium
lab_up --hosts 4
fault serve web

outage_config itest-report-vp
CFG_ISP=$WORK/lab-isp.yaml
sed 's/id: itest-report-vp/id: itest-report-isp/' "$CFG" >"$CFG_ISP"
OUT_ISP=$WORK/isp.jsonl
"$NETLAB" exec isp "$OUTPOST" run -c "$CFG_ISP" --for 40s --output "$OUT_ISP" 2>"$WORK/isp.log" &
ISP_PID=$!
LIB_PIDS+=("$ISP_PID")
outage_start 40s

fault drop carrier
echo "  $(date -u +%T.%N | cut -c1-12) carrier drops everything it forwards"
pause 10
fault undrop carrier
echo "  $(date -u +%T.%N | cut -c1-12) carrier restored"
pause 4
fault cut vp isp
echo "  $(date -u +%T.%N | cut -c1-12) the vp's uplink is down"
pause 10
fault uncut vp isp
echo "  $(date -u +%T.%N | cut -c1-12) the vp's uplink is up again"

outage_wait
wait_pid "$ISP_PID" 60
rc=$?
check "the isp's agent exits 0 (got $rc)" test "$rc" -eq 0

PAGE=$WORK/report.html
check "outpost report of both agents exits 0" "$OUTPOST" report -i "$OUT" -i "$OUT_ISP" -o "$PAGE" \
  --asn-names "$OUTPOST_SOURCE_DIR/tests/fixtures/asn_names_small.json"
check "the page has no <script> and fetches nothing (no src= or href=)" \
  bash -c "! grep -Eiq '<script|src=|href=' '$PAGE'"

# Chromium, headless, in the vp namespace; its console messages go to stderr.
chrome() {
  timeout -k 5 60 "$NETLAB" exec vp chromium --headless --no-sandbox --disable-background-networking --disable-gpu --disable-extensions \
    --no-first-run --user-data-dir="$WORK/chromium" --enable-logging=stderr --v=0 "$@"
}
console_errors() { grep -E 'CONSOLE|Uncaught|ERROR:.*(file://|javascript)' "$1"; }
printf '<!DOCTYPE html><html><body><script>console.error("x"); no_such_function();</script></body></html>' \
  >"$WORK/faulty.html"
chrome --dump-dom "file://$WORK/faulty.html" >"$WORK/faulty.dom" 2>"$WORK/faulty.err"
check "the console check sees a faulty page's errors" quiet console_errors "$WORK/faulty.err"
chrome --dump-dom "file://$PAGE" >"$WORK/report.dom" 2>"$WORK/chromium.err"
rc=$?
check "chromium loads the page (exit $rc)" test "$rc" -eq 0
check "no console message or error while loading the page" bash -c "! grep -E 'CONSOLE|Uncaught' '$WORK/chromium.err'"
chrome --screenshot="$WORK/report.png" --window-size=1400,3000 "file://$PAGE" >/dev/null 2>&1
size=$(stat -c %s "$WORK/report.png" 2>/dev/null || echo 0)
echo "  screenshot: $size bytes"
check "the screenshot is a PNG of more than 50 KB" bash -c "head -c 8 '$WORK/report.png' | grep -q PNG && (($size > 50000))"

py_checks "$OUT" "$OUT_ISP" "$WORK/report.dom" <<'PYEOF'
from html.parser import HTMLParser
vp_path, isp_path, dom_path = sys.argv[1], sys.argv[2], sys.argv[3]

class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.charts, self.bands, self.rows, self.text = set(), [], [], []
        self.in_outages = 0
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = (a.get("class") or "").split()
        if tag == "svg" and "chart" in cls:
            self.charts.add((a.get("data-agent"), a.get("data-target"), a.get("data-method")))
        if tag == "rect" and "outage" in cls:
            self.bands.append(cls)
    def handle_data(self, data):
        self.text.append(data)

dom = Dom()
dom.feed(open(dom_path, encoding="utf-8").read())
text = " ".join(dom.text)
want = set()
for path in (vp_path, isp_path):
    records, bad = load_records(path)
    check(f"{path.split('/')[-1]}: every line is JSON", not bad and records, bad[:3])
    for r in records:
        if r.get("type") == "series":
            method = r["method"] + (f":{r['port']}" if r["method"] == "tcp" and "port" in r else "")
            want.add((r["agent"], r["target"], method))
print(f"  series in the records: {len(want)}; charts in the DOM: {len(dom.charts)}")
check("both agents have series", {a for a, _, _ in want} == {"itest-report-vp", "itest-report-isp"}, sorted(want)[:4])
check("a chart per agent, target and method of the records", want and want <= dom.charts, sorted(want - dom.charts)[:5])
check("no chart for anything the records lack", dom.charts <= want, sorted(dom.charts - want)[:5])
check("outage bands for the group outage", any("outage-target" in c for c in dom.bands), len(dom.bands))
check("vantage bands for the vp's cut", any("outage-vantage" in c for c in dom.bands), len(dom.bands))
check("the page says the vp's outage is its own, the isp reaching the targets meanwhile",
      re.search(r"the vantage point's problem\s*reached meanwhile from:\s*itest-report-isp", text), "")
check("the carrier outage is seen from both vantage points",
      re.search(r"(the carrier's problem|the target's problem)\s*also down from:\s*itest-report-(isp|vp)", text), "")
check("the verdict is in words", "inside the upstream carrier" in text, "")
PYEOF

# Bad input: a cut line is named and counted; a missing file is exit 1.
head -c -40 "$OUT" >"$WORK/cut.jsonl"
lines=$(wc -l <"$WORK/cut.jsonl")
"$OUTPOST" report -i "$WORK/cut.jsonl" -o "$WORK/cut.html" 2>"$WORK/cut.err"
rc=$?
check "a cut file: exit 0" test "$rc" -eq 0
check "a cut file: its last line named on stderr" grep -q "cut.jsonl:$((lines + 1)): skipped" "$WORK/cut.err"
check "a cut file: the page counts the skipped line" grep -q "1 line(s) skipped" "$WORK/cut.html"
"$OUTPOST" report -i "$WORK/no-such.jsonl" -o "$WORK/none.html" 2>"$WORK/none.err"
rc=$?
check "a missing input file: exit 1 (got $rc) and a message naming it" \
  bash -c "(($rc == 1)) && grep -q 'cannot read $WORK/no-such.jsonl' '$WORK/none.err'"

if ((failures)); then show_log "$LOG" | tail -n 20; fi
if [[ -n ${REPORT_SAVE:-} ]]; then
  mkdir -p "$REPORT_SAVE" && cp "$OUT" "$OUT_ISP" "$PAGE" "$WORK/report.png" "$REPORT_SAVE/" &&
    echo "  kept in $REPORT_SAVE: $(cd "$REPORT_SAVE" && echo *)"
fi
finish
