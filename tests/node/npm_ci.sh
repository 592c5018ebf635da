#!/bin/sh
# Installs one test folder's npm packages exactly as its package-lock.json locks them (`npm ci`)
# unless node_modules already matches the lock, so a repeated run costs nothing. Exit 0 when
# installed, 77 when the npm registry cannot be reached (the tests needing them then skip), 1 else.
# Usage: npm_ci.sh DIR [NPM-CI-ARGS...]; TEST_NODE, when set, runs npm and the install scripts.
set -eu
cd "$1"
shift
if cmp -s package-lock.json node_modules/.agentd-installed-lock 2>/dev/null; then
  exit 0
fi
if [ -n "${TEST_NODE:-}" ]; then
  PATH=$(dirname "$TEST_NODE"):$PATH
  export PATH
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! npm ci --no-audit --no-fund --fetch-retries=2 --fetch-timeout=60000 "$@" >"$log" 2>&1; then
  cat "$log" >&2
  if grep -Eq 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network' "$log"; then
    echo "npm_ci.sh: the npm registry cannot be reached; the tests needing $PWD/node_modules are skipped" >&2
    exit 77
  fi
  exit 1
fi
cat "$log"
echo "npm_ci.sh: $PWD installed with npm $(npm --version) on Node $(node --version)"
cp package-lock.json node_modules/.agentd-installed-lock
