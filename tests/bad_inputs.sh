#!/usr/bin/env bash
# The bad-input corpus: every case of tests/bad_inputs/*.tsv must make `validate` and `run`
# exit 2 with one line on stderr that names the file (or --set) and matches the case's
# message, create no database, and leave an existing database byte for byte as it was.
# Usage: bad_inputs.sh PATH/TO/syncsim SOURCE_DIR
#
# A case is one line of four tab-separated fields: NAME KIND INPUT MESSAGE, where KIND is
#   json  INPUT is the scenario file's text; $TAIL stands for a valid remainder (a policy
#         and a stop condition), $DIR for this run's temporary folder, $NOTHING for nothing
#         (an empty field would vanish between the tabs)
#   text  the same, with printf %b escapes (\n, \t, \x01, \0NNN) made into raw bytes
#   set   INPUT is one --set override of tests/bad_inputs/base.json (a valid scenario)
#   sets  INPUT is several overrides, separated by " ;; "
#   sweep, sweepset  as json and set, for a bad sweep: checked by `validate` and `sweep`
#         (`run` ignores a scenario's sweep)
# and MESSAGE is an extended regular expression the message must match after its file
# name. Lines starting with # are comments.
set -u
syncsim=$1
src=$2
# shellcheck source=tests/test_lib.sh
. "$src/tests/test_lib.sh"
cases=0
tail_json='"policies": [{"type": "ddp"}], "stop": {"sim_time_s": 1}'
base=$src/tests/bad_inputs/base.json

# A database a valid run wrote, and its pristine copy.
"$syncsim" run "$base" --db "$tmp/kept.db" --quiet >/dev/null 2>&1 ||
  { echo "bad_inputs: the base scenario does not run" >&2; exit 1; }
cp "$tmp/kept.db" "$tmp/pristine.db"

# Fixtures the cases refer to through $DIR.
mkdir -p "$tmp/a_dir"
printf 'time_s,worker,speed\n0.5,*,0.5\n' >"$tmp/speed_ok.csv"
printf 'time_s,worker,speed\r0.5,0,0.5\r' >"$tmp/speed_cr.csv"
truncate -s 100G "$tmp/huge.txt" # sparse: refused by its size, before a byte is read
printf '\xef\xbb\xbftime_s,worker,speed\n0.5,0,0.5\n' >"$tmp/speed_bom.csv"

run_case() { # run_case NAME KIND INPUT MESSAGE
  local name=$1 kind=$2 input=$3 want=$4 file="$tmp/$1.json"
  local -a args=()
  case $kind in
    json | text | sweep)
      input=${input//'$TAIL'/$tail_json}
      input=${input//'$DIR'/$tmp}
      input=${input//'$NOTHING'/}
      if [ "$kind" = text ]; then printf '%b' "$input" >"$file"; else printf '%s\n' "$input" >"$file"; fi ;;
    set | sets | sweepset)
      file=$base
      local rest=$input
      while [ -n "$rest" ]; do
        args+=(--set "${rest%% ;; *}")
        [ "${rest#* ;; }" = "$rest" ] && break
        rest=${rest#* ;; }
      done ;;
    *) bad "$name: unknown kind '$kind'"; return ;;
  esac
  local cmd rc ok=1 cmds="validate run run_kept"
  case $kind in sweep*) cmds="validate sweep sweep_kept" ;; esac
  for cmd in $cmds; do
    local db="$tmp/new.db"
    [ "${cmd%_kept}" != "$cmd" ] && db="$tmp/kept.db"
    "$syncsim" ${cmd%_kept} "$file" "${args[@]}" --db "$db" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ $rc -ne 2 ]; then bad "$name: $cmd exits $rc, not 2: $(head -c 300 "$tmp/err")"; ok=0; fi
    if [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
      bad "$name: $cmd prints $(wc -l <"$tmp/err") lines: $(head -c 300 "$tmp/err")"; ok=0
    fi
    local names_file=0
    case $kind in
      json | text | sweep) grep -Fq -- "syncsim: $file:" "$tmp/err" && names_file=1 ;;
      *) grep -Eq -- "^syncsim: ($base|--set)" "$tmp/err" && names_file=1 ;;
    esac
    if [ $names_file -ne 1 ]; then bad "$name: $cmd does not name the file: $(cat "$tmp/err")"; ok=0; fi
    if ! grep -Eq -- "$want" "$tmp/err"; then
      bad "$name: $cmd: message does not match '$want': $(cat "$tmp/err")"; ok=0
    fi
    if [ -e "$tmp/new.db" ]; then bad "$name: $cmd created a database"; rm -f "$tmp"/new.db*; ok=0; fi
    if ! cmp -s "$tmp/kept.db" "$tmp/pristine.db" || [ -e "$tmp/kept.db-wal" ]; then
      bad "$name: $cmd changed an existing database"; cp "$tmp/pristine.db" "$tmp/kept.db"
      rm -f "$tmp/kept.db-wal" "$tmp/kept.db-shm"; ok=0
    fi
    [ $ok -eq 1 ] || break
  done
  [ $ok -eq 1 ] && passed=$((passed + 1))
}

# The generated part must follow the key reference (scenarios/update_reference.sh regenerates
# both when keys change).
if python3 "$src/tests/bad_inputs/keys_from_reference.py" "$src" "$tmp/keys.tsv"; then
  cmp -s "$tmp/keys.tsv" "$src/tests/bad_inputs/keys.tsv" ||
    bad "tests/bad_inputs/keys.tsv is not what keys_from_reference.py writes from the reference (run scenarios/update_reference.sh)"
else
  bad "tests/bad_inputs/keys_from_reference.py failed (python3 is installed by setup.sh)"
fi

for corpus in "$src"/tests/bad_inputs/*.tsv; do
  while IFS=$'\t' read -r name kind input want; do
    case $name in '' | '#'*) continue ;; esac
    cases=$((cases + 1))
    run_case "$name" "$kind" "$input" "$want"
  done <"$corpus"
done
echo "bad_inputs: $cases cases, $passed passed, $failed failures"
[ "$failed" -eq 0 ] && [ "$cases" -ge 200 ]
