#!/usr/bin/env bash
# Configures and builds agentd. Usage: scripts/build.sh [build-dir] [extra cmake args…]
# Default dir `build`; `build-asan` with -DAGENTD_SANITIZE=ON for the sanitizer run.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build}"
shift || true
# Build dirs side by side share one ccache (paths are hashed relative to the checkout).
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j2
