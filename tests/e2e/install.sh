#!/bin/sh
# Installs the real OpenCode server, opencode-linux-x64 pinned in package-lock.json, into
# tests/e2e/node_modules (`npm ci --ignore-scripts`: exactly as locked, no install scripts) and
# checks its version. Exit 0 when installed, 77 when the npm registry cannot be reached (the e2e
# tests then skip), anything else on any other failure.
set -eu
cd "$(dirname "$0")"
sh ../node/npm_ci.sh . --ignore-scripts
bin=node_modules/opencode-linux-x64/bin/opencode
version=$("$bin" --version)
if [ "$version" != "1.18.33" ]; then
  echo "tests/e2e/install.sh: $bin is version $version, expected 1.18.33" >&2
  exit 1
fi
