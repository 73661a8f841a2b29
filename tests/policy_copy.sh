#!/usr/bin/env bash
# A policy is one file (docs/adding-a-policy.md): the guide's excerpts are the real example's
# code, and in a copy of the sources, copy
# optim/opt_diloco.c to optim/opt_mydiloco.c with every "diloco" in it replaced by "mydiloco",
# touch nothing else, build: `syncsim list policies` shows mydiloco with DiLoCo's keys, and a
# scenario runs it, with the same results as diloco, bit for bit.
# Usage: tests/policy_copy.sh SOURCE_DIR C_COMPILER
set -euo pipefail
src=$1
cc=$2
source "$src/tests/test_lib.sh"

# docs/adding-a-policy.md's code excerpts are the real file's
guide=$src/docs/adding-a-policy.md
example=$src/optim/opt_slowmo.c
missing=$(awk -v example="$example" '
  BEGIN { while ((getline line < example) > 0) text = text line "\n" }
  /^```c$/ { block = ""; inside = 1; next }
  inside && /^```$/ { inside = 0; n++; if (!index(text, block)) { print n; bad++ } ; next }
  inside { block = block $0 "\n" }
  END { if (!n) print "none" }' "$guide")
check "every C excerpt of docs/adding-a-policy.md is in optim/opt_slowmo.c (missing: $missing)" \
  test -z "$missing"

copy=$tmp/src
mkdir -p "$copy"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 cp --parents -t "$copy" 2>/dev/null) || true
else
  for d in CMakeLists.txt cmake cli optim sim scenarios workloads analysis tests; do
    cp -r "$src/$d" "$copy/"
  done
fi
test -f "$copy/optim/opt_diloco.c" || { echo "policy_copy: copying the sources failed" >&2; exit 1; }
sed 's/diloco/mydiloco/g' "$copy/optim/opt_diloco.c" >"$copy/optim/opt_mydiloco.c"

build=$tmp/build
if ! cmake -S "$copy" -B "$build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >"$tmp/cmake.log" 2>&1 ||
  ! cmake --build "$build" --target syncsim -j 2 >"$tmp/build.log" 2>&1; then
  tail -30 "$tmp/cmake.log" "$tmp/build.log" >&2
  echo "FAIL: the copy with optim/opt_mydiloco.c does not build" >&2
  exit 1
fi
syncsim=$build/syncsim

policies=$("$syncsim" list policies)
check "list policies names mydiloco as a type" grep -q "one of .*diloco.*mydiloco" <<<"$policies"
check "list policies documents mydiloco's keys" grep -q "H .*mydiloco only" <<<"$policies"

cat >"$tmp/s.json" <<'EOF'
{"workload": {"model": {"type": "mlp", "hidden": [16]},
              "dataset": {"train_examples": 256, "test_examples": 64, "dim": 12}},
 "cluster": {"workers": 3, "compute": {"step_time_s": 0.1, "speeds": [1, 0.8, 0.5]}},
 "policies": [{"type": "diloco", "H": 4, "warmup_steps": 2},
              {"type": "mydiloco", "H": 4, "warmup_steps": 2}],
 "stop": {"steps": 30}, "eval": {"every_s": 0.5}}
EOF
if "$syncsim" run "$tmp/s.json" --db "$tmp/s.db" >"$tmp/run.log" 2>&1; then
  ok
  rows() {
    sqlite3 "$tmp/s.db" "SELECT m.kind, quote(m.sim_time_s), m.step, quote(m.loss), quote(m.accuracy)
                         FROM metrics m JOIN runs r ON r.id = m.run_id
                         WHERE r.policy = '$1' ORDER BY 1, 2, 3"
  }
  a=$(rows diloco)
  b=$(rows mydiloco)
  check "diloco recorded metrics" test -n "$a"
  check "mydiloco gives diloco's metrics, bit for bit" test "$a" = "$b"
else
  cat "$tmp/run.log" >&2
  bad "a scenario runs mydiloco"
fi

echo "policy_copy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
