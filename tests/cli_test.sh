#!/usr/bin/env bash
# End-to-end tests of the syncsim command line: exit codes, messages, the database, and
# interrupts. Usage: cli_test.sh PATH/TO/syncsim SOURCE_DIR
set -u
syncsim=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok; else bad "$what"; fi
}

minimal=$src/scenarios/examples/minimal.json

# --- version, help, usage -------------------------------------------------------------
out=$("$syncsim" --version)
check "--version prints the version" grep -q '^syncsim [0-9]' <<<"$out"
for cmd in run validate list bench; do
  "$syncsim" $cmd --help >"$tmp/help" 2>&1
  check "$cmd --help exits 0" test $? -eq 0
  check "$cmd --help prints usage" grep -q "usage: syncsim $cmd" "$tmp/help"
done
"$syncsim" --help >/dev/null
check "--help exits 0" test $? -eq 0
"$syncsim" frobnicate 2>/dev/null
check "an unknown command exits 2" test $? -eq 2
"$syncsim" run 2>/dev/null
check "run without a scenario exits 2" test $? -eq 2
"$syncsim" run "$minimal" --bogus 2>/dev/null
check "an unknown option exits 2" test $? -eq 2
"$syncsim" run "$minimal" --threads 0 2>"$tmp/err"
check "--threads 0 exits 2" test $? -eq 2
check "--threads 0 says what it expects" grep -q "expected an integer from 1" "$tmp/err"
"$syncsim" list policies >"$tmp/list"
check "list policies exits 0 and shows local_sgd" grep -q '"local_sgd"' "$tmp/list"

# --- the schema reference in scenarios/README.md is the tables' own output -------------
sed -n '/^<!-- BEGIN generated: syncsim list keys --markdown -->$/,/^<!-- END generated -->$/p' \
  "$src/scenarios/README.md" | sed '1d;$d' >"$tmp/readme_keys.md"
"$syncsim" list keys --markdown >"$tmp/keys.md"
check "scenarios/README.md's reference matches 'syncsim list keys --markdown' (run scenarios/update_reference.sh)" \
  cmp -s "$tmp/readme_keys.md" "$tmp/keys.md"
for what in models datasets; do
  "$syncsim" list $what >/dev/null
  check "list $what exits 0" test $? -eq 0
done
"$syncsim" bench --quick --only softmax >"$tmp/bench" 2>&1
check "bench --quick runs: $(cat "$tmp/bench")" grep -q '^softmax 784-10 ' "$tmp/bench"
"$syncsim" list frobs 2>/dev/null
check "list of an unknown thing exits 2" test $? -eq 2

