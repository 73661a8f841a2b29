#!/usr/bin/env bash
# End-to-end tests of the syncsim command line: exit codes, messages, the database, and
# interrupts. Usage: cli_test.sh PATH/TO/syncsim SOURCE_DIR
set -u
syncsim=$1
src=$2
# shellcheck source=tests/test_lib.sh
. "$src/tests/test_lib.sh"

wait_count() { # wait_count DB STATUS N: until N runs have that status (10 s at most)
  local n
  for _ in $(seq 200); do
    n=$(sqlite3 "$1" "select count(*) from runs where status = '$2'" 2>/dev/null)
    [ "${n:-0}" -ge "$3" ] && return
    sleep 0.05
  done
}

minimal=$src/scenarios/examples/minimal.json

# --- version, help, usage -------------------------------------------------------------
out=$("$syncsim" --version)
check "--version prints the version" grep -q '^syncsim [0-9]' <<<"$out"
for cmd in run validate list bench sweep report plot merge; do
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
for what in models datasets distributions; do
  "$syncsim" list $what >"$tmp/list"
  check "list $what exits 0" test $? -eq 0
done
check "list distributions shows the speed distributions" grep -q '"two_class"' "$tmp/list"
"$syncsim" bench --quick --only softmax >"$tmp/bench" 2>&1
check "bench --quick runs: $(cat "$tmp/bench")" grep -q '^softmax 784-10 ' "$tmp/bench"
"$syncsim" bench --engine --quick --only ddp >"$tmp/bench" 2>&1
check "bench --engine measures DDP at 1,000, 10,000 and 100,000 workers: $(cat "$tmp/bench")" \
  test "$(grep -cE '^ddp +(1000|10000|100000) +[0-9]+ +[0-9]+ +[0-9.]+ +[0-9]+$' "$tmp/bench")" -eq 3
"$syncsim" bench --threads --quick --only ddp >"$tmp/bench" 2>&1
check "bench --threads times DDP with 1 and 2 threads: $(cat "$tmp/bench")" \
  grep -qE '^ddp +[0-9.]+ +[0-9.]+ +[0-9.]+$' "$tmp/bench"
"$syncsim" bench --threads --engine >/dev/null 2>&1
check "bench --threads --engine is refused" test $? -eq 2
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

# the runs of one `run` share the dataset (built once): a run after another gets the same
# results as alone
grep -v '"type": "ddp"' "$minimal" >"$tmp/minimal_local.json"
"$syncsim" run "$tmp/minimal_local.json" --db "$tmp/alone.db" --quiet >/dev/null 2>&1
metrics="select group_concat(kind || ' ' || sim_time_s || ' ' || loss || ' ' || accuracy, ';')
  from (select * from metrics m join runs r on r.id = m.run_id where r.policy = 'local_sgd'
  order by m.rowid)"
after=$(sqlite3 "$tmp/a.db" "$metrics")
alone=$(sqlite3 "$tmp/alone.db" "$metrics")
check "a run after another in one process records what it records alone" \
  test -n "$alone" -a "$after" = "$alone"

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
"$syncsim" validate "$minimal" 2>"$tmp/v.err" >/dev/null
check "validate notes nothing when the policies' inner settings are equal: $(cat "$tmp/v.err")" \
  test ! -s "$tmp/v.err"
"$syncsim" validate "$minimal" --set 'policies.local_sgd={"type": "diloco", "H": 4,
  "inner": {"opt": "adamw", "lr": 0.1}}' --set 'policies.ddp.inner.opt=adamw' 2>"$tmp/v.err" >"$tmp/v.out"
check "--set replaces a whole policy by label: $(cat "$tmp/v.out")" grep -q "runs: ddp diloco" "$tmp/v.out"
check "validate notes the policies' unequal inner defaults: $(cat "$tmp/v.err")" \
  test "$(cat "$tmp/v.err")" = "note: the policies' inner.weight_decay differ: ddp 0.01, diloco 0.1
note: the policies' inner.clip differ: ddp null, diloco 1"
# A sweep: --print shows every distinct run (local_sgd's is the same at both points), and the
# notes cover every point
"$syncsim" validate "$minimal" --set 'sweep.policies.ddp.inner.lr=[0.1,0.2]' --print \
  2>"$tmp/v.err" >"$tmp/v.out"
check "validate --print of a sweep prints its 3 distinct runs" \
  test "$(grep -c '^{"name"' "$tmp/v.out")" -eq 3
check "validate notes what differs at a sweep point: $(cat "$tmp/v.err")" \
  test "$(cat "$tmp/v.err")" = "note: the policies' inner.lr differ: ddp 0.2, local_sgd 0.1"

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
# Traces: regular files of bounded size, every row parsed strictly, a header only when it is
# one, relative paths from the scenario's folder (these scenarios are in $tmp; ctest runs
# elsewhere)
printf 'time_s,worker,speed\n0.5,*,inf\n' >"$tmp/tr_inf.csv"
printf '0.5,*,1e400\n' >"$tmp/tr_big.csv"
printf '0.5,*,0.5 junk\n' >"$tmp/tr_junk.csv"
printf 'garbage,row,here\n0.5,*,0.5\n' >"$tmp/tr_header.csv"
printf '0.5,*,0x10\n' >"$tmp/tr_hex.csv"
python3 -c "print('0.5,*,' + '1' * 2000)" >"$tmp/tr_long.csv"
printf '0.5,*,0.5\n0.7,\0,1\n' >"$tmp/tr_nul.csv"
printf 'time_s,link,bandwidth_gbps,latency_s\n1,*,10,inf\n' >"$tmp/trn_inf.csv"
printf '1,*,10,0.001,9\n' >"$tmp/trn_extra.csv"
mkdir -p "$tmp/tr_dir"
mkfifo "$tmp/tr_fifo"
for c in "inf:tr_inf.csv:tr_inf\\.csv:2: expected time_s,worker,speed" \
         "big:tr_big.csv:tr_big\\.csv:1: expected" "junk:tr_junk.csv:tr_junk\\.csv:1: expected" \
         "header:tr_header.csv:tr_header\\.csv:1: expected" "hex:tr_hex.csv:tr_hex\\.csv:1: expected" \
         "long:tr_long.csv:tr_long\\.csv:1: expected a line of at most" \
         "nul:tr_nul.csv:tr_nul\\.csv:2: expected text" \
         "dir:tr_dir:tr_dir: expected a regular file" "fifo:tr_fifo:tr_fifo: expected a regular file" \
         "zero:/dev/zero:/dev/zero: expected a regular file" \
         "missing:tr_none.csv:$tmp/tr_none\\.csv: cannot open"; do
  IFS=: read -r name file want <<<"$c"
  bad_case "trace_$name" "{\"cluster\": {\"compute\": {\"trace\": \"$file\"}}, $tail}" \
    "cluster\\.compute\\.trace: .*$want"
done
bad_case trace_net_inf "{\"cluster\": {\"network\": {\"trace\": \"trn_inf.csv\"}}, $tail}" \
  'cluster\.network\.trace: .*trn_inf\.csv:2: expected time_s,link'
bad_case trace_net_extra "{\"cluster\": {\"network\": {\"trace\": \"trn_extra.csv\"}}, $tail}" \
  'cluster\.network\.trace: .*trn_extra\.csv:1: expected time_s,link'
printf 'time_s,worker,speed\n0.5,*,0.5\n' >"$tmp/tr_ok.csv"
printf '{"cluster": {"compute": {"trace": "tr_ok.csv"}}, %s}\n' "$tail" >"$tmp/trace_ok.json"
"$syncsim" validate "$tmp/trace_ok.json" --print >"$tmp/out" 2>"$tmp/err"
rc=$?
check "a trace beside its scenario is found from another folder: $(cat "$tmp/err")" test $rc -eq 0
check "... and the resolved config holds its joined path" grep -q "\"trace\":\"$tmp/tr_ok.csv\"" "$tmp/out"
mkdir -p "$tmp/sub"
(cd "$tmp/sub" && "$syncsim" validate ../sub/../trace_ok.json --print) >"$tmp/out2" 2>&1
check "... the same absolute path from any directory (so the same config hash)" \
  cmp -s <(grep '^{' "$tmp/out") <(grep '^{' "$tmp/out2")
# What run would find before its first event, validate finds first: datasets that are
# missing, empty, garbage or not files, a split that starves a worker, a step time that
# cannot be derived
mkdir -p "$tmp/fm_garbage" "$tmp/fm_empty"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz \
         t10k-labels-idx1-ubyte.gz; do
  echo garbage >"$tmp/fm_garbage/$f"
done
: >"$tmp/empty_corpus.txt"
fm='"workload": {"model": {"type": "mlp", "hidden": [4]}, "dataset": {"type": "fashion-mnist", "dir": '
tx='"workload": {"model": {"type": "transformer", "width": 8, "heads": 2, "layers": 1, "context": 8}, "dataset": {"type": "text", "path": '
bad_case fashion_missing "{$fm \"fm_none\"}}, $tail}" \
  "workload\\.dataset\\.dir: .*fm_none/train-images-idx3-ubyte\\.gz: cannot open"
bad_case fashion_empty_dir "{$fm \"fm_empty\"}}, $tail}" \
  "workload\\.dataset\\.dir: .*fm_empty/train-images-idx3-ubyte\\.gz: cannot open"
bad_case fashion_garbage "{$fm \"fm_garbage\"}}, $tail}" \
  "workload\\.dataset\\.dir: .*fm_garbage/train-images-idx3-ubyte\\.gz: not an IDX file"
bad_case corpus_empty "{$tx \"empty_corpus.txt\"}}, $tail}" \
  "workload\\.dataset\\.path: .*empty_corpus\\.txt: 0 bytes"
bad_case corpus_missing "{$tx \"no_corpus.txt\"}}, $tail}" \
  "workload\\.dataset\\.path: .*no_corpus\\.txt: No such file"
bad_case corpus_device "{$tx \"/dev/zero\"}}, $tail}" \
  "workload\\.dataset\\.path: /dev/zero: expected a regular file or a directory"
bad_case dirichlet_starves "{\"workload\": {\"partition\": {\"type\": \"dirichlet\", \"alpha\": 0.001}}, \"cluster\": {\"workers\": 64}, $tail}" \
  'workload\.partition\.alpha: a Dirichlet\(0\.001\) split left a worker without examples'
bad_case tflops_no_flops "{\"workload\": {\"model\": {\"type\": \"none\", \"params\": 1000}}, \"cluster\": {\"compute\": {\"device_tflops\": 1}}, $tail}" \
  'cluster\.compute\.flops_per_step: expected a FLOP count'
printf '{"workload": {"model": {"type": "none", "params": 1000}}, "cluster": {"workers": 10000}, %s}\n' \
  "$tail" >"$tmp/many.json"
"$syncsim" validate "$tmp/many.json" >/dev/null 2>"$tmp/err"
rc=$?
check "10,000 timing-only workers do not need the unused dataset's examples: $(cat "$tmp/err")" \
  test $rc -eq 0
"$syncsim" sweep "$minimal" --shard 1/2x --db "$tmp/shard.db" 2>"$tmp/err"
rc=$?
check "--shard 1/2x exits 2: $(cat "$tmp/err")" test $rc -eq 2
check "... writing nothing" test ! -e "$tmp/shard.db"
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
n=$(sqlite3 "$tmp/tl.db" "select count(*) from timeline where end_s <= start_s or kind not in ('compute','allreduce')")
check "timeline intervals are well formed" test "$n" -eq 0
"$syncsim" run "$src/tests/fixtures/halos_identity_async.json" --db "$tmp/tla.db" --quiet \
  --set record.timeline=200 >/dev/null
