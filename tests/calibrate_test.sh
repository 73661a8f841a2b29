#!/usr/bin/env bash
# `syncsim calibrate network|compute` on the fixtures in tests/fixtures/calib: the fitted
# latency and bandwidth, and the step time, spread and speeds, against the same quantities
# computed independently by tests/tools/calib_check.py; the keys written with --out make a
# valid scenario; bad input is refused with a message; and the empirical jitter reads what
# --times-out writes.
# Usage: calibrate_test.sh PATH/TO/syncsim SOURCE_DIR
set -u
syncsim=$1
src=$2
# shellcheck source=tests/test_lib.sh
. "$src/tests/test_lib.sh"

if ! command -v python3 >/dev/null; then
  bad "python3 is not installed (./setup.sh test installs it)"
  exit 1
fi
fx=$(cd "$src/tests/fixtures/calib" && pwd)
tool=$src/tests/tools/calib_check.py

# close A B: the two numbers agree to 2e-5 relative (syncsim prints 6 digits)
close() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(abs(a - b) > 2e-5 * abs(b))" "$1" "$2"; }

# network: syncsim's fit against the independent one, for each file, algorithm and range
fit() { # FILE K COLLECTIVE MIN MAX COLUMN -- syncsim's arguments
  local file=$1 k=$2 coll=$3 lo=$4 hi=$5 col=$6
  shift 7
  "$syncsim" calibrate network "$file" "$@" >"$tmp/fit" 2>&1 || { cat "$tmp/fit" >&2; return 1; }
  read -r a b < <(sed -n 's/^latency \([^ ]*\) s, bandwidth \([^ ]*\) Gbit.*/\1 \2/p' "$tmp/fit")
  read -r wa wb < <(python3 "$tool" network "$file" "$k" "$coll" "$lo" "$hi" "$col")
  close "$a" "$wa" && close "$b" "$wb" ||
    { echo "latency $a bandwidth $b; expected $wa $wb" >&2; return 1; }
}
check "gloo CSV, ring, all sizes" fit "$fx/allreduce_gloo_2proc.csv" 2 ring 0 inf out -- --workers 2
check "gloo CSV, ring, 1e5..3e6 bytes" fit "$fx/allreduce_gloo_2proc.csv" 2 ring 1e5 3e6 out -- \
  --workers 2 --min-bytes 1e5 --max-bytes 3e6
check "nccl-tests, 8 ranks from its header, ring" fit "$fx/all_reduce_perf.txt" 8 ring 0 inf out --
check "nccl-tests, tree, in-place, 1e6..1e9 bytes" fit "$fx/all_reduce_perf.txt" 8 tree 1e6 1e9 in -- \
  --collective tree --column in --min-bytes 1e6 --max-bytes 1e9
check "nccl-tests, halving-doubling, 4 workers" fit "$fx/all_reduce_perf.txt" 4 halving_doubling 0 inf out -- \
  --collective halving_doubling --workers 4
# --scenario S --out F: S with the fitted keys, valid
"$syncsim" calibrate network "$fx/allreduce_gloo_2proc.csv" --workers 2 \
  --scenario "$src/tests/bad_inputs/base.json" --out "$tmp/fitted.json" >"$tmp/fit_out" 2>&1
check "--out writes a valid scenario" "$syncsim" validate "$tmp/fitted.json"
written() { # the written latency and bandwidth are the printed ones
  local a b
  read -r a b < <(sed -n 's/^latency \([^ ]*\) s, bandwidth \([^ ]*\) Gbit.*/\1 \2/p' "$tmp/fit_out")
  python3 - "$tmp/fitted.json" "$a" "$b" <<'PY'
import json, sys
n = json.load(open(sys.argv[1]))["cluster"]["network"]
a, b = float(sys.argv[2]), float(sys.argv[3])
sys.exit(not (abs(n["latency_s"] - a) <= 1e-5 * a and abs(n["bandwidth_gbps"] - b) <= 1e-5 * b
              and n["collective"] == "ring"))
PY
}
check "... with the fitted keys" written
# an older all_reduce_perf without the root column: its header says where the times are
awk '/^#       size/ {sub(/    root/, ""); print; next} /^ +[0-9]/ {$5 = ""; print; next} {print}' \
  "$fx/all_reduce_perf.txt" >"$tmp/old_format.txt"
