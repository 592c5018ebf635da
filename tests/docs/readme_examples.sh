#!/usr/bin/env bash
# Runs README.md's script examples as they are written, so they cannot rot: every ```sh block
# right after a `<!-- example-test -->` line (optionally `<!-- example-test expect="TEXT" -->`,
# repeatable) runs in bash -eu -o pipefail against a real agentd on a free loopback port and the
# fake OpenCode upstream. It must exit 0 and print each expected TEXT. The examples see what a
# user has: $HOME with agentd's default state dir (~/.local/state/agentd/token), agentctl on
# PATH, and $AGENTD_URL pointing at the daemon.
# Usage: readme_examples.sh README AGENTD AGENTCTL FAKE_OPENCODE
set -euo pipefail
readme=$(realpath "$1") agentd=$(realpath "$2") agentctl=$(realpath "$3") fake=$(realpath "$4")

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done  # only what we started
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Starts "$@" with stderr in $work/$name.log and waits (10 s at most) for its listening line.
start() {
  local name=$1 pattern=$2
  shift 2
  "$@" 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    if url=$(grep -o -m1 "$pattern" "$work/$name.log"); then return 0; fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$work/$name.log" >&2
  return 1
}

export HOME="$work/home"
unset XDG_STATE_HOME STATE_DIRECTORY AGENTD_STATE_DIR AGENTD_TOKEN
mkdir -p "$HOME"
start fake 'http://127\.0\.0\.1:[0-9]*' "$fake" --listen 127.0.0.1:0
upstream=$url
start agentd 'http://127\.0\.0\.1:[0-9]*' "$agentd" --listen 127.0.0.1:0 --upstream-url "$upstream"
export AGENTD_URL=$url
export PATH="$(dirname "$agentctl"):$PATH"

# Split the marked blocks into $work/blocks/N.sh, with their expectations in N.expect.
mkdir "$work/blocks"
awk -v dir="$work/blocks" '
  /^<!-- example-test/ {
    n++; marked = 1; expect = dir "/" n ".expect"; printf "" > expect
    line = $0
    while (match(line, /expect="[^"]*"/)) {
      print substr(line, RSTART + 8, RLENGTH - 9) >> expect
      line = substr(line, RSTART + RLENGTH)
    }
    next
  }
  marked && /^```sh$/ { inside = 1; marked = 0; next }
  inside && /^```$/ { inside = 0; next }
  inside { print >> (dir "/" n ".sh"); next }
  { marked = 0 }
' "$readme"

count=0
failed=0
for block in "$work"/blocks/*.sh; do
  [ -e "$block" ] || break
  count=$((count + 1))
  n=$(basename "$block" .sh)
  echo "== README example $n"
  cat "$block"
  status=0
  (cd "$work" && bash -eu -o pipefail "$block") >"$work/out" 2>&1 || status=$?
  cat "$work/out"
  if [ "$status" -ne 0 ]; then
    echo "-- FAILED: exit $status"
    failed=1
    continue
  fi
  while IFS= read -r want; do
    if ! grep -qF -- "$want" "$work/out"; then
      echo "-- FAILED: output lacks: $want"
      failed=1
    fi
  done <"$work/blocks/$n.expect"
done
if [ "$count" -lt 3 ]; then
  echo "found $count marked examples in $readme; expected at least 3 (markers lost?)"
  exit 1
fi
exit "$failed"
