#!/usr/bin/env bash
# `syncsim sweep --mpi` under mpirun against `sweep --jobs 1`: the databases equal table by
# table and view by view (provenance and ids aside), resume, shards, a single rank, signals.
# Usage: mpi_test.sh PATH/TO/syncsim SOURCE_DIR MPIEXEC
# An empty MPIEXEC means syncsim was built without MPI: then only --mpi's refusal is checked,
# and the test exits 77 (ctest: skipped).
set -u
syncsim=$1
src=$2
mpiexec=${3:-}
# shellcheck source=tests/test_lib.sh
. "$src/tests/test_lib.sh"
fixture=$src/tests/fixtures/sweep_mpi.json # ddp, local_sgd, async (updates), failures (outages)

finish() {
  echo "mpi_test: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}

if [ -z "$mpiexec" ]; then
  "$syncsim" sweep "$fixture" --mpi --db "$tmp/no.db" 2>"$tmp/err"
  check "--mpi without MPI exits 2" test $? -eq 2
  check "... saying how to get it: $(cat "$tmp/err")" grep -q 'install Open MPI' "$tmp/err"
  check "... writing nothing" test ! -e "$tmp/no.db"
  [ "$failed" -eq 0 ] || finish
  echo "mpi_test: skipped: syncsim was built without MPI (install libopenmpi-dev and" \
       "openmpi-bin, then rebuild)"
  exit 77
fi

# CI containers run as root; 3 ranks on 2 cores oversubscribe; Docker's default seccomp
# profile forbids the cross-memory attach Open MPI's shared memory uses for large messages.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_mca_base_component_disable_dlclose=1 # (see below)
# Sanitizer builds: Open MPI keeps memory from MPI_Init to the end, not syncsim's leaks;
# tests/lsan_mpi.supp names its libraries, which the slow unwinder sees through (Open MPI is
# built without frame pointers) and the kept components let LeakSanitizer name.
export LSAN_OPTIONS="suppressions=$src/tests/lsan_mpi.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export ASAN_OPTIONS="fast_unwind_on_malloc=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
mpirun() { # mpirun N ARGS...: syncsim ARGS under N ranks
  local n=$1
  shift
  "$mpiexec" --oversubscribe -n "$n" "$syncsim" "$@"
}

# The rows of one table or view of schema s (an attached database) without what differs
# between two sweeps of the same runs: ids, times, host, pid, command line, CPU, kernels.
# Rows of a run are keyed by its config hash and, in a table, their order within the run.
skip=" id sweep_id run_id started_at finished_at created_at host_time_s host pid command cpu kernels "
rows_of() { # rows_of DB SCHEMA NAME
  local cols="" c has_run=0
  for c in $(sqlite3 "$1" "select name from pragma_table_info('$3')"); do
    [ "$c" = run_id ] && has_run=1
    case "$skip" in *" $c "*) ;; *) cols="$cols, t.$c" ;; esac
  done
  if [ $has_run = 1 ]; then
    local order=0
    [ "$(sqlite3 "$1" "select type from sqlite_master where name = '$3'")" = table ] &&
      order="row_number() over (partition by t.run_id order by t.rowid)"
    echo "select r.config_hash, $order $cols from $2.$3 t join $2.runs r on r.id = t.run_id"
  else
    echo "select 0 $cols from $2.$3 t"
  fi
}
differ() { # differ DB_A DB_B: "NAME rows_a rows_b differing" for every table and view that differs
  local name qa qb
  for name in $(sqlite3 "$1" "select name from sqlite_master where type in ('table', 'view')
                               and name not like 'sqlite_%' order by name"); do
    qa=$(rows_of "$1" a "$name")
    qb=$(rows_of "$1" b "$name")
    sqlite3 :memory: "attach '$1' as a; attach '$2' as b;
      select '$name', na, nb, d from (select (select count(*) from ($qa)) as na,
        (select count(*) from ($qb)) as nb,
        (select count(*) from ($qa except $qb)) + (select count(*) from ($qb except $qa)) as d)
      where na != nb or d != 0"
  done
}
same() { # same DESCRIPTION DB_A DB_B
  local d
  d=$(differ "$2" "$3")
  check "$1${d:+: differs (table rows_a rows_b differing): $d}" test -z "$d"
}

"$syncsim" sweep "$fixture" --db "$tmp/j1.db" --jobs 1 --quiet >/dev/null
check "sweep --jobs 1 of the fixture exits 0" test $? -eq 0
n=$(sqlite3 "$tmp/j1.db" "select (select count(*) from runs where status = 'done') || ' ' ||
  (select count(*) > 0 from metrics) || (select count(*) > 0 from workers) ||
  (select count(*) > 0 from updates) || (select count(*) > 0 from timeline) ||
  (select count(*) > 0 from outages)")
check "the fixture's 12 runs fill every table ($n)" test "$n" = "12 11111"

mpirun 3 sweep "$fixture" --mpi --db "$tmp/m.db" >"$tmp/m.out" 2>"$tmp/m.err"
check "mpirun -n 3 sweep --mpi exits 0: $(tail -3 "$tmp/m.err")" test $? -eq 0
check "rank 0 prints one summary line per run" test "$(grep -c '^run ' "$tmp/m.out")" -eq 12
check "rank 0 reports the ranks: $(head -1 "$tmp/m.err")" \
  grep -q '9 to run on 2 MPI ranks\|12 to run on 2 MPI ranks' "$tmp/m.err"
check "progress goes to stderr" grep -q 'sweep: 12/12 runs done, 0 failed' "$tmp/m.err"
same "sweep --mpi equals sweep --jobs 1 in every table and view" "$tmp/j1.db" "$tmp/m.db"
n=$(sqlite3 "$tmp/m.db" "select count(distinct pid) || ' ' || count(distinct host) from runs")
check "rank 0 wrote every run ($n distinct pids and hosts)" test "$n" = "1 1"

mpirun 3 sweep "$fixture" --mpi --db "$tmp/m.db" >"$tmp/m2.out" 2>/dev/null
check "re-running a finished sweep under mpirun exits 0" test $? -eq 0
n=$(grep -c '^run ' "$tmp/m2.out")
check "... and runs nothing ($n runs)" test "$n" -eq 0
same "... and changes nothing" "$tmp/j1.db" "$tmp/m.db"

# a shard under MPI, then the rest: resumed, one sweep, equal
mpirun 3 sweep "$fixture" --mpi --shard 1/2 --db "$tmp/s.db" --quiet >"$tmp/s1.out"
check "sweep --mpi --shard 1/2 exits 0" test $? -eq 0
check "... running half of the runs" test "$(grep -c '^run ' "$tmp/s1.out")" -eq 6
mpirun 2 sweep "$fixture" --mpi --db "$tmp/s.db" --quiet >"$tmp/s2.out"
check "the rest under mpirun -n 2 exits 0" test $? -eq 0
check "... running only the 6 missing runs" test "$(grep -c '^run ' "$tmp/s2.out")" -eq 6
same "a sharded then resumed MPI sweep equals sweep --jobs 1" "$tmp/j1.db" "$tmp/s.db"

# one rank: rank 0 runs the runs itself
mpirun 1 sweep "$fixture" --mpi --db "$tmp/one.db" --quiet >/dev/null
check "mpirun -n 1 sweep --mpi exits 0" test $? -eq 0
same "mpirun -n 1 sweep --mpi equals sweep --jobs 1" "$tmp/j1.db" "$tmp/one.db"

"$syncsim" sweep "$fixture" --mpi --jobs 2 --db "$tmp/bad.db" 2>"$tmp/err"
check "--mpi with --jobs exits 2" test $? -eq 2
check "... saying why: $(cat "$tmp/err")" grep -q 'the ranks run the runs' "$tmp/err"
check "... writing nothing" test ! -e "$tmp/bad.db"
mpirun 3 sweep "$tmp/missing.json" --mpi --db "$tmp/bad.db" >/dev/null 2>"$tmp/err"
check "a missing scenario under mpirun exits 2" test $? -eq 2
check "... said once, by rank 0: $(cat "$tmp/err")" test "$(grep -c 'missing.json' "$tmp/err")" -eq 1

# signals: SIGTERM to rank 0 alone (runs.pid names it) and SIGINT to mpirun stop both runs
wait_running() { # wait_running DB: until 2 runs are running (20 s at most)
  local n
  for _ in $(seq 400); do
    n=$(sqlite3 "$1" "select count(*) from runs where status = 'running'" 2>/dev/null)
    [ "${n:-0}" -ge 2 ] && return
    sleep 0.05
  done
}
for how in "TERM rank0" "INT mpirun"; do
  set -- $how
  db=$tmp/sig_$1.db
  "$mpiexec" --oversubscribe -n 3 "$syncsim" sweep "$fixture" --mpi --db "$db" --quiet \
    --set stop.sim_time_s=1e9 >/dev/null 2>&1 &
  pid=$!
  wait_running "$db"
  if [ "$2" = rank0 ]; then
    kill -"$1" "$(sqlite3 "$db" "select pid from runs limit 1")"
  else
    kill -"$1" $pid
  fi
  for _ in $(seq 400); do # 20 s at most, then kill it
    kill -0 $pid 2>/dev/null || break
    sleep 0.05
  done
  kill -0 $pid 2>/dev/null && kill -KILL $pid
  wait $pid
  rc=$?
  # (mpirun signalled itself exits 1, Open MPI's status for a job it ended; the runs'
  # status is what matters)
  [ "$2" = rank0 ] && check "SIG$1 to rank 0 exits 130 (got $rc)" test $rc -eq 130
  n=$(sqlite3 "$db" "select group_concat(status) from runs")
  check "SIG$1 to $2 interrupts both running runs and starts no other ($n)" \
    test "$n" = "interrupted,interrupted"
done

finish
