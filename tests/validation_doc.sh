#!/usr/bin/env bash
# docs/validation.md's table is what docs/validation/compare_nccl.sh prints with this build.
# usage: tests/validation_doc.sh SYNCSIM SOURCE_DIR
set -euo pipefail
syncsim=$1 src=$2
out=$("$src/docs/validation/compare_nccl.sh" --syncsim "$syncsim")
n=0
while IFS= read -r line; do
  n=$((n + 1))
  if ! grep -qxF "$line" "$src/docs/validation.md"; then
    echo "FAIL: docs/validation.md lacks this line of compare_nccl.sh's output:"
    echo "$line"
    exit 1
  fi
done <<<"$out"
[ "$n" -ge 20 ] || { echo "FAIL: compare_nccl.sh printed only $n lines"; exit 1; }
echo "validation_doc: all $n lines of compare_nccl.sh's table are in docs/validation.md"
