#!/bin/sh
# Installs playwright-core for the dashboard's browser test (`npm ci`, exactly as locked) unless
# node_modules already matches package-lock.json. It drives Debian's /usr/bin/chromium and never
# downloads a browser of its own.
set -eu
cd "$(dirname "$0")"
if cmp -s package-lock.json node_modules/.agentd-installed-lock 2>/dev/null; then
  exit 0
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
cp package-lock.json node_modules/.agentd-installed-lock
