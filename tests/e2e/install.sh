#!/bin/sh
# Installs the real OpenCode server, opencode-linux-x64 pinned in package-lock.json, into
# tests/e2e/node_modules (`npm ci --ignore-scripts`: exactly as locked, no install scripts), unless
# it is already there. Exit 0 when installed, 77 when the npm registry cannot be reached (the e2e
# tests then skip), anything else on any other failure.
set -eu
cd "$(dirname "$0")"
bin=node_modules/opencode-linux-x64/bin/opencode
if cmp -s package-lock.json node_modules/.agentd-installed-lock 2>/dev/null && [ -x "$bin" ]; then
  exit 0
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! npm ci --ignore-scripts --no-audit --no-fund --fetch-retries=2 --fetch-timeout=60000 >"$log" 2>&1; then
  cat "$log" >&2
  if grep -Eq 'ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network' "$log"; then
    echo "tests/e2e/install.sh: the npm registry cannot be reached; the OpenCode e2e tests are skipped" >&2
    exit 77
  fi
  exit 1
fi
version=$("$bin" --version)
if [ "$version" != "1.18.33" ]; then
  echo "tests/e2e/install.sh: $bin is version $version, expected 1.18.33" >&2
  exit 1
fi
cp package-lock.json node_modules/.agentd-installed-lock
