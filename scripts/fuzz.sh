#!/usr/bin/env bash
# Bounded libFuzzer run (part of scripts/test.sh): builds the three fuzz targets with Clang and
# fuzzes each for FUZZ_SECONDS (default 60) in parallel from the committed seed corpus. A crash,
# leak, timeout or OOM fails the run; the input is left in build-fuzz/artifacts/ — add it to
# tests/fuzz/corpus/<target>/ so every build replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-60}"
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAGENTD_FUZZ=ON >/dev/null
cmake --build build-fuzz -j2 --target rpc_fuzz upstream_fuzz http_fuzz
mkdir -p build-fuzz/artifacts
pids=()
targets=(rpc upstream http)
for target in "${targets[@]}"; do
  work="build-fuzz/corpus-$target"  # new inputs go here, never into the committed corpus
  mkdir -p "$work"
  build-fuzz/tests/fuzz/${target}_fuzz "$work" "tests/fuzz/corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="build-fuzz/artifacts/$target-" -print_final_stats=1 \
    >"build-fuzz/$target.log" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!targets[@]}"; do
  target=${targets[$i]}
  if wait "${pids[$i]}"; then
    echo "fuzz $target: $(grep -E '^stat::number_of_executed_units' "build-fuzz/$target.log" | awk '{print $2}') runs, no failure"
  else
    status=1
    echo "fuzz $target FAILED:"; tail -40 "build-fuzz/$target.log"
  fi
done
exit $status
