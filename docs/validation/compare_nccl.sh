#!/usr/bin/env bash
# Set syncsim's ring all-reduce beside NCCL measurements. By default: one node of 8 A100s on
# NVSwitch (nd_a100_v4_allreduce.csv), with two numbers read off that table: the bandwidth,
# its largest message's bus bandwidth (231.58 GB/s = 1852.64 Gbit/s), and the latency, from
# its 32 KiB message (41.9 us, almost all latency: 2(K-1) = 14 steps of about 3 us).
# For each message size of the table, syncsim simulates one DDP step of a timing-only model
# (compute: 1 ns) on K workers; the script prints the measured bus bandwidth, syncsim's
# (bytes / time * 2(K-1)/K, as nccl-tests computes it) and their ratio.
#
# usage: docs/validation/compare_nccl.sh [--syncsim PATH] [--table CSV] [--workers K]
#                                        [--latency-s S] [--bandwidth-gbps B]
# CSV: lines "bytes,busbw_GBps" ('#' comments and a header line allowed).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
syncsim=$here/../../build/syncsim
table=$here/nd_a100_v4_allreduce.csv
workers=8 latency=3e-6 bandwidth=1852.64
while [ $# -gt 0 ]; do
  case $1 in
    --syncsim) syncsim=$2 ;;
    --table) table=$2 ;;
    --workers) workers=$2 ;;
    --latency-s) latency=$2 ;;
    --bandwidth-gbps) bandwidth=$2 ;;
    *) echo "usage: $0 [--syncsim PATH] [--table CSV] [--workers K] [--latency-s S] [--bandwidth-gbps B]" >&2
       exit 2 ;;
  esac
  shift 2
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
grep -v '^#' "$table" | grep '^[0-9]' >"$tmp/table.csv"
params=$(cut -d, -f1 "$tmp/table.csv" | awk '{printf "%s%.0f", (NR > 1 ? ", " : ""), $1 / 4}')
cat >"$tmp/ar.json" <<JSON
{"name": "nccl_compare",
 "workload": {"model": {"type": "none", "params": 256}},
 "cluster": {"workers": $workers, "compute": {"step_time_s": 1e-9},
             "network": {"latency_s": $latency, "bandwidth_gbps": $bandwidth,
                         "collective": "ring"},
             "comm": {"bytes_per_param": 4}},
 "policies": [{"type": "ddp"}],
 "stop": {"steps": 1}, "eval": {"every_s": 1e9},
 "sweep": {"workload.model.params": [$params]}}
JSON
"$syncsim" sweep "$tmp/ar.json" --db "$tmp/ar.db" --jobs 1 --quiet >/dev/null
sqlite3 -separator , "$tmp/ar.db" "select cast(json_extract(sweep_point,
  '\$.\"workload.model.params\"') as integer) * 4, sim_time_s - 1e-9 from runs
  where status = 'done'" >"$tmp/sim.csv"
printf '%12s  %14s  %14s  %7s\n' "bytes" "NCCL busbw" "syncsim busbw" "ratio"
awk -F, -v sim="$tmp/sim.csv" -v K="$workers" '
  BEGIN { while ((getline line < sim) > 0) { split(line, f, ","); t[f[1]] = f[2] } }
  { if (!($1 in t)) { print "no simulated time for " $1 " bytes" > "/dev/stderr"; exit 1 }
    busbw = $1 / t[$1] * 2 * (K - 1) / K / 1e9
    printf "%12.0f  %9.2f GB/s  %9.2f GB/s  %6.2fx\n", $1, $2, busbw, busbw / $2 }' "$tmp/table.csv"
