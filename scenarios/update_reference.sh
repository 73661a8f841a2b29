#!/usr/bin/env bash
# Regenerate the key reference in scenarios/README.md from the loader's own tables, and the
# bad-input cases derived from it (tests/bad_inputs/keys.tsv; needs python3).
# Usage: scenarios/update_reference.sh [PATH/TO/syncsim]   (default: build/syncsim)
set -euo pipefail
cd "$(dirname "$0")/.."
syncsim=${1:-build/syncsim}
readme=scenarios/README.md
begin='<!-- BEGIN generated: syncsim list keys --markdown -->'
end='<!-- END generated -->'
"$syncsim" list keys --markdown >"$readme.keys"
awk -v begin="$begin" -v end="$end" -v keys="$readme.keys" '
  $0 == begin { print; while ((getline line < keys) > 0) print line; skip = 1; next }
  $0 == end { skip = 0 }
  !skip { print }' "$readme" >"$readme.new"
rm "$readme.keys"
mv "$readme.new" "$readme"
python3 tests/bad_inputs/keys_from_reference.py .
