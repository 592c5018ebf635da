#!/usr/bin/env bash
# Checks scripts/setup.sh's decisions on stand-in commands (dpkg-query, id, sudo, apt-get, node,
# npm on a PATH of their own), so nothing is installed: it installs nothing when all is there,
# exactly the missing packages with sudo when not root, and says so when sudo is missing.
# Usage: setup_test.sh SETUP_SH
set -euo pipefail
setup=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fail() { echo "setup_test: $*" >&2; exit 1; }

# A PATH holding only the stand-ins and the tools setup.sh runs itself.
make_bin() { # make_bin DIR UID INSTALLED-PACKAGE... ; stand-ins log their calls to DIR/calls
  local bin=$1 uid=$2
  shift 2
  mkdir -p "$bin"
  for tool in bash grep cat; do ln -s "$(command -v $tool)" "$bin/$tool"; done
  printf '%s\n' "$@" >"$bin/installed"
  cat >"$bin/dpkg-query" <<STUB
#!$(command -v bash)
grep -qx "\${@: -1}" "$bin/installed" && printf 'install ok installed'
STUB
  printf '#!%s\necho %s\n' "$(command -v bash)" "$uid" >"$bin/id"
  for tool in apt-get sudo; do
    printf '#!%s\necho "%s $*" >>"%s/calls"\n' "$(command -v bash)" "$tool" "$bin" >"$bin/$tool"
  done
  chmod +x "$bin"/*
}
all_packages=$(sed -n '/^packages=(/,/^)/p' "$setup" | sed '1d;$d')

# Everything installed, node and npm too: nothing runs, nothing printed.
make_bin "$work/all" 1000 $all_packages
for tool in node npm; do cp "$work/all/id" "$work/all/$tool"; done
out=$(PATH=$work/all bash "$setup" 2>&1) || fail "exited non-zero with all installed: $out"
[ -z "$out" ] || fail "printed with all installed: $out"
[ ! -e "$work/all/calls" ] || fail "ran $(cat "$work/all/calls") with all installed"

# Not root, cmake and node missing, sudo there: apt-get through sudo for exactly those.
make_bin "$work/some" 1000 $(echo $all_packages | tr ' ' '\n' | grep -vx cmake)
PATH=$work/some bash "$setup" >/dev/null 2>&1 || fail "exited non-zero with sudo"
grep -qx "sudo apt-get install -y -qq --no-install-recommends cmake nodejs npm" "$work/some/calls" ||
  fail "expected sudo apt-get install of cmake nodejs npm, ran: $(cat "$work/some/calls")"

# Not root and no sudo: a message, exit 1, nothing run.
make_bin "$work/nosudo" 1000 $all_packages
rm "$work/nosudo/sudo"
if out=$(PATH=$work/nosudo bash "$setup" 2>&1); then fail "exited 0 without sudo"; fi
grep -q "sudo is not installed: run scripts/setup.sh as root" <<<"$out" || fail "no message: $out"
[ ! -e "$work/nosudo/calls" ] || fail "ran $(cat "$work/nosudo/calls") without sudo"

# Root: apt-get directly.
make_bin "$work/root" 0 $all_packages
rm "$work/root/sudo"
PATH=$work/root bash "$setup" >/dev/null 2>&1 || fail "exited non-zero as root"
grep -qx "apt-get install -y -qq --no-install-recommends nodejs npm" "$work/root/calls" ||
  fail "expected apt-get install of nodejs npm as root, ran: $(cat "$work/root/calls")"
echo "setup_test: all cases passed"
