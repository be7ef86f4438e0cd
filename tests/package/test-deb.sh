#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The Debian package (debian/): builds it with dpkg-buildpackage out of
# tree (tools/build-deb, which reuses a build of the same tree state),
# fails on any lintian error, then installs unlockd and
# unlockd-initramfs-tools into a throw-away copy of the VM suite's cached
# Debian 12 root filesystem (chroot, the host's modules bind-mounted
# read-only in a private mount namespace) and checks: the files land where
# the README says, unlockd-reseal.service is enabled, the dpkg trigger
# rebuilt the initramfs with unlockd in it; after `dpkg --purge`, the
# files and the service link are gone and the initramfs is rebuilt without
# unlockd, with cryptroot and cryptsetup (which ask as before).
# unlockd-dracut is checked by its contents (dracut conflicts with the
# root's initramfs-tools). Needs root, dpkg-buildpackage, lintian and the
# cached root (tests/vm/setup rootfs); exits 77 without them.
set -euo pipefail
SRC=${UNLOCKD_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CACHE=${UNLOCKD_VM_CACHE:-/var/tmp/unlockd-vm}

say() { printf '[test-deb] %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
skip() { say "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (chroot, mounts)"
for t in dpkg-buildpackage lintian unshare chroot; do
        command -v "$t" >/dev/null || skip "$t missing (tools/install-deps)"
done
[ -f "$CACHE/rootfs.done" ] || skip "no cached root filesystem (tests/vm/setup rootfs)"
KVER=$(ls /lib/modules | sort -V | tail -n 1)
[ -n "$KVER" ] && [ -f "/boot/config-$KVER" ] && [ -f "/boot/vmlinuz-$KVER" ] || skip "no kernel modules + config in /lib/modules, /boot"

W=$(mktemp -d /var/tmp/unlockd-test-deb.XXXXXX)
trap 'rm -rf --one-file-system "$W"' EXIT

# The packages of this tree state, built once and shared with the VM
# suite's initramfs-tools flavour (tools/build-deb: a cache keyed by the
# tree's content).
say "the packages of this tree (tools/build-deb)"
D=$(UNLOCKD_SOURCE_DIR=$SRC "$SRC/tools/build-deb") || fail "tools/build-deb"
changes=$(ls "$D"/unlockd_*.changes)
for p in unlockd unlockd-initramfs-tools unlockd-dracut; do
        ls "$D/${p}_"*.deb >/dev/null 2>&1 || fail "no $p .deb built"
done

say "lintian"
lintian --fail-on error --tag-display-limit 0 "$changes" > "$W/lintian.log" 2>&1 || true
cat "$W/lintian.log" >&2
! grep -q '^E: ' "$W/lintian.log" || fail "lintian reports errors"

# The dracut module: its files, and the unit the module installs.
dpkg-deb -c "$D"/unlockd-dracut_*.deb > "$W/dracut.list"
for f in usr/lib/dracut/modules.d/90unlockd/module-setup.sh usr/lib/dracut/modules.d/90unlockd/unlockd.service; do
        grep -q " \./$f\$" "$W/dracut.list" || fail "unlockd-dracut lacks /$f"
done
grep -q '^ activate-noawait update-initramfs$' <(dpkg-deb -I "$D"/unlockd-dracut_*.deb triggers | sed 's/^/ /') \
        || fail "unlockd-dracut does not activate the update-initramfs trigger"

say "installing into a copy of $CACHE/rootfs"
R=$W/root
flock "$CACHE/.lock-bookworm" cp -a "$CACHE/rootfs" "$R"
mkdir -p "$R/boot" "$R/lib/modules/$KVER" "$R/tmp/debs"
# update-initramfs -u picks the newest kernel by /boot/vmlinuz-*.
cp "/boot/config-$KVER" "/boot/vmlinuz-$KVER" "$R/boot/"
cp "$D"/*.deb "$R/tmp/debs/"
in_root() {
        unshare --mount --propagation private sh -ec '
                r=$1 k=$2; shift 2
                mount --bind -o ro "/lib/modules/$k" "$r/lib/modules/$k"
                mount -t proc proc "$r/proc"
                mount --rbind /dev "$r/dev"
                chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"' \
                sh "$R" "$KVER" "$@"
}
contents() {  # the initramfs's file list
        in_root lsinitramfs "/boot/initrd.img-$KVER" > "$W/initrd.list"
}
has() { grep -qx "$1" "$W/initrd.list"; }

# A cryptroot-only initramfs first (the root has no kernel package), so
# that `update-initramfs -u` from the trigger has one to update.
in_root update-initramfs -c -k "$KVER" > "$W/mkinitramfs.log" 2>&1 || { cat "$W/mkinitramfs.log" >&2; fail "update-initramfs -c"; }
contents
has usr/lib/cryptsetup/scripts/decrypt_derived || has scripts/local-top/cryptroot || fail "no cryptroot in the initial initramfs"
! has usr/bin/unlockd || fail "unlockd in the initramfs before installation"
before=$(stat -c %Y "$R/boot/initrd.img-$KVER")
sleep 1

in_root sh -c 'dpkg -i /tmp/debs/unlockd_*.deb /tmp/debs/unlockd-initramfs-tools_*.deb' > "$W/dpkg.log" 2>&1 \
        || { cat "$W/dpkg.log" >&2; fail "dpkg -i"; }
grep -q 'update-initramfs: Generating' "$W/dpkg.log" || { cat "$W/dpkg.log" >&2; fail "dpkg -i did not rebuild the initramfs"; }
for f in /usr/bin/unlockd /usr/bin/unlockctl \
         /usr/share/initramfs-tools/hooks/unlockd /usr/share/initramfs-tools/scripts/local-top/unlockd \
         /etc/initramfs/post-update.d/unlockd /usr/lib/kernel/install.d/95-unlockd.install; do
        [ -x "$R$f" ] || fail "$f is not installed (or not executable)"
done
for f in /lib/systemd/system/unlockd-reseal.service /lib/systemd/system/unlockd.service \
         /usr/share/man/man8/unlockd.8.gz /usr/share/man/man8/unlockctl.8.gz /usr/share/man/man7/unlockd-boot.7.gz; do
        [ -f "$R$f" ] || fail "$f is not installed"
done
[ "$(in_root systemctl is-enabled unlockd-reseal.service)" = enabled ] || fail "unlockd-reseal.service is not enabled"
[ "$(in_root systemctl is-enabled unlockd.service 2>/dev/null || true)" != enabled ] || fail "unlockd.service enabled in the booted system"
in_root unlockctl --help > /dev/null || fail "unlockctl does not run in the root"
[ "$(stat -c %Y "$R/boot/initrd.img-$KVER")" -gt "$before" ] || fail "the initramfs was not rewritten"
contents
for f in usr/bin/unlockd scripts/local-top/unlockd scripts/local-top/cryptroot; do
        has "$f" || fail "the initramfs lacks $f after installation"
done
grep -q '/libtss2-tcti-device\.so\.0' "$W/initrd.list" || fail "the initramfs lacks the TCTI library"
say "installed: files in place, re-seal service enabled, unlockd in the initramfs"

in_root dpkg --purge unlockd-initramfs-tools unlockd > "$W/purge.log" 2>&1 || { cat "$W/purge.log" >&2; fail "dpkg --purge"; }
grep -q 'update-initramfs: Generating' "$W/purge.log" || { cat "$W/purge.log" >&2; fail "dpkg --purge did not rebuild the initramfs"; }
for f in /usr/bin/unlockd /usr/bin/unlockctl /usr/share/initramfs-tools/hooks/unlockd \
         /etc/initramfs/post-update.d/unlockd /usr/lib/kernel/install.d/95-unlockd.install \
         /lib/systemd/system/unlockd-reseal.service /etc/systemd/system/multi-user.target.wants/unlockd-reseal.service; do
        [ ! -e "$R$f" ] && [ ! -L "$R$f" ] || fail "$f left after purge"
done
contents
! grep -q unlockd "$W/initrd.list" || fail "unlockd left in the initramfs after purge"
for f in scripts/local-top/cryptroot usr/sbin/cryptsetup; do
        has "$f" || fail "the initramfs lacks $f after purge: cryptroot could not ask"
done
say "purged: files and service link gone, initramfs rebuilt with cryptroot alone"