check "all_reduce_perf without its root column" fit "$tmp/old_format.txt" 8 ring 0 inf out --
# a CSV whose comment names size and time is still a CSV
{ echo "# size in bytes, time in seconds"; cat "$fx/allreduce_gloo_2proc.csv"; } >"$tmp/commented.csv"
check "a CSV comment is not a header" fit "$tmp/commented.csv" 2 ring 0 inf out -- --workers 2
# relative paths of the scenario are made absolute in what --out writes
mkdir -p "$tmp/a" "$tmp/b"
cp "$fx/step_times_2proc.csv" "$tmp/a/steps.csv"
sed 's/"compute": {"step_time_s": 0.1}/"compute": {"step_time_s": 0.1, "jitter": {"dist": "empirical", "file": "steps.csv"}}/' \
  "$src/tests/bad_inputs/base.json" >"$tmp/a/scn.json"
"$syncsim" calibrate network "$fx/allreduce_gloo_2proc.csv" --workers 2 --scenario "$tmp/a/scn.json" \
  --out "$tmp/b/out.json" >/dev/null 2>&1
check "--out elsewhere keeps the scenario's files" "$syncsim" validate "$tmp/b/out.json"

# bad input: exit 2, a message, nothing written
refused() { # REGEX ARGS...: calibrate ARGS exits 2 with a message matching REGEX
  local want=$1
  shift
  "$syncsim" calibrate "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq 2 ] && grep -Eq "$want" "$tmp/err" || { echo "rc $rc: $(cat "$tmp/err")" >&2; return 1; }
}
printf '1024,0.001\n2048,0.002\n' >"$tmp/two.csv"
printf 'bytes,seconds\n1024,0.001\n2048,-1\n' >"$tmp/neg.csv"
printf 'bytes,seconds\n1024,0.001,7\n' >"$tmp/three.csv"
printf 'bytes,seconds\n1024,0.004\n2048,0.002\n4096,0.001\n' >"$tmp/shrinking.csv"
: >"$tmp/empty.csv"
check "a CSV needs --workers" refused "give --workers" network "$tmp/two.csv"
check "a negative time is named with its line" refused "neg.csv:3: expected a size and a time above 0" network "$tmp/neg.csv" --workers 2
check "three fields are refused" refused "three.csv:2: expected 'bytes,seconds'" network "$tmp/three.csv" --workers 2
check "times that shrink fit no bandwidth" refused "no bandwidth fits" network "$tmp/shrinking.csv" --workers 2
check "an empty file" refused "no measurements" network "$tmp/empty.csv" --workers 2
check "a missing file" refused "No such file" network "$tmp/missing.csv" --workers 2
check "no size in the range" refused "no size in" network "$tmp/two.csv" --workers 2 --min-bytes 1e9
check "--out alone" refused "go together" network "$tmp/two.csv" --workers 2 --out "$tmp/x.json"
check "nothing written" test ! -e "$tmp/x.json"
check "calibrate alone" refused "needs 'network' or 'compute'" 
check "an unknown collective" refused "collective" network "$tmp/two.csv" --workers 2 --collective star
sed 's/"network": {"latency_s": 0.001, "bandwidth_gbps": 1}/"network": {"latency_s": 0.001, "bandwidth_gbps": 1, "collective": "hierarchical", "workers_per_node": 1}/' \
  "$src/tests/bad_inputs/base.json" >"$tmp/hier.json"
check "a scenario across nodes is not written" refused "cross nodes" network "$tmp/two.csv" \
  --workers 2 --scenario "$tmp/hier.json" --out "$tmp/h.json"
check "... nothing written" test ! -e "$tmp/h.json"

