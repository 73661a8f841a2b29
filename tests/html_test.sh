#!/usr/bin/env bash
# `syncsim report DB --format html --out PAGE`: one self-contained page per database, checked
# by tests/tools/html_check.py (parsed; its plots, its table's rows, nothing loaded from
# elsewhere, hostile names shown as text) and drawn by headless Chromium.
# Usage: html_test.sh PATH/TO/syncsim SOURCE_DIR
set -u
syncsim=$1
src=$2
# shellcheck source=tests/test_lib.sh
. "$src/tests/test_lib.sh"

if ! command -v python3 >/dev/null; then
  bad "python3 is not installed (./setup.sh test installs it)"
  exit 1
fi
page_check() { python3 "$src/tests/tools/html_check.py" "$@" >"$tmp/check" 2>&1; }

# a sweep (one swept parameter, H, and seeds), a second scenario, a timing-only one
"$syncsim" sweep "$src/tests/fixtures/sweep_small.json" --db "$tmp/sw.db" --quiet >/dev/null
"$syncsim" run "$src/scenarios/examples/minimal.json" --set stop.sim_time_s=20 \
  --db "$tmp/mini.db" --quiet >/dev/null
"$syncsim" merge "$tmp/mix.db" "$tmp/sw.db" "$tmp/mini.db" >/dev/null
cat >"$tmp/timing.json" <<'EOF'
{"name": "timing", "workload": {"model": {"type": "none", "params": 1e6}},
 "cluster": {"workers": 4, "compute": {"step_time_s": 0.1}},
 "policies": [{"type": "ddp"}, {"type": "local_sgd", "H": 4}],
 "stop": {"sim_time_s": 5}, "eval": {"every_s": 1}}
EOF
"$syncsim" run "$tmp/timing.json" --db "$tmp/timing.db" --quiet >/dev/null

# --- the page: plots, rows, nothing from elsewhere ------------------------------------------
"$syncsim" report "$tmp/sw.db" --format html --out "$tmp/sw.html" 2>"$tmp/err"
check "report --format html exits 0 and says where: $(cat "$tmp/err")" \
  grep -qx "wrote $tmp/sw.html" "$tmp/err"
"$syncsim" report "$tmp/sw.db" --format csv >"$tmp/sw.csv" 2>/dev/null
page_check "$tmp/sw.html" --svg 3 --csv "$tmp/sw.csv"
rc=$?
check "a sweep's page: the loss, sweep (H) and shares plots, the rows, nothing external:
$(cat "$tmp/check")" test $rc -eq 0
check "the page's header names the database and its runs" \
  grep -q "<h1>syncsim report: $tmp/sw.db</h1>" "$tmp/sw.html"
check "... and says how many runs (9 done)" grep -q '9 runs: 9 done' "$tmp/sw.html"
n=$(grep -c '<details><summary>config</summary><pre>{' "$tmp/sw.html")
check "every run's resolved config is in the page ($n of 9)" test "$n" -eq 9
check "the configs are pretty-printed, a line per member, arrays of numbers as stored" \
  grep -qx '      &quot;speeds&quot;: \[1, 0.8, 0.6\],' "$tmp/sw.html"
hash=$(sqlite3 "$tmp/sw.db" "select config_hash from runs where id = 4")
check "a run's provenance: its config hash and source commit" \
  grep -q "<td>$hash</td><td>" "$tmp/sw.html"
"$syncsim" report "$tmp/mix.db" --format html --out "$tmp/mix.html" 2>/dev/null
"$syncsim" report "$tmp/mix.db" --format csv >"$tmp/mix.csv" 2>/dev/null
page_check "$tmp/mix.html" --svg 4 --csv "$tmp/mix.csv"
rc=$?
check "two scenarios: a loss plot each, one sweep plot, the shares: $(cat "$tmp/check")" \
  test $rc -eq 0
