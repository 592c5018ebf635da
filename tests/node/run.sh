#!/bin/sh
# Runs a Node-based test on the test Node (tests/node), first on PATH for whatever the test spawns.
# Exits 77 (skip) when that Node or the test's npm packages are missing: their install test then
# skipped because the npm registry was unreachable, or failed and says why.
# Usage: run.sh NODE PACKAGE-DIR|- NODE-ARGS...
set -eu
node=$1
packages=$2
shift 2
if [ ! -x "$node" ]; then
  echo "run.sh: $node is not installed (see the test node_install); skipped" >&2
  exit 77
fi
if [ "$packages" != - ] && [ ! -f "$packages/node_modules/.agentd-installed-lock" ]; then
  echo "run.sh: $packages/node_modules is not installed (see its install test); skipped" >&2
  exit 77
fi
PATH=$(dirname "$node"):$PATH
export PATH
exec "$node" "$@"