# compute, from measured times: the step time, sigma and speeds against the independent ones
times_fit() { # CSV
  "$syncsim" calibrate compute "$src/tests/bad_inputs/base.json" --times "$1" >"$tmp/c" 2>&1 ||
    { cat "$tmp/c" >&2; return 1; }
  local got want
  got=$(sed -n 's/.*"step_time_s": \([^,]*\), "jitter": {"dist": "lognormal", "sigma": \([^}]*\)}\(, "speeds": \[\(.*\)\]\)\{0,1\}.*/\1 \2 \4/p' "$tmp/c" | tr -d ',')
  want=$(python3 "$tool" compute "$1")
  python3 - "$got" "$want" <<'PY' || { echo "got $got; expected $want" >&2; return 1; }
import sys
g, w = [float(x) for x in sys.argv[1].split()], [float(x) for x in sys.argv[2].split()]
sys.exit(len(g) != len(w) or any(abs(a - b) > 2e-3 * abs(b) for a, b in zip(g, w)))
PY
}
check "measured times of two processes: step, sigma, speeds" times_fit "$fx/step_times_2proc.csv"
printf 'worker,seconds\n0,0.010\n0,0.012\n1,0.0102\n1,0.0118\n' >"$tmp/even.csv"
check "equal workers: no speeds" times_fit "$tmp/even.csv"
printf 'worker,seconds\n0,0.010\n0,0.014\n0,0.006\n0,0.012\n1,0.0109\n1,0.0135\n1,0.0065\n1,0.0127\n' >"$tmp/noisy.csv"
check "4% apart but within the noise: no speeds" times_fit "$tmp/noisy.csv"
check "... as printed" grep -q "no speeds" "$tmp/c"
printf 'worker,seconds\n0,0.01\n' >"$tmp/one.csv"
check "one time per worker is refused" refused "at least 2 each" compute "$src/tests/bad_inputs/base.json" --times "$tmp/one.csv"
check "--workers with --times is refused" refused "with --times the times are yours" compute \
  "$src/tests/bad_inputs/base.json" --times "$tmp/even.csv" --workers 2
# a step derived from FLOPs is replaced, the keys that derived it removed
sed 's/"compute": {"step_time_s": 0.1}/"compute": {"device_tflops": 10, "utilization": 0.5}/' \
  "$src/tests/bad_inputs/base.json" >"$tmp/tf.json"
"$syncsim" calibrate compute "$tmp/tf.json" --times "$tmp/even.csv" --out "$tmp/tf_out.json" >/dev/null 2>&1
check "--out replaces device_tflops with the measured step" "$syncsim" validate "$tmp/tf_out.json"

# compute, measured here: K workers at once, every step time written, a valid scenario out
"$syncsim" calibrate compute "$src/tests/bad_inputs/base.json" --workers 2 --steps 20 --warmup 2 \
  --times-out "$tmp/steps.csv" --out "$tmp/calibrated.json" >"$tmp/own" 2>&1
check "calibrate compute measures 2 workers" grep -q '"step_time_s":' "$tmp/own"
check "... writes 2 x 20 step times" test "$(grep -c '^[01],' "$tmp/steps.csv")" -eq 40
check "... and a valid scenario" "$syncsim" validate "$tmp/calibrated.json"
check "a timing-only model has no step to time" refused "no step to time" compute \
  "$src/scenarios/examples/timing_only_async.json"

# the empirical jitter reads those times: a run with it works and differs from none
"$syncsim" run "$src/tests/bad_inputs/base.json" --set cluster.compute.jitter.dist=empirical \
  --set "cluster.compute.jitter.file=$fx/step_times_2proc.csv" --db "$tmp/emp.db" --quiet >/dev/null 2>&1
check "a run with empirical jitter" test -s "$tmp/emp.db"
check "empirical jitter without its file is refused" \
  bash -c "'$syncsim' validate '$src/tests/bad_inputs/base.json' --set cluster.compute.jitter.dist=empirical 2>&1 | grep -q 'jitter.file: required'"

echo "calibrate: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
