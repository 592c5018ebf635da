#!/usr/bin/env bash
# The demo: set-up, build, start the bundled fake OpenCode upstream and agentd on free ports,
# fan out four sub-agent jobs with agentctl, wait for them and show the results; then stop both.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build >/dev/null

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Reads the port a server printed on its "listening on http://127.0.0.1:PORT" line.
wait_port() {
  local log="$1"
  for _ in $(seq 100); do
    port="$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1)"
    if [ -n "$port" ]; then echo "$port"; return 0; fi
    sleep 0.05
  done
  echo "demo: server did not start; log:" >&2; cat "$log" >&2; return 1
}

build/tests/fake_upstream/fake_opencode --listen 127.0.0.1:0 --latency-ms 800 2>"$work/fake.log" &
pids+=($!)
fake_port="$(wait_port "$work/fake.log")"

build/daemon/agentd --listen 127.0.0.1:0 --state-dir "$work/state" \
  --upstream-url "http://127.0.0.1:$fake_port" 2>"$work/agentd.log" &
pids+=($!)
agentd_port="$(wait_port "$work/agentd.log")"
echo "fake upstream on :$fake_port, agentd on :$agentd_port"

ctl=(build/agentctl/agentctl --url "http://127.0.0.1:$agentd_port" --state-dir "$work/state")
echo
echo "\$ agentctl start 'Summarise README.md' 'List the TODOs' 'Explain main.cpp' 'Draft a changelog'"
"${ctl[@]}" start --description demo 'Summarise README.md' 'List the TODOs' 'Explain main.cpp' 'Draft a changelog'
echo
echo "\$ agentctl status"
"${ctl[@]}" status
echo
echo "\$ agentctl wait"
start=$(date +%s%N)
"${ctl[@]}" wait --timeout-ms 10000
echo
echo "four 800 ms jobs finished in $(( ($(date +%s%N) - start) / 1000000 )) ms of waiting: they ran concurrently."
