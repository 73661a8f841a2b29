#!/usr/bin/env bash
# Calibrate syncsim on this machine and predict real training runs: two PyTorch processes
# (gloo) training an MLP 784-256-10, DDP and Local SGD (docs/validation.md).
#
# 1. Measure: all-reduce times against size (torch_allreduce.py); the compute-only step
#    times of one process alone and of two at once (torch_train.py --times-out); the wall
#    time of 384 steps of each run (DDP with PyTorch's default 25 MB bucket and with
#    0.25 MB buckets, Local SGD with H 8 and 32), each the median of --repeats runs.
# 2. Predict each run with gloo_2proc.json (a timing-only model of the MLP's 203,530
#    parameters), twice:
#    before  what a user would first try: the one-process step time, latency and bandwidth
#            fitted to every all-reduce size, one all-reduce per step;
#    after   the step times measured inside a two-process run (their mean and their
#            distribution: jitter.dist empirical), the network fitted over the sizes these
#            runs move (2e5..2e6 bytes), DDP's buckets (bucket_mb, overlapping the backward
#            pass), and the host work each synchronization pays (comm.overhead_s).
# 3. Print measured against predicted wall time, and the errors.
#
# usage: docs/validation/gloo_validation.sh [--syncsim PATH] [--python PATH] [--out DIR]
#                                           [--repeats N]
# Needs PyTorch (Debian: python3-torch). Takes a few minutes; run it on an idle machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
syncsim=$here/../../build/syncsim
python=/usr/bin/python3
out=$(mktemp -d)
repeats=5
while [ $# -gt 0 ]; do
  case $1 in
    --syncsim) syncsim=$2 ;;
    --python) python=$2 ;;
    --out) out=$2 ;;
    --repeats) repeats=$2 ;;
    *) echo "usage: $0 [--syncsim PATH] [--python PATH] [--out DIR] [--repeats N]" >&2; exit 2 ;;
  esac
  shift 2
done
mkdir -p "$out"
steps=384
echo "measurements and predictions in $out" >&2

# ---- 1. measure -------------------------------------------------------------------------------
"$python" "$here/torch_allreduce.py" --world 2 --max-bytes $((16 << 20)) --iters 50 \
  --out "$out/allreduce.csv" >&2
"$python" "$here/torch_train.py" --mode local --H 1000000 --world 1 --steps "$steps" \
  --times-out "$out/times_1proc.csv" >/dev/null
"$python" "$here/torch_train.py" --mode local --H 1000000 --world 2 --steps "$steps" \
  --times-out "$out/times_2proc.csv" >/dev/null
measure() { # NAME ARGS...: the median wall time of --repeats runs, and the last run's JSON
  local name=$1
  shift
  : >"$out/$name.jsonl"
  for _ in $(seq "$repeats"); do
    timeout 120 "$python" "$here/torch_train.py" --world 2 --steps "$steps" "$@" >>"$out/$name.jsonl" ||
      echo "a run of $name did not finish in 120 s: left out" >&2
  done
  "$python" - "$out/$name.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(statistics.median(r["wall_s"] for r in rows))
PY
}
declare -A wall
wall[ddp]=$(measure ddp --mode ddp)
wall[ddp_buckets]=$(measure ddp_buckets --mode ddp --bucket-mb 0.25)
wall[local_sgd_H8]=$(measure local_sgd_H8 --mode local --H 8)
wall[local_sgd_H32]=$(measure local_sgd_H32 --mode local --H 32)
host_s=$("$python" -c "import json, statistics, sys; print(statistics.median(json.loads(l)['sync_host_s'] for l in open(sys.argv[1])))" "$out/local_sgd_H8.jsonl")

# ---- 2. calibrate and predict -----------------------------------------------------------------
keys() { # the "step_time_s" / "latency bandwidth" numbers of a calibrate run
  sed -n "$1" "$2"
}
"$syncsim" calibrate network "$out/allreduce.csv" --workers 2 >"$out/net_all.txt"
"$syncsim" calibrate network "$out/allreduce.csv" --workers 2 --min-bytes 2e5 --max-bytes 2e6 \
  >"$out/net_near.txt"
"$syncsim" calibrate compute "$here/gloo_2proc.json" --times "$out/times_1proc.csv" >"$out/c1.txt"
"$syncsim" calibrate compute "$here/gloo_2proc.json" --times "$out/times_2proc.csv" >"$out/c2.txt"
net='s/^latency \([^ ]*\) s, bandwidth \([^ ]*\) Gbit.*/\1 \2/p'
step='s/.*"step_time_s": \([^,]*\),.*/\1/p'
read -r a_all b_all < <(keys "$net" "$out/net_all.txt")
read -r a_near b_near < <(keys "$net" "$out/net_near.txt")
step1=$(keys "$step" "$out/c1.txt")
speeds2=$(sed -n 's/.*"speeds": \(\[[^]]*\]\).*/\1/p' "$out/c2.txt")
step2=$(keys "$step" "$out/c2.txt")
predict() { # DB ARGS...
  local db=$1
  shift
  "$syncsim" run "$here/gloo_2proc.json" --db "$db" --quiet "$@" >/dev/null
}
predict "$out/before.db" --set "cluster.compute.step_time_s=$step1" \
  --set "cluster.network.latency_s=$a_all" --set "cluster.network.bandwidth_gbps=$b_all" \
  --set 'policies.ddp_buckets.bucket_mb=null' --set 'policies.ddp_buckets.overlap=0'
after=(--set "cluster.compute.step_time_s=$step2"
       --set "cluster.compute.jitter={\"dist\": \"empirical\", \"file\": \"$out/times_2proc.csv\"}"
       --set "cluster.network.latency_s=$a_near" --set "cluster.network.bandwidth_gbps=$b_near"
       --set "cluster.comm.overhead_s=$host_s")
[ -n "$speeds2" ] && after+=(--set "cluster.compute.speeds=$speeds2")
predict "$out/after.db" "${after[@]}"

# ---- 3. compare -------------------------------------------------------------------------------
{
  echo "calibration: one process ${step1} s per step; two at once ${step2} s${speeds2:+ (speeds $speeds2)};"
  echo "network, all sizes: latency ${a_all} s, ${b_all} Gbit/s; 2e5..2e6 bytes: ${a_near} s, ${b_near} Gbit/s;"
  echo "host work per synchronization ${host_s} s"
  echo
  printf '%-15s %10s %10s %8s %10s %8s\n' run measured_s before_s error after_s error
  for label in ddp ddp_buckets local_sgd_H8 local_sgd_H32; do
    b=$(sqlite3 "$out/before.db" "SELECT sim_time_s FROM runs WHERE label = '$label'")
    a=$(sqlite3 "$out/after.db" "SELECT sim_time_s FROM runs WHERE label = '$label'")
    m=${wall[$label]}
    awk -v l="$label" -v m="$m" -v b="$b" -v a="$a" 'BEGIN {
      printf "%-15s %10.3f %10.3f %+7.0f%% %10.3f %+7.0f%%\n", l, m, b, 100 * (b - m) / m, a, 100 * (a - m) / m }'
  done
} | tee "$out/comparison.txt"
