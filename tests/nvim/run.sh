#!/usr/bin/env bash
# Runs tests/nvim/test.lua in `nvim --headless` with packaging/nvim on its runtimepath, against
# a real agentd on a free loopback port (its token in a fresh state dir) and the fake OpenCode
# upstream. The script exits Neovim with `cquit 1` on a failed case, so this exits non-zero.
# Usage: run.sh SOURCE_DIR AGENTD FAKE_OPENCODE
set -euo pipefail
src=$(realpath "$1") agentd=$(realpath "$2") fake=$(realpath "$3")

if ! command -v nvim >/dev/null; then
  echo "nvim_plugin: SKIPPED: nvim is not installed (scripts/setup.sh installs neovim)"
  exit 77
fi

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
  local name=$1
  shift
  : >"$work/$name.log"  # exists before the first grep, which may run before the child's redirect
  "$@" 2>>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 100); do
    if url=$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*' "$work/$name.log"); then return 0; fi
    kill -0 "${pids[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$work/$name.log" >&2
  return 1
}

# What a user has: a HOME of its own, no token in the environment, the state dir named.
export HOME="$work/home"
unset XDG_STATE_HOME STATE_DIRECTORY AGENTD_TOKEN AGENTD_URL
mkdir -p "$HOME" "$work/my project"
start fake "$fake" --listen 127.0.0.1:0
start agentd "$agentd" --listen 127.0.0.1:0 --listen "unix:$work/agentd.sock" \
  --upstream-url "$url" --state-dir "$work/state"
export AGENTD_URL=$url AGENTD_STATE_DIR="$work/state" AGENTD_TEST_SOCKET="$work/agentd.sock"

status=0
(cd "$work/my project" &&
  nvim --headless -u NONE -i NONE --cmd "set rtp+=$src/packaging/nvim" --cmd "runtime plugin/agentd.lua" \
    -c "luafile $src/tests/nvim/test.lua") || status=$?
if [ "$status" -ne 0 ]; then
  echo "nvim exited $status; agentd's log:"
  tail -n 40 "$work/agentd.log"
fi
exit "$status"
