#!/usr/bin/env bash
# Fetches a Debian kernel (package linux-image-amd64's current dependency) and
# unpacks it, without installing it, into .cache/test-guest/: the end-to-end
# tests boot it under QEMU (TCG) with a busybox initramfs they build themselves.
# Safe to run again: does nothing when the kernel is already there.
# Usage: build/test-guest-kernel.sh [dest]   (default .cache/test-guest)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.cache/test-guest}
# (A cache from before evdev and uinput were kept lacks evdev.ko or uinput.ko: fetch again.)
if compgen -G "$dest/boot/vmlinuz-*" >/dev/null && [ -n "$(find "$dest/lib/modules" -name evdev.ko -print -quit 2>/dev/null)" ] \
  && [ -n "$(find "$dest/lib/modules" -name uinput.ko -print -quit 2>/dev/null)" ]; then exit 0; fi
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$pkg" ] || { echo "test-guest-kernel: cannot find the kernel package behind linux-image-amd64 (apt-get update?)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
(cd "$tmp" && apt-get download "$pkg" >/dev/null 2>&1 || apt-get download "$pkg")
mkdir -p "$dest.partial"
dpkg-deb -x "$tmp"/"$pkg"_*.deb "$dest.partial"
# Keep only what the tests use: the kernel, the virtio modules, evdev (guest input), uinput (virtual gamepads)
# and the HID modules uhid devices need (hid, uhid, hid-generic, hid-playstation with ff-memless and led-class-multicolor).
find "$dest.partial/lib/modules" -name '*.ko' ! -path '*/virtio/*' ! -name 'virtio_console.ko' ! -name 'evdev.ko' ! -name 'uinput.ko' \
  ! -name 'hid.ko' ! -name 'uhid.ko' ! -name 'hid-generic.ko' ! -name 'hid-playstation.ko' ! -name 'ff-memless.ko' ! -name 'led-class-multicolor.ko' -delete
rm -rf "$dest" "$dest.partial/usr"
mv "$dest.partial" "$dest"
echo "test-guest-kernel: $(ls "$dest"/boot/vmlinuz-*)"
