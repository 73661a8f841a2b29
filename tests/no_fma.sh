#!/usr/bin/env bash
# The FMA rule (CMakeLists.txt): no fused multiply-add in syncsim's compiled code, on any
# code path. Fails when the disassembly of the given files shows an FMA instruction outside
# the functions named with --allow (the benchmark's loops that time a fused multiply-add
# against syncsim's separate multiply and add, cli/cli_bench_peak.c; nothing that shapes a
# result).
# Usage: tests/no_fma.sh [--allow FUNCTION]... FILE...
#        (the static libraries and the syncsim executable)
set -euo pipefail
command -v objdump >/dev/null || { echo "no_fma: objdump (binutils) is missing" >&2; exit 1; }
allow=" "
while [ "${1:-}" = --allow ]; do
  allow="$allow$2 "
  shift 2
done
# objdump starts each function with "ADDRESS <NAME>:"; skip the allowed functions' bodies
found=$(objdump -d --no-show-raw-insn "$@" | awk -v allow="$allow" '
  /^[0-9a-f]+ <.*>:$/ { name = $2; sub(/^</, "", name); sub(/>:$/, "", name)
                        sub(/\..*$/, "", name) # a compiler clone: peak_fma512.constprop.0
                        skip = index(allow, " " name " ") > 0; next }
  !skip' | grep -E '\bv?f(n?)m(add|sub|addsub|subadd)[0-9]{3}(p|s)[sd]\b' || true)
if [ -n "$found" ]; then
  echo "no_fma: FMA instructions in the build (is -ffp-contract=off in effect?):" >&2
  echo "$found" | head -20 >&2
  exit 1
fi
echo "no_fma: no FMA instruction in $# files (allowed in:$allow)"
