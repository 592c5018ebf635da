#!/bin/sh
# Installs the MCP test clients' npm packages from the npm registry (`npm ci`, exactly as locked)
# unless node_modules already matches package-lock.json, so a repeated test run costs nothing.
set -eu
cd "$(dirname "$0")"
if cmp -s package-lock.json node_modules/.agentd-installed-lock 2>/dev/null; then
  exit 0
fi
npm ci --no-audit --no-fund
cp package-lock.json node_modules/.agentd-installed-lock
