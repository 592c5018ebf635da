#!/usr/bin/env bash
# Checks README's commands the way a new user meets them: debootstraps a Debian 12 minbase chroot,
# copies a clean clone of this repository's HEAD and ../shared beside it, and runs the command
# (default scripts/test.sh) inside. Not run by CI: needs root, debootstrap and an hour or more.
# Usage: [CHROOT_CHECK_CCACHE=DIR] scripts/chroot-check.sh [DIR [COMMAND...]]   (DIR defaults to
# ../chroot-check; an existing chroot there is reused, the clone is always fresh)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=$(realpath -m "${1:-$repo/../chroot-check}")
shift || true
command=${*:-scripts/test.sh}
root=$dir/root

if [ "$(id -u)" -ne 0 ]; then
  echo "chroot-check: needs root (debootstrap, mount, chroot)" >&2
  exit 1
fi
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap

if [ ! -x "$root/usr/bin/apt-get" ]; then
  echo "chroot-check: debootstrap --variant=minbase bookworm into $root"
  mkdir -p "$dir"
  debootstrap --variant=minbase bookworm "$root"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The host's own CAs (a TLS-inspecting proxy's, say) come along: the network may need them.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
extra_env=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ]; then
  extra_env+=("NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS")
fi

# Mounted for the run and always unmounted after it, in reverse order; /dev/shm is Chromium's.
mounted=()
unmount_all() {
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}"
  done
}
trap unmount_all EXIT
mount_at() { # mount_at TARGET MOUNT-ARGS...
  local target=$root$1
  shift
  mount "$@" "$target"
  mounted+=("$target")
}
mount_at /proc -t proc proc
mount_at /sys -t sysfs sys
mount_at /dev --bind /dev
mount_at /dev/pts --bind /dev/pts
mount_at /dev/shm -t tmpfs -o mode=1777 shm
# Optional: CHROOT_CHECK_CCACHE=DIR lends a warm ccache (same compiler, same binaries, much sooner).
if [ -n "${CHROOT_CHECK_CCACHE:-}" ]; then
  mkdir -p "$root/root/.cache/ccache"
  mount_at /root/.cache/ccache --bind "$CHROOT_CHECK_CCACHE"
fi

# A clean clone of HEAD, with shared/ beside it read-only as CI lays it.
src=$root/root/src
rm -rf "$src"
mkdir -p "$src"
git clone --quiet --no-hardlinks "$repo" "$src/agentd"
git -C "$src/agentd" checkout --quiet --detach "$(git -C "$repo" rev-parse HEAD)"
cp -a "$repo/../shared" "$src/shared"
chmod -R a-w "$src/shared"

echo "chroot-check: running '$command' in $root/root/src/agentd ($(date -u +%H:%M:%S) UTC)"
start=$(date +%s)
status=0
chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb "${extra_env[@]}" \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  bash -c "cd /root/src/agentd && { ! command -v update-ca-certificates >/dev/null ||
    update-ca-certificates >/dev/null 2>&1; } && $command" || status=$?
echo "chroot-check: '$command' exited $status after $(($(date +%s) - start)) s"
exit "$status"