# --- a good run -------------------------------------------------------------------------
"$syncsim" run "$minimal" --db "$tmp/a.db" --quiet >"$tmp/run.out" 2>"$tmp/run.err"
check "run of the minimal scenario exits 0" test $? -eq 0
check "one summary line per run" test "$(grep -c '^run ' "$tmp/run.out")" -eq 2
rows=$(sqlite3 "$tmp/a.db" "select policy || ':' || status from runs order by id" | tr '\n' ' ')
check "every policy of the scenario is done ($rows)" test "$rows" = "ddp:done local_sgd:done "
n=$(sqlite3 "$tmp/a.db" "select count(*) from metrics where kind = 'eval'")
check "eval metrics recorded ($n)" test "$n" -ge 40
n=$(sqlite3 "$tmp/a.db" "select count(*) from workers")
check "one workers row per worker and run ($n)" test "$n" -eq 8
n=$(sqlite3 "$tmp/a.db" "select count(*) from workers w join runs r on r.id = w.run_id
  where abs(compute_s + comm_s + idle_s - r.sim_time_s) > 1e-6")
check "compute + comm + idle = sim time for every worker" test "$n" -eq 0

# --- analysis/README.md documents every table, view and column of the schema -----------
for t in $(sqlite3 "$tmp/a.db" "select name from sqlite_master where type in ('table','view')"); do
  check "analysis/README.md documents $t" grep -q "^### \`$t\`" "$src/analysis/README.md"
  for c in $(sqlite3 "$tmp/a.db" "select name from pragma_table_info('$t')"); do
    check "analysis/README.md documents $t.$c" grep -q "\`$c\`" "$src/analysis/README.md"
  done
done
q=$(grep -c '^```sql$' "$src/analysis/README.md")
check "analysis/README.md has example queries ($q)" test "$q" -ge 4
sed -n '/^```sql$/,/^```$/p' "$src/analysis/README.md" | grep -v '^```' >"$tmp/examples.sql"
sqlite3 "$tmp/a.db" <"$tmp/examples.sql" >/dev/null 2>"$tmp/err"
check "analysis/README.md's example queries run: $(cat "$tmp/err")" test ! -s "$tmp/err"

# --- determinism: the same scenario twice gives identical metrics rows -------------------
"$syncsim" run "$minimal" --db "$tmp/a.db" --quiet >/dev/null 2>&1
metrics() { # metrics DB RUN_ID
  sqlite3 "$1" "select kind, sim_time_s, step, examples, bytes, quote(loss), quote(accuracy)
                from metrics where run_id = $2 order by rowid"
}
for pair in "1 3" "2 4"; do
  set -- $pair
  metrics "$tmp/a.db" "$1" >"$tmp/m1"
  metrics "$tmp/a.db" "$2" >"$tmp/m2"
  check "run $2 repeats run $1 row for row" cmp -s "$tmp/m1" "$tmp/m2"
  check "run $1 has metrics" test -s "$tmp/m1"
done
h=$(sqlite3 "$tmp/a.db" "select count(distinct config_hash) from runs")
check "the same config has the same hash ($h hashes for 4 runs of 2 configs)" test "$h" -eq 2

# --- validate ---------------------------------------------------------------------------
"$syncsim" validate "$minimal" >"$tmp/v.out"
check "validate of a good scenario exits 0" test $? -eq 0
check "validate names the runs" grep -q 'ddp local_sgd' "$tmp/v.out"

# --- malformed scenarios: exit 2, one clear message, nothing written --------------------
bad_case() { # bad_case NAME JSON EXPECTED_MESSAGE_REGEX
  local name=$1 json=$2 want=$3
  printf '%s\n' "$json" >"$tmp/$name.json"
  for cmd in validate run; do
    "$syncsim" $cmd "$tmp/$name.json" --db "$tmp/$name.db" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    check "$cmd $name exits 2 (got $rc)" test $rc -eq 2
    check "$cmd $name prints one line" test "$(wc -l <"$tmp/err")" -eq 1
    check "$cmd $name message matches '$want': $(cat "$tmp/err")" grep -Eq "$want" "$tmp/err"
    check "$cmd $name writes no database" test ! -e "$tmp/$name.db"
  done
}
tail='"policies": [{"type": "ddp"}], "stop": {"sim_time_s": 10}'
bad_case syntax $'{\n  "seed": 1\n  "cluster": {}\n}' 'syntax\.json:3:3: expected valid JSON'
bad_case unknown "{\"clustr\": {}, $tail}" 'clustr: unknown key; expected one of: .*cluster'
bad_case type "{\"cluster\": {\"workers\": \"eight\"}, $tail}" \
  'cluster\.workers: expected an integer .*got "eight"'
bad_case bandwidth "{\"cluster\": {\"network\": {\"bandwidth_gbps\": -1}}, $tail}" \
  'cluster\.network\.bandwidth_gbps: expected a number in \(0, .*got -1'
bad_case zero_workers "{\"cluster\": {\"workers\": 0}, $tail}" \
  'cluster\.workers: expected an integer in \[1, .*got 0'
"$syncsim" run "$minimal" --db "$tmp/set.db" --set cluster.workers=-2 2>"$tmp/err"
check "a bad --set exits 2" test $? -eq 2
check "a bad --set names the path" grep -q 'cluster.workers: expected an integer' "$tmp/err"
check "a bad --set writes no database" test ! -e "$tmp/set.db"
"$syncsim" run "$minimal" --db "$tmp/nodir/x.db" 2>"$tmp/err"
check "an unopenable database exits 2" test $? -eq 2
check "an unopenable database is named" grep -q "nodir/x.db" "$tmp/err"

# --- overrides reach the run --------------------------------------------------------------
"$syncsim" run "$minimal" --db "$tmp/o.db" --quiet --set policies.local_sgd.H=4 \
  --set stop.sim_time_s=30 >/dev/null
check "a run with overrides exits 0" test $? -eq 0
h=$(sqlite3 "$tmp/o.db" "select json_extract(config_json, '\$.policies[0].H') from runs
  where label = 'local_sgd'")
check "the override is in the stored config (H=$h)" test "$h" = 4

# --- the timeline log -----------------------------------------------------------------------
"$syncsim" run "$minimal" --db "$tmp/tl.db" --quiet --set record.timeline=20 >/dev/null
n=$(sqlite3 "$tmp/tl.db" "select count(*) from timeline group by run_id" | tr '\n' ' ')
check "record.timeline=20 logs 20 intervals per run ($n)" test "$n" = "20 20 "
n=$(sqlite3 "$tmp/tl.db" "select count(*) from timeline where end_s <= start_s or kind not in ('compute','comm')")
check "timeline intervals are well formed" test "$n" -eq 0

# --- failures reach the database ------------------------------------------------------------
"$syncsim" run "$minimal" --db "$tmp/fail.db" --quiet --set cluster.failures.mttf_s=20 \
  --set cluster.failures.repair_s=5 >/dev/null
check "a run with failures exits 0" test $? -eq 0
n=$(sqlite3 "$tmp/fail.db" "select count(*) from outages")
check "outages are recorded ($n)" test "$n" -gt 0
n=$(sqlite3 "$tmp/fail.db" "select count(*) from workers w join runs r on r.id = w.run_id
  where abs(compute_s + comm_s + idle_s + down_s - r.sim_time_s) > 1e-6 or down_s <= 0")
check "compute + comm + idle + down = sim time, and every worker was down a while" test "$n" -eq 0

# --- interrupts ---------------------------------------------------------------------------
for sig in INT TERM; do
  "$syncsim" run "$minimal" --db "$tmp/int.db" --quiet --set stop.sim_time_s=1e9 \
    --set eval.every_s=1 >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do # wait until the run's row exists and some metrics are in
    n=$(sqlite3 "$tmp/int.db" "select count(*) from runs where status = 'running'" 2>/dev/null)
    [ "${n:-0}" -ge 1 ] && break
    sleep 0.05
  done
  sleep 0.5
  kill -$sig $pid
  wait $pid
  rc=$?
  check "SIG$sig exits 130 (got $rc)" test $rc -eq 130
  st=$(sqlite3 "$tmp/int.db" "select status from runs order by id desc limit 1")
  check "SIG$sig leaves the run 'interrupted' (got $st)" test "$st" = interrupted
  n=$(sqlite3 "$tmp/int.db" "select count(*) from metrics where run_id =
    (select max(id) from runs)")
  check "SIG$sig keeps the metrics measured so far ($n)" test "$n" -gt 1
  n=$(sqlite3 "$tmp/int.db" "select count(*) from runs")
  check "SIG$sig starts no further run" test "$n" -eq $([ $sig = INT ] && echo 1 || echo 2)
done

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