n=$(sqlite3 "$tmp/tla.db" "select group_concat(kind) from (select distinct kind from timeline
  order by kind)")
check "an asynchronous run's timeline tells pulls from pushes ($n)" test "$n" = "compute,pull,push"

# --- failures reach the database ------------------------------------------------------------
"$syncsim" run "$minimal" --db "$tmp/fail.db" --quiet --set cluster.failures.mttf_s=20 \
  --set cluster.failures.repair_s=5 >/dev/null
check "a run with failures exits 0" test $? -eq 0
n=$(sqlite3 "$tmp/fail.db" "select count(*) from outages")
check "outages are recorded ($n)" test "$n" -gt 0
n=$(sqlite3 "$tmp/fail.db" "select count(*) from workers w join runs r on r.id = w.run_id
  where abs(compute_s + comm_s + idle_s + down_s + blocked_s - r.sim_time_s) > 1e-6 or down_s <= 0")
check "compute + comm + idle + down + blocked = sim time, and every worker was down a while" test "$n" -eq 0
n=$(sqlite3 "$tmp/fail.db" "select count(*) from workers where blocked_s > 0")
check "workers held by a down peer are blocked, not communicating ($n)" test "$n" -gt 0

# --- sweeps: resume, shards, jobs, merge ----------------------------------------------------
fixture=$src/tests/fixtures/sweep_small.json
dump() { # dump DB: every run's metrics, keyed by config hash, in a run-id-free order
  sqlite3 "$1" "select r.config_hash, r.status, r.sweep_point, m.kind, m.sim_time_s, m.step,
                m.examples, m.bytes, quote(m.loss), quote(m.accuracy)
                from runs r join metrics m on m.run_id = r.id order by r.config_hash, m.rowid"
}
"$syncsim" sweep "$fixture" --db "$tmp/sw.db" --quiet >"$tmp/sw.out"
check "sweep of the fixture exits 0" test $? -eq 0
n=$(sqlite3 "$tmp/sw.db" "select count(*) || ' ' || count(distinct config_hash) || ' ' ||
  sum(status = 'done') || ' ' || count(distinct sweep_id) from runs")
check "6 points x 2 policies = 9 distinct runs (DDP ignores H), all done, one sweep ($n)" \
  test "$n" = "9 9 9 1"
n=$(sqlite3 "$tmp/sw.db" "select count(*) from runs where policy = 'ddp' and sweep_point like '%H%'")
check "DDP's sweep point leaves out the H axis" test "$n" -eq 0
n=$(sqlite3 "$tmp/sw.db" "select count(*) from runs where
  json_extract(config_json, '\$.policies[0].H') != json_extract(sweep_point, '\$.\"policies.local_sgd.H\"')
  or json_extract(config_json, '\$.seed') != json_extract(sweep_point, '\$.seed') or seed != json_extract(sweep_point, '\$.seed')")
check "each run's config is its sweep point" test "$n" -eq 0
"$syncsim" sweep "$fixture" --db "$tmp/sw.db" --quiet >"$tmp/sw.out"
check "re-running a finished sweep exits 0" test $? -eq 0
n=$(sqlite3 "$tmp/sw.db" "select count(*) from runs")
check "re-running a finished sweep runs nothing ($n runs)" test "$n" -eq 9

"$syncsim" sweep "$fixture" --db "$tmp/res.db" --shard 1/2 --quiet >/dev/null
n1=$(sqlite3 "$tmp/res.db" "select count(*) from runs")
"$syncsim" sweep "$fixture" --db "$tmp/res.db" --quiet >/dev/null
n=$(sqlite3 "$tmp/res.db" "select count(*) || ' ' || count(distinct config_hash) || ' ' ||
  count(distinct sweep_id) from runs")
check "a resumed sweep runs only what is missing ($n1 then $n)" test "$n1" -gt 0 -a "$n1" -lt 9 \
  -a "$n" = "9 9 1"
dump "$tmp/sw.db" >"$tmp/d1"
dump "$tmp/res.db" >"$tmp/d2"
check "the resumed sweep equals the one-go sweep row for row" cmp -s "$tmp/d1" "$tmp/d2"

# interrupted after some runs (SIGINT), then run again: only the missing runs run
long="--set stop.sim_time_s=6000" # about 0.7 s per run
"$syncsim" sweep "$fixture" --db "$tmp/intr.db" $long --quiet >/dev/null 2>&1 &
pid=$!
wait_count "$tmp/intr.db" done 2
kill -INT $pid
wait $pid
rc=$?
check "an interrupted sweep exits 130 (got $rc)" test $rc -eq 130
done1=$(sqlite3 "$tmp/intr.db" "select count(*) from runs where status = 'done'")
n=$(sqlite3 "$tmp/intr.db" "select count(*) from runs where status = 'interrupted'")
# (no run is interrupted when the signal falls between two runs)
check "the interrupted sweep has done runs ($done1) and at most one interrupted ($n)" \
  test "$done1" -ge 2 -a "$done1" -lt 9 -a "$n" -le 1
"$syncsim" sweep "$fixture" --db "$tmp/intr.db" $long --quiet >"$tmp/resume.out"
check "the resumed sweep exits 0" test $? -eq 0
n=$(grep -c '^run ' "$tmp/resume.out")
check "the resumed sweep runs only the $((9 - done1)) missing runs ($n)" test "$n" -eq $((9 - done1))
n=$(sqlite3 "$tmp/intr.db" "select count(*) || ' ' || count(distinct config_hash) from runs
  where status = 'done'")
check "after resuming, 9 distinct runs are done ($n)" test "$n" = "9 9"

# SIGTERM to the sweep process alone (as a batch scheduler sends it) stops its runs too
"$syncsim" sweep "$fixture" --db "$tmp/term.db" --jobs 2 --set stop.sim_time_s=1e9 --quiet \
  >/dev/null 2>&1 &
pid=$!
wait_count "$tmp/term.db" running 2
kill -TERM $pid
for _ in $(seq 200); do # 10 s at most, then kill everything
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
done
if kill -0 $pid 2>/dev/null; then
  pkill -KILL -P $pid
  kill -KILL $pid
fi
wait $pid
rc=$?
check "SIGTERM to a sweep exits 130 (got $rc)" test $rc -eq 130
n=$(sqlite3 "$tmp/term.db" "select group_concat(status) from runs")
check "SIGTERM to a sweep interrupts both running runs and starts no other ($n)" \
  test "$n" = "interrupted,interrupted"

for k in 1 2 3; do
  "$syncsim" sweep "$fixture" --db "$tmp/shard$k.db" --shard $k/3 --quiet >/dev/null
  check "shard $k/3 exits 0" test $? -eq 0
done
"$syncsim" merge "$tmp/merged.db" "$tmp/shard1.db" "$tmp/shard2.db" "$tmp/shard3.db" >/dev/null
check "merge of three shards exits 0" test $? -eq 0
dump "$tmp/merged.db" >"$tmp/d3"
check "three merged shards equal the unsharded sweep row for row" cmp -s "$tmp/d1" "$tmp/d3"
n=$(sqlite3 "$tmp/merged.db" "select count(distinct sweep_id) from runs")
check "merged shards are one sweep ($n)" test "$n" -eq 1
"$syncsim" merge "$tmp/merged.db" "$tmp/shard2.db" >/dev/null
n=$(sqlite3 "$tmp/merged.db" "select count(*) from runs")
check "merging a database again copies nothing ($n runs)" test "$n" -eq 9

"$syncsim" sweep "$fixture" --db "$tmp/j2.db" --jobs 2 --quiet >/dev/null
check "sweep --jobs 2 exits 0" test $? -eq 0
dump "$tmp/j2.db" >"$tmp/d4"
check "sweep --jobs 2 equals --jobs 1 row for row" cmp -s "$tmp/d1" "$tmp/d4"
"$syncsim" sweep "$fixture" --db "$tmp/t2.db" --threads 2 --quiet >/dev/null
dump "$tmp/t2.db" >"$tmp/d5"
check "sweep --threads 2 equals --threads 1 row for row" cmp -s "$tmp/d1" "$tmp/d5"

cp "$tmp/shard1.db" "$tmp/v2.db"
sqlite3 "$tmp/v2.db" "pragma user_version = 4"
cp "$tmp/merged.db" "$tmp/before.db"
"$syncsim" merge "$tmp/merged.db" "$tmp/shard3.db" "$tmp/v2.db" >/dev/null 2>"$tmp/err"
check "merge of a database of another schema version exits 2" test $? -eq 2
check "merge names the other version: $(cat "$tmp/err")" grep -q "v2.db.*version 4" "$tmp/err"
check "a refused merge writes nothing" cmp -s <(dump "$tmp/before.db") <(dump "$tmp/merged.db")
cp "$tmp/merged.db" "$tmp/before.db"
"$syncsim" merge "$tmp/merged.db" "$tmp/merged.db" 2>"$tmp/err"
rc=$?
check "merge of a database into itself exits 2: $(cat "$tmp/err")" test $rc -eq 2
check "... writing nothing" cmp -s "$tmp/before.db" "$tmp/merged.db"
"$syncsim" merge "$tmp/twice.db" "$tmp/shard1.db" "$tmp/shard1.db" 2>"$tmp/err"
rc=$?
check "merge of one input twice exits 2: $(cat "$tmp/err")" test $rc -eq 2
check "... creating nothing" test ! -e "$tmp/twice.db"
"$syncsim" merge "$tmp/new.db" "$tmp/nonexistent.db" 2>"$tmp/err"
check "merge of a missing database fails" test $? -ne 0
check "merge of a missing database creates nothing" test ! -e "$tmp/new.db"
printf '%s' '{"policies": [{"type": "ddp"}], "stop": {"steps": 2}, "sweep": {"cluster.workers": [2, 0]}}' \
  >"$tmp/badsweep.json"
for cmd in validate sweep; do
  "$syncsim" $cmd "$tmp/badsweep.json" --db "$tmp/bs.db" >/dev/null 2>"$tmp/err"
  check "$cmd of a bad sweep point exits 2" test $? -eq 2
  check "$cmd names the bad point: $(cat "$tmp/err")" \
    grep -q 'cluster.workers: expected an integer .*got 0 (at sweep point {"cluster.workers":0})' "$tmp/err"
  check "$cmd of a bad sweep writes no database" test ! -e "$tmp/bs.db"
done
"$syncsim" validate "$fixture" >"$tmp/v.out"
check "validate counts a sweep's points" grep -q 'sweep: 2 axes, 6 points' "$tmp/v.out"
"$syncsim" validate "$fixture" --set 'sweep={"seed": [1, 2]}' >"$tmp/v.out"
check "--set sweep={...} replaces the sweep: $(cat "$tmp/v.out")" grep -q 'sweep: 1 axis, 2 points' "$tmp/v.out"
"$syncsim" validate "$fixture" --set 'sweep.policies.local_sgd.H=[1,2,3]' >"$tmp/v.out"
check "--set sweep.AXIS=[...] sets one axis (dots and all): $(cat "$tmp/v.out")" \
  grep -q 'sweep: 2 axes, 9 points' "$tmp/v.out"
"$syncsim" sweep "$fixture" --db "$tmp/ss.db" --quiet --set 'sweep={"seed": [5]}' >/dev/null
n=$(sqlite3 "$tmp/ss.db" "select count(*) || ' ' || group_concat(distinct seed) from runs")
check "sweep --set sweep={...} runs that sweep ($n)" test "$n" = "2 5"
"$syncsim" run "$fixture" --db "$tmp/sr.db" --set 'sweep={"seed": [5]}' 2>"$tmp/err"
check "run refuses an override of the sweep it ignores" test $? -eq 2
check "run says why: $(cat "$tmp/err")" grep -q 'ignores its sweep' "$tmp/err"
check "a refused run writes no database" test ! -e "$tmp/sr.db"
"$syncsim" sweep "$fixture" --db "$tmp/x.db" --shard 4/3 2>"$tmp/err"
check "--shard 4/3 exits 2" test $? -eq 2
check "--shard 4/3 writes no database" test ! -e "$tmp/x.db"

# --- provenance: what every run's numbers depend on ---------------------------------------
numerics=$("$syncsim" --version | sed -n 's/.*(numerics \([0-9]*\),.*/\1/p')
kernels=$("$syncsim" --version | sed -n 's/.*kernels \([a-z0-9]*\))/\1/p')
check "--version names the numerics version ($numerics) and kernels ($kernels)" test -n "$numerics" -a -n "$kernels"
for _ in $(seq 60); do echo "the quick brown fox jumps over the lazy dog"; done >"$tmp/corpus.txt"
cat >"$tmp/text.json" <<EOF
{"name": "prov", "workload": {"model": {"type": "transformer", "width": 8, "heads": 2,
  "layers": 1, "context": 8}, "dataset": {"type": "text", "path": "$tmp/corpus.txt"},
  "batch_size": 2}, "cluster": {"workers": 2}, "policies": [{"type": "ddp"}],
  "stop": {"steps": 3}, "eval": {"examples": 4}, "sweep": {"seed": [1, 2]}}
EOF
"$syncsim" run "$tmp/text.json" --db "$tmp/prov.db" --quiet >/dev/null
check "a text run exits 0" test $? -eq 0
row=$(sqlite3 -separator '|' "$tmp/prov.db" "select numerics_version, kernels, cpu != '', host,
  command, inputs_json from runs")
want_hash=$(sha256sum "$tmp/corpus.txt" | cut -c1-64)
want_cmd="$syncsim run $tmp/text.json --db $tmp/prov.db --quiet"
check "runs record numerics, kernels, cpu, host, command and the corpus's SHA-256 ($row)" \
  test "$row" = "$numerics|$kernels|1|$(hostname)|$want_cmd|{\"$tmp/corpus.txt\":\"sha256:$want_hash\"}"
if git -C "$src" rev-parse HEAD >/dev/null 2>&1; then
  commit=$(sqlite3 "$tmp/prov.db" "select source_commit from runs")
  check "runs record the source commit ($commit)" \
    test "${commit%-dirty}" = "$(git -C "$src" rev-parse HEAD)"
fi
"$syncsim" sweep "$tmp/text.json" --db "$tmp/psw.db" --quiet >/dev/null
"$syncsim" sweep "$tmp/text.json" --db "$tmp/psw.db" --quiet >"$tmp/again.out"
check "a sweep over unchanged inputs runs nothing again" test "$(grep -c '^run ' "$tmp/again.out")" -eq 0
echo "one more line" >>"$tmp/corpus.txt"
"$syncsim" sweep "$tmp/text.json" --db "$tmp/psw.db" --quiet >"$tmp/again.out"
check "a sweep whose corpus changed runs every point again" \
  test "$(grep -c '^run ' "$tmp/again.out")" -eq 2
sqlite3 "$tmp/psw.db" "update runs set numerics_version = numerics_version + 1"
"$syncsim" sweep "$tmp/text.json" --db "$tmp/psw.db" --quiet >"$tmp/again.out"
check "a sweep does not reuse runs of another numerics version" \
  test "$(grep -c '^run ' "$tmp/again.out")" -eq 2

# --- a version-1 database keeps working --------------------------------------------------------
v1=$src/tests/fixtures/schema_v1.db
cp "$v1" "$tmp/v1.db"
"$syncsim" report "$tmp/v1.db" --format csv >"$tmp/v1.csv"
check "report reads a version-1 database" test $? -eq 0 -a "$(sed 1d "$tmp/v1.csv" | wc -l)" -eq 2
check "report leaves a version-1 database as it is" cmp -s "$v1" "$tmp/v1.db"
"$syncsim" plot "$tmp/v1.db" --out "$tmp/v1.svg" 2>/dev/null
check "plot reads a version-1 database" test $? -eq 0 -a -s "$tmp/v1.svg"
"$syncsim" migrate "$tmp/v1.db" >"$tmp/mig.out"
check "migrate upgrades version 1 to 3: $(cat "$tmp/mig.out")" grep -q 'upgraded from schema version 1 to 3' "$tmp/mig.out"
n=$(sqlite3 "$tmp/v1.db" "pragma user_version; select count(*) || ' ' || sum(numerics_version = 1) from runs;
  select count(*) from metrics" | tr '\n' ' ')
check "the upgraded database keeps its 2 runs and 26 metrics, numerics version 1 ($n)" test "$n" = "3 2 2 26 "
"$syncsim" migrate "$tmp/v1.db" >"$tmp/mig.out"
check "migrate of a current database says so" grep -q 'already at schema version 3' "$tmp/mig.out"
# a version-2 database (version 3 lacks only runs.pid) is read as it is and upgraded
cp "$tmp/a.db" "$tmp/v2f.db"
sqlite3 "$tmp/v2f.db" "alter table runs drop column pid; pragma user_version = 2"
"$syncsim" report "$tmp/v2f.db" >/dev/null 2>"$tmp/err"
rc=$?
check "report reads a version-2 database: $(cat "$tmp/err")" test $rc -eq 0
"$syncsim" migrate "$tmp/v2f.db" >"$tmp/mig.out"
check "migrate upgrades version 2 to 3: $(cat "$tmp/mig.out")" \
  test "$(sqlite3 "$tmp/v2f.db" "pragma user_version; select count(*) from pragma_table_info('runs') where name = 'pid'" | tr '\n' ' ')" = "3 1 "
cp "$v1" "$tmp/v1b.db"
"$syncsim" sweep "$fixture" --db "$tmp/v1b.db" --quiet --set 'sweep={"seed": [1]}' \
  >"$tmp/v1sw.out" 2>"$tmp/err"
rc=$?
check "a sweep into a version-1 database upgrades it and runs: $(cat "$tmp/err")" test $rc -eq 0 -a \
  "$(sqlite3 "$tmp/v1b.db" "pragma user_version")" -eq 3
n=$(sqlite3 "$tmp/v1b.db" "select count(*) from runs")
check "the old runs (numerics 1) are kept, not reused ($n runs)" test "$n" -gt 2
"$syncsim" merge "$tmp/mv1.db" "$v1" >/dev/null
n=$(sqlite3 "$tmp/mv1.db" "pragma user_version; select count(*) || ' ' || sum(numerics_version = 1) from runs" | tr '\n' ' ')
check "merge copies a version-1 database's runs ($n)" test "$n" = "3 2 2 "

# --- report: the statistics against values computed by hand ---------------------------------
# Three runs of one policy, stopped at 30 s, with final losses 1, 2, 3; runs 1 and 2 reach
# the target 0.5 at 10 s and 20 s, run 3 never does. Mean loss 2, 95% CI half-width
# t(0.975, 2) s / sqrt(3) = 4.302652729911275 / sqrt(3) = 2.484137712. Time to target:
# run 3 counts at its stop time, 30 s, so the mean, 20 s, is a lower bound (no interval).
"$syncsim" run "$minimal" --db "$tmp/fx.db" --quiet --set stop.sim_time_s=1 >/dev/null
sqlite3 "$tmp/fx.db" "
  delete from metrics; delete from workers; delete from runs where id > 1;
  update runs set scenario = 'fx', label = 'p', policy = 'ddp', seed = 1, config_hash = 'h1',
    sim_time_s = 30, config_json = json_set(config_json, '\$.eval.target_loss', 0.5);
  insert into runs(scenario, policy, label, seed, status, config_json, config_hash, started_at,
    version, sim_time_s) select scenario, policy, label, s.v, 'done', config_json, 'h' || s.v,
    started_at, version, 30 from runs, (select 2 as v union select 3) s;
  insert into metrics values (1, 'eval', 5, 1, 1, 100, 0.9, 0), (1, 'eval', 10, 2, 2, 100, 0.4, 0),
    (1, 'eval', 11, 2, 2, 100, 1, 0), (2, 'eval', 20, 2, 2, 100, 0.5, 0),
    (2, 'eval', 21, 2, 2, 100, 2, 0), (3, 'eval', 30, 2, 2, 100, 3, 0);
  update runs set final_loss = (select loss from final_eval where run_id = runs.id);"
"$syncsim" report "$tmp/fx.db" --format csv >"$tmp/rep.csv"
check "report --format csv exits 0" test $? -eq 0
row=$(sed -n 2p "$tmp/rep.csv" | tr -d '\r')
check "report: 3 runs, loss 2 ± 2.484137712, time > 20 (run 3 censored at 30 s), 1 never ($row)" \
  test "$row" = 'fx,p,ddp,,3,0,0,2,2.484137712,20,,>,1,1,,,,p,100,,,,,'
check "report's CSV lines end in CRLF (RFC 4180)" test "$(head -1 "$tmp/rep.csv" | od -c | grep -c '\\r  \\n')" -eq 1
# With the target 0.95 run 1 reaches it at 5 s: (5 + 20 + 30) / 3 = 18.33, still a bound.
"$syncsim" report "$tmp/fx.db" --target-loss 0.95 --format json >"$tmp/rep.json"
check "report --target-loss 0.95: > 18.33 s, one never: $(cat "$tmp/rep.json")" \
  grep -q '"time_to_target_s": 18.33333333, "time_to_target_ci95": null, "time_to_target_bound": ">", "never_reached": 1' \
  "$tmp/rep.json"
# A repeated identical run is one observation; diverged and failed runs are counted apart.
sqlite3 "$tmp/fx.db" "
  insert into runs(scenario, policy, label, seed, status, config_json, config_hash, started_at,
    version, sim_time_s, final_loss, numerics_version, inputs_json) select scenario, policy,
    label, seed, status, config_json, config_hash, started_at, version, sim_time_s, final_loss,
    numerics_version, inputs_json from runs where id = 1;
  insert into metrics select 4, kind, sim_time_s, step, examples, bytes, loss, accuracy
    from metrics where run_id = 1;
  insert into runs(scenario, policy, label, seed, status, config_json, config_hash, started_at,
    version) select scenario, policy, label, 7, 'diverged', config_json, 'h7', started_at, version
    from runs where id = 1;
  insert into runs(scenario, policy, label, seed, status, config_json, config_hash, started_at,
    version) select scenario, policy, label, 8, 'failed', config_json, 'h8', started_at, version
    from runs where id = 1;"
"$syncsim" report "$tmp/fx.db" --format csv >"$tmp/rep.csv"
row=$(sed -n 2p "$tmp/rep.csv" | tr -d '\r' | cut -d, -f1-10)
check "a repeated run counts once; one diverged, one failed ($row)" \
  test "$row" = 'fx,p,ddp,,3,1,1,2,2.484137712,20'
"$syncsim" report "$tmp/fx.db" --target-loss 0.95 >"$tmp/rep.txt"
check "the table prints the bound: $(cat "$tmp/rep.txt")" grep -q '> 18.3' "$tmp/rep.txt"
"$syncsim" report "$tmp/fx.db" --baseline nope 2>"$tmp/err"
rc=$?
check "report --baseline of an unknown label exits 2: $(cat "$tmp/err")" test $rc -eq 2

# The speedup on a two-axis sweep (bandwidth x H), against the baseline at the same bandwidth
# (DDP's runs have no H): DDP takes 60 and 80 s (mean 70) at 1 Gbit/s, 18 and 22 s (20) at
# 10 Gbit/s; Local SGD at H=8 takes 30 s at 1 Gbit/s (70/30 = 2.333) and 25 s at 10 Gbit/s
# (20/25 = 0.8); at H=16 and 1 Gbit/s one seed never reaches the target (stop 300 s):
# (40 + 300) / 2 = 170 s is a lower bound and 70/170 = 0.4118 an upper one.
cp "$tmp/fx.db" "$tmp/sw2.db"
sqlite3 "$tmp/sw2.db" "delete from metrics; delete from runs where id > 1;"
cp "$tmp/sw2.db" "$tmp/sw3.db"
db=$tmp/sw2.db
add_run() { # add_run LABEL POLICY SEED BW H TIME_OR_NULL (into $db)
  local point
  if [ "$5" = - ]; then point="{\"cluster.network.bandwidth_gbps\":$4,\"seed\":$3}"
  else point="{\"cluster.network.bandwidth_gbps\":$4,\"policies.$1.H\":$5,\"seed\":$3}"; fi
  sqlite3 "$db" "
    insert into runs(scenario, policy, label, seed, status, config_json, config_hash, started_at,
      version, sim_time_s, sweep_point, final_loss) select 'sw2', '$2', '$1', $3, 'done',
      config_json, '$1-$3-$4-$5', started_at, version, 300, '$point', 0.5 from runs where id = 1;
    insert into metrics select max(id), 'eval', coalesce($6, 300), 9, 9, 9,
      case when $6 is null then 0.9 else 0.4 end, 0 from runs;"
}
add_run ddp ddp 1 1 - 60; add_run ddp ddp 2 1 - 80; add_run ddp ddp 1 10 - 18; add_run ddp ddp 2 10 - 22
add_run ls local_sgd 1 1 8 30; add_run ls local_sgd 2 1 8 30
add_run ls local_sgd 1 10 8 25; add_run ls local_sgd 2 10 8 25
add_run ls local_sgd 1 1 16 40; add_run ls local_sgd 2 1 16 null
sqlite3 "$tmp/sw2.db" "delete from runs where id = 1"
"$syncsim" report "$tmp/sw2.db" --format json >"$tmp/rep.json"
rows=$(sed -n 's/.*"label": "\([a-z]*\)", .*"point": "\([^"]*\)", .*"time_to_target_s": \([0-9.]*\), .*"time_to_target_bound": \([^,]*\), .*"speedup": \([0-9.]*\), .*"speedup_bound": \([^,]*\), .*/\1|\2|\3|\4|\5|\6/p' "$tmp/rep.json" | tr '\n' ' ')
check "two-axis sweep: each speedup against DDP at its own bandwidth, rows by point ($rows)" \
  test "$rows" = 'ddp|bandwidth_gbps=1|70|null|1|null ls|bandwidth_gbps=1, H=8|30|null|2.333333333|null ls|bandwidth_gbps=1, H=16|170|">"|0.4117647059|"<" ddp|bandwidth_gbps=10|20|null|1|null ls|bandwidth_gbps=10, H=8|25|null|0.8|null '
# The same runs stored in another order (as --jobs, --shard and merge do) give the same report,
# bootstrap intervals and row order included.
db=$tmp/sw3.db
add_run ls local_sgd 2 1 16 null; add_run ls local_sgd 1 10 8 25; add_run ddp ddp 2 10 - 22
add_run ls local_sgd 1 1 8 30; add_run ddp ddp 2 1 - 80; add_run ls local_sgd 2 10 8 25
add_run ddp ddp 1 10 - 18; add_run ls local_sgd 1 1 16 40; add_run ddp ddp 1 1 - 60
add_run ls local_sgd 2 1 8 30
sqlite3 "$tmp/sw3.db" "delete from runs where id = 1"
db=$tmp/sw2.db
"$syncsim" report "$tmp/sw2.db" --format json >"$tmp/a.json"
"$syncsim" report "$tmp/sw3.db" --format json >"$tmp/b.json"
check "the report does not depend on the order the runs were stored in" cmp -s "$tmp/a.json" "$tmp/b.json"
check "... and the rows have bootstrap intervals to compare" grep -q '"speedup_ci_low": [0-9]' "$tmp/a.json"
# Grouping: label is always a key (no row mixes policies); a left-out axis is pooled, with a note.
"$syncsim" report "$tmp/sw2.db" --group-by H --format csv >"$tmp/rep.csv" 2>"$tmp/err"
check "--group-by H keeps the label: 3 rows ($(cut -d, -f2,4 "$tmp/rep.csv" | tr '\r\n' '  '))" \
  test "$(tail -n +2 "$tmp/rep.csv" | cut -d, -f2,4 | tr -d '\r' | tr '\n' ' ')" = 'ddp, ls,H=8 ls,H=16 '
check "--group-by H notes the pooled bandwidths: $(cat "$tmp/err")" \
  grep -q "note: rows pool runs with different values of cluster.network.bandwidth_gbps" "$tmp/err"
# Grouped by seed alone, bandwidth and H are pooled on both sides: DDP's seed 1 (60, 18 s:
# 39) against ls's seed 1 (30, 25, 40 s: 31.67) is 0.812; seed 2 (80, 22: 51) against ls's
# (30, 25 and a censored 300: > 118.3) is > 2.320.
# (DDP's runs renamed so that its first run per seed is the 10 Gbit/s one, ls's the 1 Gbit/s:
# pooled axes must not be matched, whichever run comes first.)
cp "$tmp/sw2.db" "$tmp/sw4.db"
sqlite3 "$tmp/sw4.db" "update runs set config_hash = 'z' || config_hash
  where policy = 'ddp' and json_extract(sweep_point, '$.\"cluster.network.bandwidth_gbps\"') = 1"
"$syncsim" report "$tmp/sw4.db" --group-by seed --baseline ls --format csv >"$tmp/rep.csv" 2>"$tmp/err"
got=$(awk -F, '$2 == "ddp" {printf "%s|%s|%s ", $4, $14, $17}' "$tmp/rep.csv")
check "--group-by seed pools the other axes on both sides ($got)" \
  test "$got" = 'seed=1|0.811965812| seed=2|2.320261438|> '
check "... and notes each of the two pooled axes once: $(cat "$tmp/err")" \
  test "$(grep -c 'rows pool runs with different values of' "$tmp/err")" -eq 2
"$syncsim" report "$tmp/sw2.db" --group-by '' 2>"$tmp/err" >/dev/null
rc=$?
check "--group-by '' exits 2: $(cat "$tmp/err")" test $rc -eq 2
"$syncsim" report "$tmp/sw2.db" --target-loss -1 2>"$tmp/err" >/dev/null
rc=$?
check "--target-loss -1 exits 2: $(cat "$tmp/err")" test $rc -eq 2
# Grouped by seed, each seed's speedup is against the baseline's same seed: at 1 Gbit/s and
# H=8, 60/30 = 2 for seed 1 and 80/30 = 2.667 for seed 2 (not the pooled 70/30).
"$syncsim" report "$tmp/sw2.db" --group-by label,seed,bandwidth_gbps,H --format json >"$tmp/rep.json"
rows=$(sed -n 's/.*"label": "ls", .*"point": "\(bandwidth_gbps=1, H=8, seed=[0-9]\)", .*"speedup": \([0-9.]*\), .*/\1|\2/p' "$tmp/rep.json" | tr '\n' ' ')
check "--group-by seed: the speedup against the baseline's same seed ($rows)" test "$rows" = \
  'bandwidth_gbps=1, H=8, seed=1|2 bandwidth_gbps=1, H=8, seed=2|2.666666667 '
"$syncsim" report "$tmp/sw2.db" >"$tmp/rep.txt"
check "the table shows the bound speedup: $(cat "$tmp/rep.txt")" grep -q '< 0.41x' "$tmp/rep.txt"
"$syncsim" report "$tmp/sw2.db" --baseline ls --format json >"$tmp/rep.json" 2>"$tmp/err"
check "--baseline ls takes Local SGD as the reference" \
  test "$(grep -c '"baseline": "ls"' "$tmp/rep.json")" -eq 5
# DDP's rows lack H: at 1 Gbit/s ls has runs at H=8 and H=16, no single reference, no speedup;
# at 10 Gbit/s only H=8 (25 s against DDP's 20 s: 1.25)
got=$(grep -o '"label": "ddp".*"speedup": [^,]*' "$tmp/rep.json" | sed 's/"label".*"speedup"/speedup/' | tr '\n' ' ')
check "--baseline ls: no speedup for DDP at 1 Gbit/s, 1.25 at 10 ($got)" \
  test "$got" = 'speedup: null speedup: 1.25 '
check "--baseline ls says why: $(cat "$tmp/err")" grep -q "note: no speedup for rows without the axis policies.ls.H" "$tmp/err"
"$syncsim" report "$tmp/sw2.db" --format json >"$tmp/a.json"
"$syncsim" report "$tmp/sw2.db" --format json >"$tmp/b.json"
check "the report (bootstrap intervals included) is deterministic" cmp -s "$tmp/a.json" "$tmp/b.json"

# --- concurrency and faults: each config runs once, whatever runs at the same time or dies --
# (the fixture's sweep: 9 runs; two sweeps of it into one database at once)
"$syncsim" sweep "$fixture" --db "$tmp/twice.db" --jobs 2 --quiet >/dev/null 2>&1 &
p1=$!
"$syncsim" sweep "$fixture" --db "$tmp/twice.db" --jobs 2 --quiet >/dev/null 2>&1 &
p2=$!
wait $p1
wait $p2
n=$(sqlite3 "$tmp/twice.db" "select count(*) || ' ' || count(distinct config_hash) || ' ' ||
  sum(status = 'done') from runs")
check "two sweeps of one scenario at once run each config once ($n)" test "$n" = "9 9 9"
# A run whose process is gone stays `running`; report says it is lost
cp "$tmp/sw.db" "$tmp/lost.db"
true &
dead=$!
wait $dead
sqlite3 "$tmp/lost.db" "insert into runs(scenario, policy, label, seed, status, config_json,
  config_hash, started_at, version, host, pid) select scenario, policy, label, seed, 'running',
  config_json, 'lost-run', started_at, version, '$(hostname)', $dead from runs limit 1"
"$syncsim" report "$tmp/lost.db" >/dev/null 2>"$tmp/err"
check "report notes a run whose process is gone: $(cat "$tmp/err")" grep -q "note: 1 run is lost" "$tmp/err"
# Killed at random moments (SIGINT, SIGTERM, SIGKILL), then resumed: the database is whole,
# no config ran twice, none is missing, and the results are those of an unbroken sweep
dump "$tmp/sw.db" | grep -v '|interrupted|' >"$tmp/d_clean"
resume_whole() { # resume_whole DB WHAT: sweeping the fixture into DB again leaves it whole,
  # every config done once, with the results of an unbroken sweep
  "$syncsim" sweep "$fixture" --db "$1" --quiet >/dev/null 2>"$tmp/err"
  local rc=$? ok n
  ok=$(sqlite3 "$1" "pragma integrity_check")
  n=$(sqlite3 "$1" "select count(distinct config_hash) || ' ' || count(*) from runs
    where status = 'done'")
  dump "$1" | grep '|done|' >"$tmp/d_resumed"
  check "$2: exit $rc, integrity $ok, $n done (9 9), same results" \
    sh -c "test $rc -eq 0 && test '$ok' = ok && test '$n' = '9 9' && cmp -s '$tmp/d_clean' '$tmp/d_resumed'"
}
for sig in INT TERM KILL INT KILL; do
  rm -f "$tmp/fault.db"*
  "$syncsim" sweep "$fixture" --db "$tmp/fault.db" --jobs 2 --quiet >/dev/null 2>&1 &
  pid=$!
  sleep "0.$((RANDOM % 6 + 1))"
  kill -s $sig $pid 2>/dev/null
  wait $pid 2>/dev/null
  sleep 0.2 # (a SIGKILLed sweep's children end by their parent-death signal)
  resume_whole "$tmp/fault.db" "SIG$sig at a random moment, then resume"
done

# Memory: a sweep's --jobs share it; a run that fits alone but not four at once is refused
# before anything is written
SYNCSIM_MEMORY_LIMIT=3M "$syncsim" sweep "$fixture" --jobs 4 --db "$tmp/mem.db" >/dev/null \
  2>"$tmp/err"
rc=$?
check "sweep --jobs 4 beyond a quarter of the memory exits 2: $(cat "$tmp/err")" \
  sh -c "test $rc -eq 2 && grep -q 'a 1/4 share (for 4 runs at once) of SYNCSIM_MEMORY_LIMIT' '$tmp/err' && test ! -e '$tmp/mem.db'"
SYNCSIM_MEMORY_LIMIT=3M "$syncsim" validate "$fixture" >/dev/null 2>"$tmp/err"
check "... while one run at a time fits: $(cat "$tmp/err")" test $? -eq 0

# A disk that fills during a sweep (a file-size limit; with SIGXFSZ ignored, writes fail,
# else the signal kills the process): the sweep fails, the database stays whole, runs it
# could not end are reported lost, and a sweep with room again finishes them all with the
# results of an unbroken sweep
limit_kib=$(($(stat -c %s "$tmp/sw.db") * 2 / 3 / 1024)) # room for part of the sweep
for xfsz in ignored default; do
  rm -f "$tmp/full.db"*
  (
    [ $xfsz = ignored ] && trap '' XFSZ
    ulimit -f $limit_kib
    exec "$syncsim" sweep "$fixture" --db "$tmp/full.db" --quiet
  ) >/dev/null 2>"$tmp/err"
  rc=$?
  check "a disk full ($xfsz SIGXFSZ) fails the sweep (exit $rc): $(head -c 300 "$tmp/err")" \
    test $rc -ne 0
  ok=$(sqlite3 "$tmp/full.db" "pragma integrity_check")
  check "... and leaves the database whole ($ok)" test "$ok" = ok
  n_running=$(sqlite3 "$tmp/full.db" "select count(*) from runs where status = 'running'")
  n_done=$(sqlite3 "$tmp/full.db" "select count(*) from runs where status = 'done'")
  check "... after some runs were recorded ($n_done done, $n_running unended)" \
    test "$n_done" -gt 0 -a "$n_running" -gt 0
  "$syncsim" report "$tmp/full.db" >/dev/null 2>"$tmp/err"
  check "... report calls its $n_running unended runs lost: $(cat "$tmp/err")" \
    grep -q "note: $n_running runs\? \(is\|are\) lost" "$tmp/err"
  resume_whole "$tmp/full.db" "... then a sweep with room finishes it"
done

# Databases that are not ours, or damaged, are refused and left as they were
sqlite3 "$tmp/theirs.db" "create table t(x); insert into t values (1);"
cp "$tmp/theirs.db" "$tmp/theirs.bak"
for cmd in "run $minimal --db $tmp/theirs.db" "sweep $minimal --db $tmp/theirs.db" \
           "merge $tmp/theirs.db $tmp/fx.db" "migrate $tmp/theirs.db"; do
  # shellcheck disable=SC2086
  "$syncsim" $cmd >/dev/null 2>"$tmp/err"
  rc=$?
  check "${cmd%% *} into an unrelated SQLite database exits 2: $(cat "$tmp/err")" test $rc -eq 2
  check "... saying it is not a syncsim database" grep -q "not a syncsim results database" "$tmp/err"
  check "... and leaves it byte for byte, with no -wal beside it" \
    sh -c "cmp -s '$tmp/theirs.db' '$tmp/theirs.bak' && test ! -e '$tmp/theirs.db-wal'"
done
head -c 8192 /dev/urandom >"$tmp/random.db"
cp "$tmp/random.db" "$tmp/random.bak"
for cmd in "run $minimal --db $tmp/random.db" "report $tmp/random.db"; do
  # shellcheck disable=SC2086
  "$syncsim" $cmd >/dev/null 2>"$tmp/err"
  rc=$?
  check "${cmd%% *} on random bytes exits 2: $(cat "$tmp/err")" test $rc -eq 2
  check "... saying it is not an SQLite database" grep -q "not an SQLite database" "$tmp/err"
done
check "... and leaves the file as it was" cmp -s "$tmp/random.db" "$tmp/random.bak"
cp "$tmp/sw2.db" "$tmp/damaged.db"
python3 - "$tmp/damaged.db" <<'EOF'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:  # scribble over the middle of every page but the first
    size = os.path.getsize(p)
    for off in range(4096, size, 4096):
        f.seek(off + 200)
        f.write(bytes(range(256)) * 4)
EOF
"$syncsim" report "$tmp/damaged.db" >"$tmp/out" 2>"$tmp/err"
rc=$?
check "report of a damaged database exits 2, printing no table: $(cat "$tmp/err")" \
  sh -c "test $rc -eq 2 && test ! -s '$tmp/out'"
check "... and says it is damaged" grep -q "the database is damaged" "$tmp/err"

# Nothing a user's strings hold can run in gnuplot: names, labels and paths with newlines,
# quotes, backslashes, system(), backquotes, $() and @macros, in every plot kind and format.
python3 - "$tmp/inject.json" <<'EOF'
import json, sys
# (relative marks: the plots run in $tmp; a label holds 63 characters at most)
bad = "x'\n!touch pw1\nsystem 'touch pw0'\n`touch pw2`$(touch pw3)\\\"\r\n@q"
json.dump({"name": bad + " and;\n print 'n'", "seed": 2,
           "workload": {"dataset": {"train_examples": 256, "test_examples": 32, "dim": 4,
                                    "classes": 2}, "batch_size": 8},
           "cluster": {"workers": 2, "compute": {"step_time_s": 0.05}},
           "policies": [{"type": "ddp", "label": bad}, {"type": "local_sgd", "H": 2}],
           "stop": {"sim_time_s": 0.3}, "eval": {"every_s": 0.1}, "record": {"timeline": 50},
           "sweep": {"cluster.network.latency_s": [0.001, 0.002]}}, open(sys.argv[1], "w"))
EOF
(cd "$tmp" && "$syncsim" sweep inject.json --db inject.db --quiet) >/dev/null 2>"$tmp/err"
rc=$?
check "a sweep with injection attempts in its names runs: $(cat "$tmp/err")" test $rc -eq 0
ok=1
for ext in png svg pdf; do
  for kind in loss sweep timeline workers; do
    case $kind in
      sweep) extra="--x latency_s" ;;
      timeline) extra="--run 1" ;;
      *) extra="" ;;
    esac
    out="q'\`touch pw4\`\$(touch pw5)@x \\ \"$kind.$ext" # (relative: in $tmp)
    # shellcheck disable=SC2086
    if ! (cd "$tmp" && "$syncsim" plot inject.db --kind $kind $extra --out "$out") >/dev/null \
         2>"$tmp/err" || [ ! -s "$tmp/$out" ]; then
      ok=0
      echo "plot --kind $kind to .$ext: $(cat "$tmp/err")"
    fi
  done
done
check "every plot kind and format draws the hostile names" test $ok -eq 1
# a name or label with terminal escapes (C0 and C1 controls) reaches the terminal escaped:
# in validate's lines, run's summary and an error message that quotes it
printf '{"name": "e\\u001b]0;T\\u0007\\u009b31m", "workload": {"dataset": {"train_examples": 64, "test_examples": 16}}, "policies": [{"type": "ddp", "label": "l\\u001b[2J"}], "stop": {"steps": 2}}' >"$tmp/esc.json"
printf '{"name": "x", "policies": [{"type": "ddp", "label": "%s\\u001b[2J"}], "stop": {"steps": 2}}' "$(printf 'y%.0s' $(seq 300))" >"$tmp/esc_bad.json"
"$syncsim" validate "$tmp/esc.json" >"$tmp/out" 2>&1
"$syncsim" run "$tmp/esc.json" --db "$tmp/esc.db" >>"$tmp/out" 2>&1
"$syncsim" validate "$tmp/esc_bad.json" >>"$tmp/out" 2>&1
check "terminal escapes in names, labels and messages are shown escaped: $(od -c "$tmp/out" | grep -m1 '033' || true)" \
  sh -c "! grep -q \"\$(printf '\\033')\" '$tmp/out' && ! grep -q \"\$(printf '\\302\\233')\" '$tmp/out' && grep -q 'x1b' '$tmp/out'"

# an evaluation interval that means a billion evaluations is pointed out
"$syncsim" validate "$minimal" --set eval.every_s=1e-7 >/dev/null 2>"$tmp/err"
check "validate notes the evaluations an interval implies: $(cat "$tmp/err")" \
  grep -q "note: eval.every_s 1e-07 with stop.sim_time_s 120 means about 1.2e+09 evaluations" "$tmp/err"

# a reader that goes away ends the printing, not the runs
"$syncsim" run "$minimal" --db "$tmp/pipe.db" --set stop.sim_time_s=5 | head -1 >/dev/null
n=$(sqlite3 "$tmp/pipe.db" "select count(*) from runs where status = 'done'")
check "run | head -1 still runs every policy ($n done)" test "$n" -eq 2

# Read-only places, as another user when this is root (root may write anywhere): a database
# in a directory the user cannot write, and a read-only database file, are refused with one
# clear message by run, sweep and report, and left as they were
ro=$(mktemp -d /tmp/syncsim_ro_XXXXXX)
as_user() { if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; else "$@"; fi; }
mkdir "$ro/locked" "$ro/open"
cp "$tmp/sw.db" "$ro/locked/r.db"
cp "$tmp/sw.db" "$ro/open/ro.db"
cp "$minimal" "$fixture" "$ro/"
chmod 755 "$ro" && chmod 555 "$ro/locked" && chmod 644 "$ro/locked/r.db" "$ro"/*.json
chmod 777 "$ro/open" && chmod 444 "$ro/open/ro.db"
for cmd in "run $ro/minimal.json --db $ro/locked/r.db" "sweep $ro/sweep_small.json --db $ro/locked/r.db" \
           "report $ro/locked/r.db"; do
  # shellcheck disable=SC2086
  as_user "$syncsim" $cmd >/dev/null 2>"$tmp/err"
  rc=$?
  check "${cmd%% *} with the database in a directory the user cannot write exits 2: $(cat "$tmp/err")" \
    sh -c "test $rc -eq 2 && grep -q 'this directory is not writable' '$tmp/err' && cmp -s '$ro/locked/r.db' '$tmp/sw.db'"
done
for cmd in "run $ro/minimal.json --db $ro/open/ro.db" "sweep $ro/sweep_small.json --db $ro/open/ro.db"; do
  # shellcheck disable=SC2086
  as_user "$syncsim" $cmd >/dev/null 2>"$tmp/err"
  rc=$?
  check "${cmd%% *} into a read-only database exits 2 before anything runs: $(cat "$tmp/err")" \
    sh -c "test $rc -eq 2 && test \$(wc -l <'$tmp/err') -eq 1 && grep -q 'the database is read-only' '$tmp/err' && cmp -s '$ro/open/ro.db' '$tmp/sw.db'"
done
chmod -R u+w "$ro" && rm -rf "$ro"

# numbers on the command line are written plainly, or refused
for args in "plot $tmp/sw.db --out $tmp/r.png --kind timeline --run 1abc" \
            "plot $tmp/sw.db --out $tmp/r.png --kind timeline --run 2.9" \
            "plot $tmp/sw.db --out $tmp/r.png --kind timeline --run 99999999999999999999" \
            "sweep $fixture --db $tmp/n.db --jobs 01" "sweep $fixture --db $tmp/n.db --jobs +2" \
            "run $minimal --db $tmp/n.db --threads 2x" "sweep $fixture --db $tmp/n.db --shard 1/02"; do
  # shellcheck disable=SC2086
  "$syncsim" $args >/dev/null 2>"$tmp/err"
  rc=$?
  check "${args##*--} is refused (exit $rc): $(cat "$tmp/err")" \
    sh -c "test $rc -eq 2 && test ! -e '$tmp/r.png' && test ! -e '$tmp/n.db'"
done
"$syncsim" sweep "$fixture" --db "$tmp/n.db" --shard " 1/2" >/dev/null 2>"$tmp/err"
rc=$?
check "--shard ' 1/2' is refused (exit $rc)" test $rc -eq 2
SYNCSIM_MEMORY_LIMIT=lots "$syncsim" validate "$minimal" >/dev/null 2>"$tmp/err"
rc=$?
check "a SYNCSIM_MEMORY_LIMIT that is not a size is refused (exit $rc): $(cat "$tmp/err")" \
  sh -c "test $rc -eq 2 && grep -q 'SYNCSIM_MEMORY_LIMIT: expected a size' '$tmp/err'"
# a path too long to pass whole is refused (cut, it would name another file: a database)
cp "$tmp/sw.db" "$tmp/victim.db"
cp "$tmp/sw.db" "$tmp/victim.bak"
long_out=$(cd "$tmp" && printf './%.0s' $(seq 544); printf '/victim.db.png')
(cd "$tmp" && "$syncsim" plot sw.db --out "$long_out") >/dev/null 2>"$tmp/err"
rc=$?
check "plot --out with a path of over 1024 bytes exits 2: $(cat "$tmp/err")" \
  sh -c "test $rc -eq 2 && cmp -s '$tmp/victim.db' '$tmp/victim.bak'"
check "... and runs none of them (no pw1 ... pw5 in $tmp)" test -z "$(ls "$tmp" | grep '^pw[0-9]')"
"$syncsim" plot "$tmp/inject.db" --out "$tmp/a
b.png" 2>"$tmp/err" >/dev/null
rc=$?
check "plot --out with a newline exits 2: $(cat "$tmp/err")" test $rc -eq 2

# CSV and JSON survive hostile names and swept values, parsed back by real parsers
if command -v python3 >/dev/null; then
  cat >"$tmp/hostile.json" <<'EOF'
{"name": "we\"ird, scenario\nname", "workload": {"dataset": {"train_examples": 256,
  "test_examples": 32, "dim": 4, "classes": 2}, "batch_size": 8},
 "cluster": {"workers": 2, "compute": {"step_time_s": 0.05}},
 "policies": [{"type": "ddp", "label": "la\"bel; with\nnewline \\ and ünï\t"}],
 "stop": {"sim_time_s": 0.2}, "eval": {"every_s": 0.1, "target_loss": 0.1},
 "sweep": {"workload.partition": [{"type": "iid"}, {"type": "contiguous"}]}}
EOF
  "$syncsim" sweep "$tmp/hostile.json" --db "$tmp/hostile.db" --quiet >/dev/null 2>"$tmp/err"
  rc=$?
  check "a sweep with hostile names runs: $(cat "$tmp/err")" test $rc -eq 0
  "$syncsim" report "$tmp/hostile.db" --format csv >"$tmp/h.csv"
  "$syncsim" report "$tmp/hostile.db" --format json >"$tmp/h.json"
  out=$(python3 - "$tmp/h.csv" "$tmp/h.json" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
js = json.load(open(sys.argv[2], encoding="utf-8"))
want_s, want_l = 'we"ird, scenario\nname', 'la"bel; with\nnewline \\ and ünï\t'
ok = len(rows) == 2 and len(js) == 2
for r, j in zip(rows, js):
    ok &= r["scenario"] == want_s == j["scenario"] and r["label"] == want_l == j["label"]
    ok &= r["point"] == j["point"] and '"type":' in j["point"] and r["runs"] == "1"
    ok &= r["never_reached"] == "1" and j["time_to_target_bound"] == ">"
print("ok" if ok else "bad: %r %r" % (rows, js))
EOF
)
  check "csv (python csv) and json (python json) parse back the names and values: $out" test "$out" = ok
fi
"$syncsim" report "$tmp/sw.db" >"$tmp/rep.txt"
check "report of a sweep exits 0" test $? -eq 0
n=$(grep -c '^sweep_small ' "$tmp/rep.txt")
check "report of the fixture sweep: ddp + local_sgd at H=2, 8 ($n rows)" test "$n" -eq 3
check "report groups by H" grep -q 'H=8' "$tmp/rep.txt"
n=$(sqlite3 "$tmp/sw.db" "select count(*) from policy_summary where runs = 3")
check "policy_summary: 3 groups of 3 seeds ($n)" test "$n" -eq 3
"$syncsim" report "$tmp/sw.db" --group-by bogus 2>"$tmp/err"
check "report --group-by of an unknown key exits 2" test $? -eq 2
check "report --group-by names the keys it knows: $(cat "$tmp/err")" grep -q "bogus.*seed or a swept parameter: H" "$tmp/err"
"$syncsim" report "$tmp/sw.db" --group-by label,H --format csv >"$tmp/rep.csv"
n=$(sed 1d "$tmp/rep.csv" | tr -d '\r' | cut -d, -f1-5 | tr '\n' ' ')
check "report --group-by label,H ($n)" test "$n" = \
  'sweep_small,ddp,ddp,,3 sweep_small,local_sgd,local_sgd,H=2,3 sweep_small,local_sgd,local_sgd,H=8,3 '

"$syncsim" merge "$tmp/mix.db" "$tmp/sw.db" "$tmp/fx.db" >/dev/null
"$syncsim" report "$tmp/mix.db" --scenario fx --format csv >"$tmp/rep.csv"
n=$(sed 1d "$tmp/rep.csv" | tr -d '\r' | cut -d, -f1 | sort -u | tr '\n' ' ')
check "report --scenario fx keeps only fx's runs ($n)" test "$n" = "fx "
"$syncsim" report "$tmp/mix.db" --scenario nope 2>"$tmp/err"
check "report --scenario of a missing scenario exits 2" test $? -eq 2
check "report --scenario names the scenarios there are: $(cat "$tmp/err")" \
  grep -q "no runs of scenario 'nope' (the database has: fx, sweep_small)" "$tmp/err"

# --- plots ----------------------------------------------------------------------------------
if command -v gnuplot >/dev/null; then
  for ext in png svg pdf; do
    for kind in loss "sweep --x H" "timeline --run 1" workers; do
      name=$(echo "$kind" | cut -d' ' -f1)
      "$syncsim" plot "$tmp/sw.db" --kind $kind --out "$tmp/$name.$ext" 2>"$tmp/err"
      rc=$?
      check "plot --kind $kind --out .$ext exits 0: $(cat "$tmp/err")" test $rc -eq 0
      check "plot --kind $kind writes a non-empty .$ext" test -s "$tmp/$name.$ext"
    done
  done
  "$syncsim" plot "$tmp/mix.db" --out "$tmp/mix.svg" 2>/dev/null
  check "several scenarios: series named 'scenario: label (point)'" \
    grep -q '>sweep_small: local_sgd (H=2)<' "$tmp/mix.svg"
  "$syncsim" plot "$tmp/mix.db" --scenario sweep_small --out "$tmp/one.svg" 2>/dev/null
  check "plot --scenario: only its series, named by label and sweep point" \
    test "$(grep -c '>sweep_small: \|>p<' "$tmp/one.svg")" -eq 0 -a \
      "$(grep -c '>local_sgd (H=2)<' "$tmp/one.svg")" -eq 1
  # a sweep's loss plot: one curve per label and point (seeds averaged), or the points asked for
  check "loss on a sweep: a curve per point" grep -q '>local_sgd (H=8)<' "$tmp/one.svg"
  check "loss on a sweep: the title says mean over seeds (3 per point)" \
    grep -q 'mean over seeds, 95% band' "$tmp/one.svg"
  "$syncsim" plot "$tmp/sw.db" --point H=8 --out "$tmp/p8.svg" 2>"$tmp/err"
  check "plot --point H=8: that point's curve and the unswept DDP's, not H=2's" \
    test "$(grep -c '>local_sgd (H=8)<\|>ddp<' "$tmp/p8.svg")" -eq 2 -a \
      "$(grep -c '>local_sgd (H=2)<' "$tmp/p8.svg")" -eq 0
  "$syncsim" plot "$tmp/sw.db" --point lr=8 --out "$tmp/px.svg" 2>"$tmp/err"
  check "plot --point of an axis that no run has exits 2: $(cat "$tmp/err")" \
    grep -q -- "--point lr=8: no finished run has a swept parameter of that name" "$tmp/err"
  "$syncsim" plot "$tmp/sw.db" --point H=5 --out "$tmp/px.svg" 2>"$tmp/err"
  check "plot --point at a value no run has says so: $(cat "$tmp/err")" \
    grep -q -- "--point H=5: no finished run is at that value" "$tmp/err"
  "$syncsim" plot "$tmp/sw.db" --point H --out "$tmp/px.svg" 2>"$tmp/err"
  check "plot --point without a value exits 2: $(cat "$tmp/err")" grep -q 'expected KEY=VALUE' "$tmp/err"
  # options that do nothing for a kind are refused
  for bad in "--kind sweep --x H --logy" "--kind workers --baseline-loss" "--kind loss --x H" \
             "--kind workers --target-loss 1" "--kind timeline --run 1 --point H=2"; do
    "$syncsim" plot "$tmp/sw.db" $bad --out "$tmp/px.svg" 2>"$tmp/err"
    check "plot $bad exits 2, saying why: $(head -1 "$tmp/err")" grep -q 'does nothing in a' "$tmp/err"
  done
  "$syncsim" plot "$tmp/sw.db" --kind sweep --x seed --out "$tmp/px.svg" 2>"$tmp/err"
  check "plot --x seed is refused: $(cat "$tmp/err")" grep -q 'the seed is what each point averages' "$tmp/err"
  # the loss plot's reference lines, log scale and x range
  "$syncsim" plot "$tmp/sw.db" --target-loss 0.9 --baseline-loss --logy --out "$tmp/ref.svg" \
    2>"$tmp/err"
  check "plot --target-loss draws the target" grep -q '>target loss, 0.9<' "$tmp/ref.svg"
  check "plot --baseline-loss draws the constant prediction's loss" \
    grep -q '>baseline (constant prediction), ' "$tmp/ref.svg"
  # a label's colour is the same in every plot of the database (the loss and sweep plots here)
  colour() { grep -A4 "<text>$2</text>" "$1" | grep -o "stroke='rgb([^)]*)'" | head -1; }
  "$syncsim" plot "$tmp/sw.db" --kind sweep --x H --out "$tmp/sweep_c.svg" 2>/dev/null
  c1=$(colour "$tmp/ref.svg" ddp) c2=$(colour "$tmp/sweep_c.svg" "ddp, not swept (n = 3)")
  check "ddp has one colour in the loss and the sweep plots ($c1, $c2)" test -n "$c1" -a "$c1" = "$c2"
  # the sweep plot: runs per point, the never-reached points, the swept values as ticks
  check "the sweep plot's key gives the runs per point" grep -q '>local_sgd (n = 3 per point)<' \
    "$tmp/sweep_c.svg"
  "$syncsim" plot "$tmp/sw.db" --kind sweep --x H --target-loss 1e-6 --out "$tmp/never.svg" \
    2>"$tmp/err"
  check "points that never reached the target are drawn and said: $(cat "$tmp/err")" \
    grep -q '>never reached the target (drawn at the top)<' "$tmp/never.svg"
  check "an unswept reference that never reached the target is drawn and said" \
    grep -q '>ddp, not swept: never reached the target (n = 3)<' "$tmp/never.svg"
  # a target that some seeds of a point reach and others not: "k of n" at the point
  t=$(sqlite3 "$tmp/sw.db" "select final_loss from runs where label = 'local_sgd'
    order by final_loss limit 1 offset 1")
  "$syncsim" plot "$tmp/sw.db" --kind sweep --x H --target-loss "$t" --out "$tmp/part.svg" \
    2>"$tmp/err"
  check "a point reached by some of its seeds says how many (exit $?): $(head -2 "$tmp/err")" \
    grep -q '>[12] of 3<' "$tmp/part.svg"
  cp "$tmp/sw.db" "$tmp/keep.db"
  for cmd in "plot $tmp/keep.db --out $tmp/keep.db" "report $tmp/keep.db --out $tmp/keep.db" \
             "report $tmp/keep.db --format html --out $tmp/keep.db"; do
    "$syncsim" $cmd 2>"$tmp/err"
    check "$cmd is refused: $(cat "$tmp/err")" grep -q 'is the database itself' "$tmp/err"
  done
  check "... and the database is as it was" cmp -s "$tmp/sw.db" "$tmp/keep.db"
  check "the sweep plot's ticks are the swept values" \
    test "$(grep -c '<text>2</text>\|<text>8</text>' "$tmp/sweep_c.svg")" -eq 2
  # the timeline names its run and tells the kinds of communication apart
  check "the timeline's title names the run, its policy and its scenario" \
    grep -q 'Run 1: .* in scenario sweep_small' "$tmp/timeline.svg"
  check "no enhanced-text markup is left in the drawn text" test -z "$(grep -l '{/' "$tmp"/*.svg)"
  check "the sweep plot's axis says 'time to loss ≤'" grep -q 'time to loss ≤' "$tmp/sweep.svg"
  cp "$tmp/sw.db" "$tmp/quote.db"
  sqlite3 "$tmp/quote.db" "update runs set label = 'it''s \"local\"' where label = 'local_sgd'"
  for kind in loss "sweep --x H" workers; do
    "$syncsim" plot "$tmp/quote.db" --kind $kind --out "$tmp/it's.svg" 2>"$tmp/err"
    check "plot --kind $kind of a label with quotes, to a file name with one: $(cat "$tmp/err")" \
      grep -q "it's" "$tmp/it's.svg"
  done
  # markup in a label is text in the SVG, which stays well-formed XML ("]]>" included, and
  # invalid UTF-8 as U+FFFD); the PNG and PDF draw it as written
  cp "$tmp/sw.db" "$tmp/markup.db"
  sqlite3 "$tmp/markup.db" "update runs set label = '<script>alert(1)</script>&\"]]>''' || x'ff'
    where label = 'local_sgd'"
  for kind in loss "sweep --x H" workers; do
    for ext in svg png pdf; do
      "$syncsim" plot "$tmp/markup.db" --kind $kind --out "$tmp/markup.$ext" 2>"$tmp/err"
      check "plot --kind $kind --out .$ext of a label with markup: $(cat "$tmp/err")" test $? -eq 0
    done
    if command -v python3 >/dev/null; then
      python3 - "$tmp/markup.svg" >"$tmp/err" 2>&1 <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()  # fails on ill-formed XML
assert not [e for e in root.iter() if e.tag.endswith("script")], "a script element"
texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
assert any(t.startswith("<script>alert(1)</script>&") and "]]>'\ufffd" in t for t in texts), texts
PY
      check "plot --kind $kind: the label with markup is text in well-formed SVG: $(cat "$tmp/err")" \
        test $? -eq 0
    fi
  done
  check "labels are drawn as written (local_sgd, not a subscript)" \
    grep -q '>local_sgd (H=2)<' "$tmp/loss.svg"
  check "the .png is a PNG" grep -q PNG <(head -c 8 "$tmp/loss.png")
  check "the .pdf is a PDF" grep -q '%PDF' <(head -c 8 "$tmp/loss.pdf")
else
  bad "gnuplot is not installed (./setup.sh installs gnuplot-nox)"
fi
SYNCSIM_GNUPLOT=/nonexistent/gnuplot "$syncsim" plot "$tmp/sw.db" --out "$tmp/no.png" 2>"$tmp/err"
check "plot without gnuplot exits 1" test $? -eq 1
check "plot without gnuplot says how to get it: $(cat "$tmp/err")" grep -q 'gnuplot-nox' "$tmp/err"
"$syncsim" plot "$tmp/sw.db" --out "$tmp/x.gif" 2>"$tmp/err"
check "plot to an unknown format exits 2" test $? -eq 2
"$syncsim" plot "$tmp/sw.db" --kind timeline --run 999 --out "$tmp/t.png" 2>"$tmp/err"
check "plot of a missing run's timeline fails clearly: $(cat "$tmp/err")" grep -q '999' "$tmp/err"

# --- every resolved config is itself a valid scenario, which resolves to itself -----------
for f in "$src"/scenarios/*.json "$src"/scenarios/*/*.json "$src"/tests/fixtures/*.json; do
  "$syncsim" validate "$f" --print 2>/dev/null | grep '^{' >"$tmp/resolved" || continue
  i=0
  while IFS= read -r line; do
    i=$((i + 1))
    printf '%s\n' "$line" >"$tmp/resolved1.json"
    again=$("$syncsim" validate "$tmp/resolved1.json" --print 2>"$tmp/err" | grep '^{')
    if [ "$again" != "$line" ]; then
      bad "${f#"$src"/}: run $i's resolved config does not resolve to itself: $(head -c 300 "$tmp/err")"
    fi
  done <"$tmp/resolved"
done
check "every scenario's resolved configs were read" test -s "$tmp/resolved"

# --- identities of new policies, through the CLI (docs/algorithms.md §7) -------------------
cat >"$tmp/ident.json" <<'EOF'
{"seed": 7, "workload": {"model": {"type": "mlp", "hidden": [12]},
  "dataset": {"train_examples": 1024, "test_examples": 256, "dim": 10, "classes": 4}},
 "cluster": {"workers": 3, "compute": {"step_time_s": 0.03, "speeds": [1, 0.7, 1.3]}},
 "policies": [{"type": "local_sgd", "H": 4, "inner": {"opt": "adamw", "lr": 0.01}},
              {"type": "slowmo", "H": 4, "alpha": 1, "beta": 0, "buffers": "keep",
               "inner": {"opt": "adamw", "lr": 0.01}},
              {"type": "local_sgd", "label": "local1", "H": 1,
               "inner": {"opt": "adamw", "lr": 0.01}},
              {"type": "sparta", "p": 1, "inner": {"opt": "adamw", "lr": 0.01}},
              {"type": "ddp", "inner": {"opt": "sgd", "lr": 0.1}},
              {"type": "demo", "lr": 0.1, "chunk": 16, "topk": 16, "sign": false},
              {"type": "diloco", "H": 4},
              {"type": "streaming_diloco", "H": 4, "fragments": 1, "overlap": 0,
               "alpha": 0},
              {"type": "ddp", "label": "ddp_fp32", "inner": {"opt": "sgd", "lr": 0.1},
               "compress": {"type": "fp32"}},
              {"type": "diloco", "label": "diloco_fp32", "H": 4, "compress": {"type": "fp32"}},
              {"type": "diloco", "label": "diloco_int4", "H": 4,
               "compress": {"type": "int4", "error_feedback": true}},
              {"type": "streaming_diloco", "label": "streaming", "H": 4, "fragments": 2},
              {"type": "streaming_diloco", "label": "streaming_fp32", "H": 4, "fragments": 2,
               "compress": {"type": "fp32"}},
              {"type": "async_local_sgd", "H": 4},
              {"type": "async_local_sgd", "label": "async_fp32", "H": 4,
               "compress": {"type": "fp32"}},
              {"type": "palsgd", "H": 4, "warmup_steps": 8},
              {"type": "palsgd", "label": "palsgd_fp32", "H": 4, "warmup_steps": 8,
               "compress": {"type": "fp32"}},
              {"type": "gossip", "topology": "complete", "inner": {"opt": "adamw", "lr": 0.01}},
              {"type": "ddp", "label": "ddp_fp16", "inner": {"opt": "sgd", "lr": 0.1},
               "compress": {"type": "fp16"}},
              {"type": "ddp", "label": "ddp_bf16", "inner": {"opt": "sgd", "lr": 0.1},
               "compress": {"type": "bf16"}},
              {"type": "ddp", "label": "ddp_int8", "inner": {"opt": "sgd", "lr": 0.1},
               "compress": {"type": "int8"}},
              {"type": "ddp", "label": "ddp_int4", "inner": {"opt": "sgd", "lr": 0.1},
               "compress": {"type": "int4", "chunk": 32}},
              {"type": "ddp", "label": "ddp_topk", "inner": {"opt": "sgd", "lr": 0.1},
               "compress": {"type": "topk", "fraction": 0.1, "error_feedback": true}},
              {"type": "ddp", "label": "ddp_top_all", "inner": {"opt": "sgd", "lr": 0.1},
               "compress": {"type": "topk", "fraction": 1}}],
 "stop": {"steps": 120}}
EOF
"$syncsim" run "$tmp/ident.json" --db "$tmp/ident.db" --quiet >/dev/null 2>&1
check "the identity scenario runs" test $? -eq 0
# within WHERE (runs a and b), a's final loss and b's within 1e-6 (near) or bit for bit, with
# the same simulated time (exact); or bit for bit at the same step, in another time (model: a
# policy that moves the same bytes differently)
ident() {
  local kind=$1 where=$2 what=$3 got
  local t="quote(a.sim_time_s) || ' ' || quote(b.sim_time_s)"
  [ "$kind" = model ] && t="quote(a.steps) || ' ' || quote(b.steps)"
  got=$(sqlite3 "$tmp/ident.db" "select quote(a.final_loss) || ' ' || quote(b.final_loss) ||
    ' ' || $t from runs a, runs b where $where")
  check "$what ($got)" awk -v p="$got" -v kind="$kind" 'BEGIN {
    n = split(p, f, " ")
    if (kind == "exact" || kind == "model") exit !(n == 4 && f[1] == f[2] && f[3] == f[4])
    exit !(n == 4 && f[1] + 0 > 0 && (f[1] - f[2]) / f[1] <= 1e-6 && (f[2] - f[1]) / f[1] <= 1e-6) }'
}
ident near "a.label = 'local_sgd' and b.policy = 'slowmo'" \
  "slowmo with alpha 1, beta 0, kept buffers is local_sgd within 1e-6"
ident exact "a.label = 'local1' and b.policy = 'sparta'" "sparta with p 1 is local_sgd with H 1"
ident near "a.label = 'ddp' and b.label = 'demo'" \
  "demo sending every component, unsigned, is ddp with sgd within 1e-6"
ident exact "a.label = 'diloco' and b.label = 'streaming_diloco'" \
  "streaming_diloco with one fragment, no overlap, alpha 0 is diloco"
for p in ddp diloco streaming async_local_sgd palsgd; do
  fp32=${p%_local_sgd}_fp32
  ident exact "a.label = '$p' and b.label = '$fp32'" "$p compressing to fp32 is $p, bit for bit"
done
got=$(sqlite3 "$tmp/ident.db" "select count(*) from runs a, runs b where a.label = 'diloco'
  and b.label = 'diloco_int4' and a.final_loss != b.final_loss and a.sim_time_s > b.sim_time_s")
check "int4 changes diloco's loss, and its time (a cheaper all-gather)" test "$got" = 1
# every scheme's bytes on the wire: the model's 184 parameters (10 12 + 12 + 12 4 + 4) as
# the scheme encodes them, all-gathered on the ring: each worker sends (K - 1) b per step
for want in "fp16 368" "bf16 368" "int8 $((184 + 4 * 3))" "int4 $((92 + 4 * 6))" \
  "topk $((8 * 19))" "top_all $((8 * 184))"; do
  read -r scheme b <<<"$want"
  got=$(sqlite3 "$tmp/ident.db" "select group_concat(w.bytes_sent) from workers w join runs r
    on r.id = w.run_id where r.label = 'ddp_$scheme'")
  n=$((120 * 2 * b))
  check "ddp_$scheme sends its scheme's bytes, all-gathered: 120 x 2 x $b = $n each ($got)" \
    test "$got" = "$n.0,$n.0,$n.0"
  [ "$scheme" = top_all ] && continue
  got=$(sqlite3 "$tmp/ident.db" "select count(*) from runs a, runs b where a.label = 'ddp'
    and b.label = 'ddp_$scheme' and a.final_loss != b.final_loss")
  check "ddp_$scheme changes ddp's loss (a lossy scheme)" test "$got" = 1
done
got=$(sqlite3 "$tmp/ident.db" "select quote(a.final_loss) = quote(b.final_loss) from runs a,
  runs b where a.label = 'ddp' and b.label = 'ddp_top_all'")
check "top-k keeping every value is ddp's loss, bit for bit (only the pricing differs)" \
  test "$got" = 1
ident model "a.label = 'local1' and b.policy = 'gossip'" \
  "gossip on the complete graph, adapt-then-combine, is local_sgd with H 1"

# gossip's step on homogeneous links: each worker's d transfers share its upload and download,
# so a step exchanges in latency + d M / B, after the compute (atc) or beside it (cta)
cat >"$tmp/gossip_time.json" <<'EOF'
{"seed": 1, "workload": {"model": {"type": "none", "params": 1e6}},
 "cluster": {"workers": 5, "compute": {"step_time_s": 0.1},
   "network": {"latency_s": 0.01, "bandwidth_gbps": 1}, "comm": {"bytes_per_param": 4}},
 "policies": [{"type": "gossip"}, {"type": "gossip", "label": "cta", "mode": "cta"},
              {"type": "gossip", "label": "complete", "topology": "complete"}],
 "stop": {"steps": 10}}
EOF
"$syncsim" run "$tmp/gossip_time.json" --db "$tmp/gt.db" --quiet >/dev/null 2>&1
check "the gossip timing scenario runs" test $? -eq 0
# M = 4e6 bytes, B = 1.25e8 bytes/s: M / B = 0.032 s; 10 steps
for want in "gossip 10*(0.1+0.01+2*0.032)" "cta 10*0.1" "complete 10*(0.1+0.01+4*0.032)"; do
  read -r label expr <<<"$want"
  got=$(sqlite3 "$tmp/gt.db" "select quote(sim_time_s) from runs where label = '$label'")
  check "gossip $label: 10 steps take $expr s (got $got)" \
    awk -v g="$got" "BEGIN { w = $expr; exit !(g - w <= 1e-9 && w - g <= 1e-9) }"
done
comm=$(sqlite3 "$tmp/gt.db" "select group_concat(comm_s) from workers w join runs r on
  r.id = w.run_id where r.label = 'cta'")
check "gossip cta: its transfers hide behind its compute, which takes precedence ($comm)" \
  test "$comm" = "0.0,0.0,0.0,0.0,0.0"
comm=$(sqlite3 "$tmp/gt.db" "select group_concat(comm_s) from workers w join runs r on
  r.id = w.run_id where r.label = 'gossip'")
check "gossip atc: a worker's two transfers at once count once ($comm)" \
  test "$comm" = "0.74,0.74,0.74,0.74,0.74"
"$syncsim" run "$tmp/gossip_time.json" --db "$tmp/gt2.db" --quiet \
  --set 'cluster.failures={"at_s": [0.5], "workers": [1], "repair_s": 0.3, "sync": "drop"}' \
  >/dev/null 2>"$tmp/err"
rc=$?
check "gossip refuses failures.sync drop (exit $rc): $(cat "$tmp/err")" \
  grep -q 'cluster.failures.sync: drop is not supported by policy gossip' "$tmp/err"
"$syncsim" run "$tmp/gossip_time.json" --db "$tmp/gt2.db" --quiet \
  --set 'cluster.failures={"at_s": [0.5], "workers": [1], "repair_s": 0.3}' >/dev/null 2>&1
check "gossip waits for a down worker" test $? -eq 0
n=$(sqlite3 "$tmp/gt2.db" "select count(*) from runs where steps = 10 and status = 'done'")
check "gossip with a failure: every run reaches its steps ($n)" test "$n" -eq 3

# halos relaying every update through one region (a free worker-LPS hop, the region's link
# as async's server link) is async_local_sgd with the same outer optimizer: the same
# evaluations, times and updates, bit for bit (the traffic counts both hops: twice the bytes)
for f in halos_identity_async halos_identity_relay; do
  "$syncsim" run "$src/tests/fixtures/$f.json" --db "$tmp/hid.db" --quiet >/dev/null 2>&1
  check "the identity scenario $f runs" test $? -eq 0
done
got=$(sqlite3 "$tmp/hid.db" "select (select count(*) from metrics where run_id = 2) || ' ' ||
  (select count(*) from (select kind, sim_time_s, step, examples, quote(loss), quote(accuracy)
   from metrics where run_id = 1 except select kind, sim_time_s, step, examples, quote(loss),
   quote(accuracy) from metrics where run_id = 2)) || ' ' ||
  (select count(*) from (select sim_time_s, worker, staleness from updates where run_id = 1
   except select sim_time_s, worker, staleness from updates where run_id = 2))")
check "halos relaying through one region is async_local_sgd bit for bit (rows, differing: $got)" \
  awk -v g="$got" 'BEGIN { split(g, f, " "); exit !(f[1] > 10 && f[2] == 0 && f[3] == 0) }'
# the regions' links priced in closed form: two regions of one worker, free fast links; an
# LPS push crosses its region's link: 0.05 s latency + 4e6 B / 0.1 Gbit/s after the first
# step (0.1 s): 0.47 s; the reply takes as long, and the next push leaves with the first
# arrival after the merge (0.9 s): 1.27 s. The two regions' links do not contend.
cat >"$tmp/hprice.json" <<'EOF'
{"name": "halos_price", "workload": {"model": {"type": "none", "params": 1e6}},
 "cluster": {"workers": 2, "compute": {"step_time_s": 0.1},
             "network": {"latency_s": 0, "bandwidth_gbps": 1e12, "server_gbps": 1e12,
                         "regions": 2, "region_latency_s": 0.05, "region_bandwidth_gbps": 0.1},
             "comm": {"bytes_per_param": 4}},
 "policies": [{"type": "halos", "H": 1, "updates": 1}],
 "stop": {"sim_time_s": 1.5}}
EOF
"$syncsim" run "$tmp/hprice.json" --db "$tmp/hprice.db" --quiet >/dev/null 2>&1
got=$(sqlite3 "$tmp/hprice.db" "select group_concat(sim_time_s || '/' || worker, ' ') from
  (select * from updates order by sim_time_s, worker)")
check "an LPS push costs region latency + bytes / region bandwidth ($got)" \
  test "$got" = "0.47/0 0.47/1 1.27/0 1.27/1"
# the region keys: refused where no policy reads them; regions must divide the workers
"$syncsim" validate "$minimal" --set cluster.network.regions=2 >/dev/null 2>"$tmp/err"
check "regions under a policy without regions is refused: $(cat "$tmp/err")" \
  grep -q 'cluster.network.regions: has no effect here' "$tmp/err"
sed 's/"workers": 2/"workers": 3/' "$tmp/hprice.json" >"$tmp/hprice3.json"
"$syncsim" validate "$tmp/hprice3.json" >/dev/null 2>"$tmp/err"
check "regions that do not divide the workers are refused: $(cat "$tmp/err")" \
  grep -q 'cluster.network.regions: expected a divisor of the 3 workers' "$tmp/err"
sed 's/"updates": 1/"relay": true, "updates": 1/' "$tmp/hprice.json" >"$tmp/hrelay.json"
"$syncsim" validate "$tmp/hrelay.json" >/dev/null 2>"$tmp/err"
check "a local server's key under relay is refused: $(cat "$tmp/err")" \
  grep -q 'updates.*relay false' "$tmp/err"

# --- interrupts ---------------------------------------------------------------------------
for sig in INT TERM; do
  "$syncsim" run "$minimal" --db "$tmp/int.db" --quiet --set stop.sim_time_s=1e9 \
    --set eval.every_s=1 >/dev/null 2>&1 &
  pid=$!
  wait_count "$tmp/int.db" running 1 # the run's row exists; then let some metrics come in
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
