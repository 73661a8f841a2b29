#!/usr/bin/env bash
# syncsim setup: install what is missing, build, then run the quickstart or the tests.
#
#   ./setup.sh run     build, then run the quickstart scenario (scenarios/quickstart.json)
#                      into results.db, print the report table, draw the loss plot
#                      quickstart_loss.png and write quickstart.html, one self-contained
#                      page with the table, the plots and each run's provenance (extra
#                      arguments go to `syncsim run`, e.g. --db other.db)
#   ./setup.sh test    build, then run the whole test suite (ctest); installs Open MPI too,
#                      so that `syncsim sweep --mpi` is built and tested under mpirun, and
#                      Chromium, which draws the HTML report headless in its test
#   ./setup.sh fuzz [SECONDS]
#                      build the fuzz target with clang (build-fuzz/) and fuzz the scenario
#                      loader, --set overrides, sweeps and traces for SECONDS (default 60),
#                      from the seed corpus tests/fuzz/corpus (new inputs go to a temporary
#                      folder); a crash leaves its input as ./crash-* and fails
#   ./setup.sh bench   build, then run every benchmark (about 5 minutes; keep the machine
#                      otherwise idle): syncsim's training steps against OpenBLAS's matrix
#                      products, the event loop at 1,000 to 100,000 workers, thread scaling,
#                      the same training steps in PyTorch (installs python3-torch), and
#                      the quickstart's wall time
#   ./setup.sh build   build only
#
# For Debian 12, as root or through sudo. Idempotent: packages already installed are not
# touched and the build is incremental, so a second call is fast.
# Environment: SYNCSIM_WERROR=1 makes warnings errors; SYNCSIM_SANITIZE=1 builds with
# AddressSanitizer and UndefinedBehaviorSanitizer (into build-sanitize/).
set -euo pipefail
cd "$(dirname "$0")"

packages=(cmake gcc make pkg-config libgsl-dev libsqlite3-dev libcjson-dev libcriterion-dev
          libopenblas-dev zlib1g-dev sqlite3 gnuplot-nox dataset-fashion-mnist fortunes python3)
fuzz_packages=(clang libclang-rt-14-dev) # libFuzzer
mpi_packages=(libopenmpi-dev openmpi-bin) # `sweep --mpi` (optional: found at build time)
html_packages=(chromium)                  # tests/html_test.sh draws the HTML report with it
bench_packages=(python3-torch)            # the PyTorch peer of the benchmarks

install_missing() {
  local missing=() p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
}

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
[ "${SYNCSIM_WERROR:-0}" = 1 ] && cmake_args+=(-DSYNCSIM_WERROR=ON)
if [ "${SYNCSIM_SANITIZE:-0}" = 1 ]; then
  build_dir=build-sanitize
  cmake_args+=(-DSYNCSIM_SANITIZE=ON)
fi

build() {
  install_missing
  local log="$build_dir.log"
  if ! { cmake -S . -B "$build_dir" "${cmake_args[@]}" &&
         cmake --build "$build_dir" -j "$(nproc)"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "setup: the build failed (log: $log)" >&2
    exit 1
  fi
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  run)
    build
    "./$build_dir/syncsim" run scenarios/quickstart.json "$@"
    db=results.db
    for ((i = 1; i <= $#; i++)); do
      case "${!i}" in
        --db) j=$((i + 1)); db=${!j} ;;
        --db=*) db=${!i#--db=} ;;
      esac
    done
    echo
    "./$build_dir/syncsim" report "$db" --scenario quickstart
    "./$build_dir/syncsim" plot "$db" --scenario quickstart --out quickstart_loss.png
    "./$build_dir/syncsim" report "$db" --scenario quickstart --format html --out quickstart.html
    ;;
  test)
    packages+=("${fuzz_packages[@]}") # (the test command's setup makes the fuzz target buildable)
    packages+=("${mpi_packages[@]}")
    packages+=("${html_packages[@]}")
    build
    ctest --test-dir "$build_dir" --output-on-failure
    ;;
  fuzz)
    seconds=${1:-60}
    packages+=("${fuzz_packages[@]}")
    build_dir=build-fuzz
    cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DSYNCSIM_FUZZ=ON
                -DBUILD_TESTING=OFF)
    build
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    cp tests/fuzz/corpus/* "$work"/
    "./$build_dir/fuzz_inputs" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=4096 \
      -print_final_stats=1 "$work"
    ;;
  bench)
    packages+=("${bench_packages[@]}")
    build
    "./$build_dir/syncsim" bench --opt sgd --only mlp
    echo
    "./$build_dir/syncsim" bench
    echo
    "./$build_dir/syncsim" bench --engine
    echo
    "./$build_dir/syncsim" bench --threads
    echo
    /usr/bin/python3 bench/torch_peer.py --syncsim "./$build_dir/syncsim" # (Debian's python)
    echo
    qs_dir=$(mktemp -d)
    TIMEFORMAT="quickstart (scenarios/quickstart.json, every thread): %R s wall, %U s CPU"
    time "./$build_dir/syncsim" run scenarios/quickstart.json --db "$qs_dir/quickstart.db" --quiet
    rm -rf "$qs_dir"
    ;;
  build)
    build
    ;;
  *)
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
