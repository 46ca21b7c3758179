#!/usr/bin/env bash
# Installs the Debian packages Skyfleet's build and tests use, when they are missing:
# QEMU (boots images; the x86-64 one, with cpio and xz, runs Debian's own kernel with
# snd-aloop for the ALSA driver's tests, see scripts/kernelvm.sh), dosfstools and
# e2fsprogs (fsck gates on every image), mtools (an independent FAT reader in tests),
# iproute2 (`ip netns` and veth for the mesh tests), curl (its --pinnedpubkey checks
# the master's TLS pin), Dire Wolf, multimon-ng and sox (they decode what the AFSK modem
# sends), chromium and a font (the fleet dashboard's test in a real headless browser).
# As root it runs apt-get; otherwise it prints the exact command and fails, so nothing
# half-works.
set -euo pipefail
declare -A need=(
  [qemu-system-aarch64]=qemu-system-arm
  [qemu-system-x86_64]=qemu-system-x86
  [cpio]=cpio
  [xz]=xz-utils
  [fsck.vfat]=dosfstools
  [e2fsck]=e2fsprogs
  [mcopy]=mtools
  [ip]=iproute2
  [chromium]=chromium
  [curl]=curl
  [atest]=direwolf
  [multimon-ng]=multimon-ng
  [sox]=sox
)
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$bin" >/dev/null 2>&1 || missing+=("${need[$bin]}")
done
# A font for chromium's screenshots (without recommends it may come with none).
[ -d /usr/share/fonts/truetype/dejavu ] || missing+=(fonts-dejavu-core)
[ ${#missing[@]} -eq 0 ] && exit 0
pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing $pkgs"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
else
  echo "deps: missing $pkgs; run: sudo apt-get update && sudo apt-get install -y $pkgs" >&2
  exit 1
fi
