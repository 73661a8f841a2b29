#!/usr/bin/env bash
# Calibrate syncsim on this machine and predict real training runs: two PyTorch processes
# (gloo) training an MLP 784-256-10, DDP and Local SGD (docs/validation.md).
#
# 1. Measure: all-reduce times against size (torch_allreduce.py); the compute-only step
#    times of one process alone and of two at once (torch_train.py --times-out); the wall
#    time of 384 steps of each run (DDP, Local SGD with H 8 and 32), each the median of
#    --repeats runs; and, from a Local SGD run with H 16 that is not predicted, the host
#    work of a synchronization besides its all-reduce.
# 2. Predict each run with gloo_2proc.json (a timing-only model of the MLP's 203,530
#    parameters), twice:
#    before  what a user would first try: the one-process step time, latency and bandwidth
#            fitted to every all-reduce size, one all-reduce per step;
#    after   the compute-only step times measured inside the run predicted (Local SGD's
#            steps that do not synchronize; for DDP, whose steps all communicate, those of
#            the two-process run measured just before), as their mean and their
#            distribution (jitter.dist empirical); the network fitted over the sizes these
#            runs move (2e5..2e6 bytes); and the host work each synchronization pays
#            (comm.overhead_s, from a Local SGD run with H 16 that is not predicted). The
#            machine's speed drifts between measurements taken minutes apart; step times
#            taken inside the run itself follow it. (PyTorch puts this model's gradients in
#            one DDP bucket: its first bucket holds up to 1 MiB, and it never splits a
#            tensor.)
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
measure() { # NAME ARGS...: the median wall time of --repeats runs; every run's compute-only
  local name=$1  # step times into NAME.times.csv
  shift
  : >"$out/$name.jsonl"
  echo "worker,seconds" >"$out/$name.times.csv"
  for i in $(seq "$repeats"); do
    timeout 120 "$python" "$here/torch_train.py" --world 2 --steps "$steps" "$@" \
      --times-out "$out/$name.times.$i.csv" >>"$out/$name.jsonl" ||
      echo "a run of $name did not finish in 120 s: left out" >&2
    [ -f "$out/$name.times.$i.csv" ] && tail -n +2 "$out/$name.times.$i.csv" >>"$out/$name.times.csv"
  done
  "$python" - "$out/$name.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(statistics.median(r["wall_s"] for r in rows))
PY
}
declare -A wall
wall[ddp]=$(measure ddp --mode ddp)
wall[local_sgd_H8]=$(measure local_sgd_H8 --mode local --H 8)
wall[local_sgd_H32]=$(measure local_sgd_H32 --mode local --H 32)
measure host_H16 --mode local --H 16 >/dev/null
host_s=$("$python" -c "import json, statistics, sys; print(statistics.median(json.loads(l)['sync_host_s'] for l in open(sys.argv[1])))" "$out/host_H16.jsonl")

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
  --set "cluster.network.latency_s=$a_all" --set "cluster.network.bandwidth_gbps=$b_all"
after() { # LABEL TIMES: predict run LABEL with the step times in TIMES
  local label=$1 times=$2 st sp
  "$syncsim" calibrate compute "$here/gloo_2proc.json" --times "$times" >"$out/c_$label.txt"
  st=$(keys "$step" "$out/c_$label.txt")
  sp=$(sed -n 's/.*"speeds": \(\[[^]]*\]\).*/\1/p' "$out/c_$label.txt")
  local sets=(--set "cluster.compute.step_time_s=$st"
              --set "cluster.compute.jitter={\"dist\": \"empirical\", \"file\": \"$times\"}"
              --set "cluster.network.latency_s=$a_near" --set "cluster.network.bandwidth_gbps=$b_near"
              --set "cluster.comm.overhead_s=$host_s")
  [ -n "$sp" ] && sets+=(--set "cluster.compute.speeds=$sp")
  predict "$out/after_$label.db" "${sets[@]}"
}
after ddp "$out/times_2proc.csv"
after local_sgd_H8 "$out/local_sgd_H8.times.csv"
after local_sgd_H32 "$out/local_sgd_H32.times.csv"

# ---- 3. compare -------------------------------------------------------------------------------
{
  echo "calibration: one process ${step1} s per step; two at once ${step2} s${speeds2:+ (speeds $speeds2)}"
  echo "  (in the runs: Local SGD H 8 $(keys "$step" "$out/c_local_sgd_H8.txt") s, H 32 $(keys "$step" "$out/c_local_sgd_H32.txt") s);"
  echo "network, all sizes: latency ${a_all} s, ${b_all} Gbit/s; 2e5..2e6 bytes: ${a_near} s, ${b_near} Gbit/s;"
  echo "host work per synchronization ${host_s} s (Local SGD, H 16)"
  echo
  printf '%-15s %10s %10s %8s %10s %8s\n' run measured_s before_s error after_s error
  for label in ddp local_sgd_H8 local_sgd_H32; do
    b=$(sqlite3 "$out/before.db" "SELECT sim_time_s FROM runs WHERE label = '$label'")
    a=$(sqlite3 "$out/after_$label.db" "SELECT sim_time_s FROM runs WHERE label = '$label'")
    m=${wall[$label]}
    awk -v l="$label" -v m="$m" -v b="$b" -v a="$a" 'BEGIN {
      printf "%-15s %10.3f %10.3f %+7.0f%% %10.3f %+7.0f%%\n", l, m, b, 100 * (b - m) / m, a, 100 * (a - m) / m }'
  done
} | tee "$out/comparison.txt"
