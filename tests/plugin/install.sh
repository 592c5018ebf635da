#!/bin/sh
# Installs the plugin test's npm packages (@opencode-ai/plugin, the OpenCode plugin API the plugin
# imports; TypeScript to type-check it) with npm, unless node_modules already matches
# package-lock.json, so a repeated test run costs nothing.
set -eu
cd "$(dirname "$0")"
if cmp -s package-lock.json node_modules/.agentd-installed-lock 2>/dev/null; then
  exit 0
fi
# Not `npm ci`: npm 11 rejects this lock file as out of sync (optional platform packages of
# msgpackr-extract listed without a version) although `npm install` resolves exactly the locked
# versions and leaves the lock file unchanged.
npm install --no-audit --no-fund
cp package-lock.json node_modules/.agentd-installed-lock
