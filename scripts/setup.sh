#!/usr/bin/env bash
# Installs what agentd needs to build and test on Debian 12 (compiler, CMake, Boost 1.81, fmt,
# GoogleTest, CLI11, SQLite, OpenSSL, toml++, libsystemd, ccache, dpkg-dev and lintian for the
# .deb, Node.js for the MCP client tests, Chromium for the dashboard's browser test). Idempotent:
# installs only what is missing; uses sudo when not root.
set -euo pipefail

packages=(
  g++ make cmake git curl ca-certificates pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libfmt-dev libgtest-dev libgmock-dev libcli11-dev
  libssl-dev openssl libsqlite3-dev
  libtomlplusplus-dev libsystemd-dev dpkg-dev lintian
  clang libclang-rt-14-dev
  chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# The MCP client tests (tests/mcp) need Node.js and npm: any installed ones do, else Debian's.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
