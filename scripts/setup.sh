#!/usr/bin/env bash
# Installs what agentd needs to build and test on Debian 12 (compiler, CMake, Boost 1.81, fmt,
# GoogleTest, CLI11, SQLite, OpenSSL, toml++, libsystemd, spdlog, ccache, clang-format; systemd
# (systemd-analyze verify of the units), dpkg-dev, lintian and help2man (the manual pages) for the
# .deb; Node.js and npm, Chromium for the dashboard's browser test, Neovim for the Neovim plugin's
# test). Idempotent: installs only what is missing; uses sudo when not root. The Node tests run
# on a Node 22 that npm installs.
set -euo pipefail

packages=(
  g++ make cmake git curl ca-certificates pkg-config ccache
  libboost1.81-dev libboost-json1.81-dev libfmt-dev libgtest-dev libgmock-dev libcli11-dev
  libssl-dev openssl libsqlite3-dev
  libtomlplusplus-dev libsystemd-dev libspdlog-dev systemd dpkg-dev lintian help2man
  clang libclang-rt-14-dev clang-format
  chromium neovim
  # The PostgreSQL store: libpq to build; the server for its tests, which start a throw-away
  # cluster of their own (the package's 15/main cluster on 5432 is left alone).
  libpq-dev postgresql-15
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm installs the Node the tests run on (tests/node) and their packages: any installed Node.js
# and npm do for that, else Debian's (Node 18).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "setup: ${missing[*]} missing and sudo is not installed: run scripts/setup.sh as root" >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
