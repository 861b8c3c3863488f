#!/usr/bin/env bash
# Installs the Debian packages listed in build/debian-packages.txt that are
# not installed yet, then builds the native library. Safe to run again: with
# everything present it only rebuilds what changed. As root it also leaves
# /dev/kvm as Debian's udev rule would (group kvm, 0660).
set -euo pipefail
cd "$(dirname "$0")/.."

# one or more names a line; '#' starts a comment line
read -ra wanted <<< "$(grep -v -E '^\s*(#|$)' build/debian-packages.txt | tr '\n' ' ')"
missing=()
for p in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# /dev/kvm as Debian's udev rule leaves it (group kvm, 0660), which libvirt's
# QEMU user (libvirt-qemu, group kvm) needs: on a machine where udev never ran
# it is root:root 0600, and libvirtd then probes QEMU again on every call.
if [ "$(id -u)" -eq 0 ]; then
  getent group kvm >/dev/null || { echo "setup: creating the kvm group"; groupadd --system kvm; }
  if [ -c /dev/kvm ] && [ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]; then
    echo "setup: /dev/kvm was $(stat -c '%U:%G %a' /dev/kvm), now root:kvm 660 (as Debian's udev rule sets it)"
    chgrp kvm /dev/kvm
    chmod 0660 /dev/kvm
  fi
elif [ -c /dev/kvm ] && [ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]; then
  echo "setup: /dev/kvm is $(stat -c '%U:%G %a' /dev/kvm); as root, run again (or: chgrp kvm /dev/kvm && chmod 0660 /dev/kvm)" >&2
fi

make -C native -j"$(nproc)" --no-print-directory

# A Debian kernel for the end-to-end guest tests (unpacked into .cache/, never installed).
bash build/test-guest-kernel.sh || echo "setup: could not fetch the test guest kernel; end-to-end guest tests will skip" >&2
