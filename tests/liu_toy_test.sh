#!/usr/bin/env bash
# scenarios/papers/liu_toy.json against the clock of Liu et al.'s toy notebook: the arrival
# schedule (time, worker, staleness, local steps) of every run, over 100 phases, equals the
# one tests/tools/liu_schedule.py computes on its own (which first reproduces the
# notebook's printed evaluation times) — synchronous DiLoCo, vanilla and buffered async
# with a 0.5 s grace window, DyLU with and without one, and vanilla async without one.
# Usage: liu_toy_test.sh PATH/TO/syncsim SOURCE_DIR
set -u
syncsim=$1
src=$2
# shellcheck source=tests/test_lib.sh
. "$src/tests/test_lib.sh"

if ! command -v python3 >/dev/null; then
  bad "python3 is not installed (./setup.sh test installs it)"
  exit 1
fi
tool="$src/tests/tools/liu_schedule.py"
check "the reference reproduces the notebook's printed times" python3 "$tool" selfcheck

# 100 phases (2000 local steps per shard); the schedule needs no evaluations between
sets=(--set stop.steps=2000 --set record.timeline=1000000 --set eval.at_sync=false
      --set eval.every_s=10000 --set policies.sync_diloco.inner.decay_steps=2000)
for p in async_vanilla async_buffer4 async_dn_dylu; do
  sets+=(--set "policies.$p.inner.decay_steps=2000")
done
scn="$src/scenarios/papers/liu_toy.json"
"$syncsim" run "$scn" "${sets[@]}" --db "$tmp/grace.db" --quiet >/dev/null ||
  bad "liu_toy.json does not run"
"$syncsim" run "$scn" "${sets[@]}" --set policies.async_vanilla.grace_s=0 \
  --set policies.async_dn_dylu.grace_s=0 --db "$tmp/nograce.db" --quiet >/dev/null ||
  bad "liu_toy.json without grace does not run"

schedule() { check "$2 ($1): the notebook's schedule" python3 "$tool" check "$tmp/$1.db" "$2" "$3" "$4" "$5" 100; }
schedule grace sync_diloco sync 0 0
schedule grace async_vanilla async 0.5 0
schedule grace async_buffer4 async 0.5 0
schedule grace async_dn_dylu async 0.5 1
schedule nograce async_vanilla async 0 0
schedule nograce async_dn_dylu async 0 1

# the notebook's own loop and its float clock differ from the reference only at exact ties,
# as many times as scenarios/papers/README.md says
ties() {
  python3 "$tool" ties "$1" "$2" 100 >"$tmp/ties" 2>&1 &&
    grep -qx "$3 of $4 arrivals differ, all at exact ties" "$tmp/ties" ||
    { cat "$tmp/ties" >&2; return 1; }
}
check "float clock, grace 0.5 s: 16 arrivals at ties" ties 0.5 0 16 400
check "float clock, DyLU, grace 0.5 s: none" ties 0.5 1 0 737
check "float clock, grace 0: 7 arrivals at ties" ties 0 0 7 400
check "float clock, DyLU, grace 0: 1 arrival at a tie" ties 0 1 1 736

# the check can fail: the causal window (window_end) idles every window's grace period
if "$syncsim" run "$scn" "${sets[@]}" --set policies.async_vanilla.grace_restart=window_end \
  --db "$tmp/causal.db" --quiet >/dev/null; then
  python3 "$tool" check "$tmp/causal.db" async_vanilla async 0.5 0 100 >"$tmp/causal" 2>&1
  check "window_end is not the notebook's schedule" grep -q "^FAIL: async_vanilla: arrival" \
    "$tmp/causal"
else
  bad "the window_end run failed"
fi

echo "liu_toy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
