#!/usr/bin/env bash
# The FMA rule (CMakeLists.txt): no fused multiply-add in syncsim's compiled code, on any
# code path. Fails when the disassembly of the given files shows an FMA instruction.
# Usage: tests/no_fma.sh FILE...   (the static libraries and the syncsim executable)
set -euo pipefail
command -v objdump >/dev/null || { echo "no_fma: objdump (binutils) is missing" >&2; exit 1; }
found=$(objdump -d --no-show-raw-insn "$@" | grep -E '\bv?f(n?)m(add|sub|addsub|subadd)[0-9]{3}(p|s)[sd]\b' || true)
if [ -n "$found" ]; then
  echo "no_fma: FMA instructions in the build (is -ffp-contract=off in effect?):" >&2
  echo "$found" | head -20 >&2
  exit 1
fi
echo "no_fma: no FMA instruction in $# files"
