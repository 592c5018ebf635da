#!/usr/bin/env bash
# Regenerates docs/ui-permission.png (the README's picture of a permission request in /ui) from
# the browser test: runs ctest's ui_dashboard in a configured build dir with UI_DOCS_SCREENSHOT.
# Usage: tests/ui/screenshot.sh [build-dir]   (default: build; agentd and fake_opencode built)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="${1:-build}"
case "$dir" in /*) ;; *) dir="$root/$dir" ;; esac
UI_DOCS_SCREENSHOT="$root/docs/ui-permission.png" \
  ctest --test-dir "$dir" -R '^ui_dashboard$' --output-on-failure
ls -l "$root/docs/ui-permission.png"
