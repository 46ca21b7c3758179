#!/usr/bin/env bash
# Installs the Debian packages Skyfleet's build and tests use, when they are missing:
# QEMU (boots images; the x86-64 one, with cpio and xz, runs Debian's own kernel with
# snd-aloop for the ALSA driver's tests, see scripts/kernelvm.sh), dosfstools and
# e2fsprogs (fsck gates on every image), mtools (an independent FAT reader in tests),
# iproute2 (`ip netns` and veth for the mesh tests), curl (its --pinnedpubkey checks
# the master's TLS pin), Dire Wolf, multimon-ng and sox (they decode what the AFSK modem
# sends), chromium and a font (the fleet dashboard's test in a real headless browser),
# hostapd, wpa_supplicant and iw (the reference Wi-Fi access point and station that
# Skyfleet's own are tested against, inside the kernel VM only, on mac80211_hwsim).
# As root it runs apt-get; otherwise it prints the exact command and fails, so nothing
# half-works.
#
# It also makes sure apt sees Debian's non-free-firmware component: `skyfleet image`
# fetches the Pi's Wi-Fi firmware with `apt-get download firmware-brcm80211` (never
# installed on the host), and that package lives there. Only Debian's own archive
# entries get the component, each once. On Debian it adds the release's backports
# suite too, for that component alone: the stable package (bookworm's 20230210) lacks
# the NVRAM files of the Zero 2 W and the Pi 5, which backports' newer one carries.
# Backports are never installed from unless asked for by name (apt gives them
# priority 100), so this changes nothing else on the host. The lists are refreshed
# only if a file changed.
set -euo pipefail
refresh=0

# add_nonfree_firmware adds non-free-firmware to every Debian archive entry lacking
# it, in the deb822 file (Components: lines of stanzas whose URIs are Debian's) and in
# one-line sources.list files. Prints the files it changed.
add_nonfree_firmware() {
  local f changed=()
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # A stanza is a paragraph: remember whether its URIs are Debian's, then add the
    # component to its Components: line when that line lacks it.
    if awk 'BEGIN{RS=""; FS="\n"} {deb=0; comp=0; for(i=1;i<=NF;i++){if($i~/^URIs:.*\/debian(-security)?\/?([ \t]|$)/)deb=1; if($i~/^Components:/ && $i!~/[ \t]non-free-firmware([ \t]|$)/)comp=1} if(deb&&comp)found=1} END{exit !found}' "$f"; then
      [ "$(id -u)" = 0 ] || { echo "deps: $f lacks the non-free-firmware component (the Wi-Fi firmware's); run: sudo scripts/deps.sh" >&2; return 1; }
      awk 'BEGIN{RS=""; ORS="\n\n"; FS=OFS="\n"} {deb=0; for(i=1;i<=NF;i++) if($i~/^URIs:.*\/debian(-security)?\/?([ \t]|$)/)deb=1; if(deb) for(i=1;i<=NF;i++) if($i~/^Components:/ && $i!~/[ \t]non-free-firmware([ \t]|$)/) $i=$i" non-free-firmware"; print}' "$f" >"$f.skyfleet.tmp"
      mv "$f.skyfleet.tmp" "$f"
      changed+=("$f")
    fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    if grep -Eq '^[[:space:]]*deb(-src)?[[:space:]].*/debian(-security)?/?[[:space:]]' "$f" &&
      grep -E '^[[:space:]]*deb(-src)?[[:space:]].*/debian(-security)?/?[[:space:]]' "$f" | grep -vq '[[:space:]]non-free-firmware\([[:space:]]\|$\)'; then
      [ "$(id -u)" = 0 ] || { echo "deps: $f lacks the non-free-firmware component (the Wi-Fi firmware's); run: sudo scripts/deps.sh" >&2; return 1; }
      sed -E -i '/^[[:space:]]*deb(-src)?[[:space:]].*\/debian(-security)?\/?[[:space:]]/{/[[:space:]]non-free-firmware([[:space:]]|$)/!s/[[:space:]]*$/ non-free-firmware/}' "$f"
      changed+=("$f")
    fi
  done
  if [ ${#changed[@]} -gt 0 ]; then
    echo "deps: added Debian's non-free-firmware component (for firmware-brcm80211) to ${changed[*]}"
    refresh=1
  fi
}

# add_backports_firmware adds <codename>-backports non-free-firmware in its own file
# when no apt source names that suite yet (one that does got the component above).
add_backports_firmware() {
  local os_id="" codename="" f=/etc/apt/sources.list.d/skyfleet-backports-firmware.sources
  [ -r /etc/os-release ] && . /etc/os-release
  os_id=${ID:-} codename=${VERSION_CODENAME:-}
  [ "$os_id" = debian ] && [ -n "$codename" ] && [ "$codename" != sid ] || return 0
  if grep -Eqs "(^|[[:space:]])${codename}-backports([[:space:]]|$)" /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || { echo "deps: apt has no ${codename}-backports suite (the newer Wi-Fi firmware's); run: sudo scripts/deps.sh" >&2; return 1; }
  cat >"$f.tmp" <<EOS
# Added by Skyfleet's scripts/deps.sh: firmware-brcm80211 from backports for the
# Raspberry Pi Wi-Fi NVRAM files stable lacks. Only downloaded, never installed.
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename}-backports
Components: non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
  mv "$f.tmp" "$f"
  echo "deps: added Debian's ${codename}-backports non-free-firmware (newer firmware-brcm80211) in $f"
  refresh=1
}
add_nonfree_firmware
add_backports_firmware
if [ "$refresh" = 1 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
fi
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
  [hostapd]=hostapd
  [wpa_supplicant]=wpasupplicant
  [iw]=iw
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