# the table honours the report's options
for opts in "--scenario sweep_small" "--group-by seed" "--baseline local_sgd --target-loss 1.1"; do
  # shellcheck disable=SC2086
  "$syncsim" report "$tmp/mix.db" $opts --format html --out "$tmp/o.html" 2>/dev/null
  # shellcheck disable=SC2086
  "$syncsim" report "$tmp/mix.db" $opts --format csv >"$tmp/o.csv" 2>/dev/null
  svgs=4
  [ "$opts" = "--scenario sweep_small" ] && svgs=3
  page_check "$tmp/o.html" --svg $svgs --csv "$tmp/o.csv"
  rc=$?
  check "report $opts --format html: the rows of --format csv: $(cat "$tmp/check")" test $rc -eq 0
done
"$syncsim" report "$tmp/sw.db" --group-by label --format html --out "$tmp/o.html" 2>/dev/null
check "the report's notes are in the page" \
  grep -q '^<li>rows pool runs with different values of policies.local_sgd.H' "$tmp/o.html"
SOURCE_DATE_EPOCH=1700000000 "$syncsim" report "$tmp/sw.db" --format html --out "$tmp/a.html" \
  2>/dev/null
SOURCE_DATE_EPOCH=1700000000 "$syncsim" report "$tmp/sw.db" --format html --out "$tmp/b.html" \
  2>/dev/null
check "the same database gives the same page (SOURCE_DATE_EPOCH fixes the time)" \
  cmp -s "$tmp/a.html" "$tmp/b.html"
check "... written at that time" grep -q 'Written 2023-11-14T22:13:20Z by syncsim ' "$tmp/a.html"

cp "$src/tests/fixtures/schema_v1.db" "$tmp/v1.db"
"$syncsim" report "$tmp/v1.db" --format html --out "$tmp/v1.html" 2>/dev/null
"$syncsim" report "$tmp/v1.db" --format csv >"$tmp/v1.csv" 2>/dev/null
page_check "$tmp/v1.html" --svg 2 --csv "$tmp/v1.csv"
rc=$?
check "a version-1 database's page (its loss and shares plots): $(cat "$tmp/check")" test $rc -eq 0
check "... leaving the database as it was" cmp -s "$src/tests/fixtures/schema_v1.db" "$tmp/v1.db"

# --- plots that cannot be drawn are notes, not failures --------------------------------------
"$syncsim" report "$tmp/timing.db" --format html --out "$tmp/timing.html" 2>"$tmp/err"
rc=$?
check "a timing-only database's page is written: $(cat "$tmp/err")" test $rc -eq 0
"$syncsim" report "$tmp/timing.db" --format csv >"$tmp/timing.csv" 2>/dev/null
page_check "$tmp/timing.html" --svg 1 --missing 1 --csv "$tmp/timing.csv"
rc=$?
check "... with the shares plot, and a note for the loss plot: $(cat "$tmp/check")" test $rc -eq 0
check "... saying why" grep -q 'Not drawn: no evaluated losses' "$tmp/timing.html"
SYNCSIM_GNUPLOT=/nonexistent/gnuplot "$syncsim" report "$tmp/sw.db" --format html \
  --out "$tmp/nognuplot.html" 2>"$tmp/err"
rc=$?
check "without gnuplot the page is written: $(cat "$tmp/err")" test $rc -eq 0
page_check "$tmp/nognuplot.html" --svg 0 --missing 3 --csv "$tmp/sw.csv"
rc=$?
check "... with a note for each plot: $(cat "$tmp/check")" test $rc -eq 0
check "... saying how to get gnuplot" grep -q 'gnuplot-nox' "$tmp/nognuplot.html"

# --- hostile names are text, in the table, the plots and the runs ----------------------------
label="<script>alert(1)</script>&\"]]>'"
cp "$tmp/sw.db" "$tmp/evil.db"
sqlite3 "$tmp/evil.db" "update runs set label = '<script>alert(1)</script>&\"]]>''',
  error = '<img src=x onerror=alert(2)>' where label = 'local_sgd';
  update runs set host = '<b>h</b>', scenario = scenario || '<i>' where id = 1"
