#!/bin/sh
# Installs the plugin test's npm packages (@opencode-ai/plugin, the OpenCode plugin API the plugin
# imports; TypeScript to type-check it) with `npm ci`, unless node_modules already matches
# package-lock.json, so a repeated test run costs nothing.
set -eu
cd "$(dirname "$0")"
if cmp -s package-lock.json node_modules/.agentd-installed-lock 2>/dev/null; then
  exit 0
fi
npm ci --no-audit --no-fund
cp package-lock.json node_modules/.agentd-installed-lock