"$syncsim" report "$tmp/evil.db" --format html --out "$tmp/evil.html" 2>/dev/null
"$syncsim" report "$tmp/evil.db" --format csv >"$tmp/evil.csv" 2>/dev/null
page_check "$tmp/evil.html" --svg 4 --csv "$tmp/evil.csv" --label "$label"
rc=$?
check "a label with markup is text in the table, the runs and the plots: $(cat "$tmp/check")" \
  test $rc -eq 0
check "... and no '<script', '<img' or '<b>' is in the page as written" \
  test "$(grep -ciE '<script|<img|<b>|<i>' "$tmp/evil.html")" -eq 0
check "... the error shown as text" grep -qF '&lt;img src=x onerror=alert(2)&gt;' "$tmp/evil.html"

# --- options and files -----------------------------------------------------------------------
"$syncsim" report "$tmp/sw.db" --format html >"$tmp/out" 2>"$tmp/err"
rc=$?
check "--format html without --out exits 2 ($rc), saying so, writing nothing" \
  sh -c "test $rc -eq 2 && grep -q 'needs --out' '$tmp/err' && test ! -s '$tmp/out'"
"$syncsim" report "$tmp/sw.db" --format html --out "$tmp/no/such/dir/r.html" 2>"$tmp/err"
rc=$?
check "an --out in a missing directory exits 2 ($rc), saying why: $(cat "$tmp/err")" \
  sh -c "test $rc -eq 2 && grep -q 'cannot write there: No such file or directory' '$tmp/err'"
"$syncsim" report "$tmp/sw.db" --format html --out "$tmp" 2>"$tmp/err"
rc=$?
check "an --out that is a directory exits 2 ($rc): $(cat "$tmp/err")" \
  sh -c "test $rc -eq 2 && grep -q 'is a directory' '$tmp/err'"
echo keep >"$tmp/keep.html"
"$syncsim" report "$tmp/sw.db" --scenario nope --format html --out "$tmp/keep.html" 2>"$tmp/err"
rc=$?
check "a failed report exits 2 ($rc) and leaves --out as it was: $(cat "$tmp/err")" \
  sh -c "test $rc -eq 2 && test \"\$(cat '$tmp/keep.html')\" = keep"
check "... and no temporary file" test -z "$(ls "$tmp" | grep 'keep\.html\.')"
for f in table csv json; do
  "$syncsim" report "$tmp/sw.db" --format $f --out "$tmp/r.$f" 2>/dev/null
  "$syncsim" report "$tmp/sw.db" --format $f >"$tmp/r.stdout" 2>/dev/null
  check "--format $f --out FILE writes what standard output gets" cmp -s "$tmp/r.$f" "$tmp/r.stdout"
done
"$syncsim" report --help >"$tmp/help"
check "report --help documents --format html and --out" \
  sh -c "grep -q 'table|csv|json|html' '$tmp/help' && grep -q -- '--out FILE' '$tmp/help'"

# --- a browser draws it ----------------------------------------------------------------------
chrome=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chrome" ]; then
  bad "chromium is not installed: ./setup.sh test installs it (Debian package chromium)"
else
  timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --user-data-dir="$tmp/chromium" --screenshot="$tmp/evil.png" --window-size=1200,3000 \
    "file://$tmp/evil.html" >"$tmp/chromium.log" 2>&1
  python3 - "$tmp/evil.png" >"$tmp/check" 2>&1 <<'EOF'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1200, 3000), f"{w}x{h}, expected 1200x3000"
pos, idat = 8, b""
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    if kind == b"IDAT":
        idat += data[pos + 8:pos + 8 + n]
    pos += 12 + n
pixels = zlib.decompress(idat)
assert len(set(pixels)) > 50, "a blank screenshot"
EOF
  rc=$?
  check "headless Chromium draws the page to a non-blank 1200x3000 PNG: $(cat "$tmp/check")
$(tail -3 "$tmp/chromium.log")" test $rc -eq 0
fi

echo "html: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
