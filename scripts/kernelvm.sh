#!/usr/bin/env bash
# kernelvm.sh boots Debian's own x86-64 kernel under QEMU (TCG, software emulation)
# with the kernel modules a test asks for loaded (the snd-aloop ALSA loopback driver,
# the mac80211_hwsim simulated Wi-Fi radios), optionally with some host programs
# (hostapd, wpa_supplicant, ...), runs one static test binary inside it, and hands
# the binary's output and exit status back to the host.
#
# Why: the pure-Go ALSA driver (drivers/audio/alsa) has to be tested against a real
# kernel's /dev/snd, and the Wi-Fi code (nl80211, the WPA2 supplicant, the AP, IBSS)
# against a real kernel's cfg80211/mac80211, and neither the build hosts nor CI have
# sound or Wi-Fi hardware or may load kernel modules. A throwaway VM with snd-aloop
# gives real PCM devices to play into and capture from; one with mac80211_hwsim gives
# radios that hear each other, with Debian's hostapd and wpa_supplicant (inside the VM
# only) as reference peers. TCG is used because this machine's KVM cannot run Debian's
# kernel.
#
#   scripts/kernelvm.sh fetch DIR
#       Fills the cache DIR (e.g. ~/.cache/skyfleet/kernelvm) unless it is complete
#       and of this script's layout (a cache from an older version is refetched):
#       `apt-get download`s (never installs) Debian's current linux-image-*-amd64,
#       busybox-static and wireless-regdb and keeps only what the VM needs:
#         DIR/vmlinuz           the kernel
#         DIR/busybox           static busybox (the initramfs's shell and tools)
#         DIR/root/             copied over the initramfs's root:
#           lib/modules/RELEASE/*.ko   every root module below and every module it
#                                 needs, decompressed, with a modules.dep (busybox
#                                 depmod) so the kernel's own module requests (crypto
#                                 algorithms by name, through /sbin/modprobe) work
#           lib/modules/RELEASE/load/M the load order of root module M, dependencies
#                                 first
#           lib/firmware/regulatory.db{,.p7s}  Debian's signed regulatory database
#                                 (without it cfg80211 waits 5 s when an AP starts)
#         DIR/kernel.txt        which packages and versions they came from
#         DIR/.complete         written last: the cache is whole (holds its layout
#                               version)
#       Root modules: snd-aloop, mac80211_hwsim, bochs (the DRM driver of QEMU's VGA
#       card). Installed for the kernel to request,
#       not loaded: ccm ctr gcm cmac ghash-generic gf128mul ecb libarc4 (mac80211's
#       ciphers; without them setting a pairwise key fails).
#
#   scripts/kernelvm.sh run DIR BINARY [ARGS...]
#       Packs an initramfs (busybox, DIR/root, the tools below, an /init, BINARY as
#       /test), boots it with a timeout, loads the modules of KERNELVM_MODULES in
#       order, streams the serial console to stdout and exits with the status of
#       `/test ARGS...`. The guest reports that status on a `KERNELVM-EXIT <n>` line;
#       if it never comes (boot failure, timeout, a module that will not load) the
#       script says why on stderr and exits 125. BINARY must be static (for Go:
#       CGO_ENABLED=0). Its environment: PATH=/bin:/sbin:/usr/bin:/usr/sbin (busybox
#       in /bin, /sbin/modprobe is busybox's, the tools where the host has them),
#       HOME=TMPDIR=/tmp (a tmpfs), working directory /tmp, /proc, /sys and devtmpfs
#       on /dev. The guest has a second 16550 UART, /dev/ttyS1, wired to nothing: a
#       real serial driver's modem lines for the push-to-talk tests (a pty has none).
#       With KERNELVM_HOSTLINK, /dev/ttyS2 is a line to the host test (below).
#
#   Knobs (environment): KERNELVM_TIMEOUT (seconds for the whole boot and test,
#   default 300), KERNELVM_SMP (guest CPUs, default 2), KERNELVM_MEM (MiB, default 512),
#   KERNELVM_MODULES (root modules to load, in order, default "snd-aloop"; e.g.
#   "mac80211_hwsim"), KERNELVM_ALOOP_PARAMS (snd-aloop module parameters, e.g.
#   "pcm_substreams=2"), KERNELVM_HWSIM_PARAMS (mac80211_hwsim parameters, default
#   "radios=3"), KERNELVM_TOOLS (host programs to copy into the guest at their host
#   paths with every shared library they need and the dynamic loader, e.g. "hostapd
#   wpa_supplicant wpa_cli iw"; a missing one fails naming its Debian package),
#   KERNELVM_DISPLAY (WxH: QEMU's VGA card offers that mode first in its EDID; unset,
#   QEMU's default VGA), KERNELVM_QMP (a path: QEMU listens there for QMP, e.g. for
#   screendump), KERNELVM_HOSTLINK (a path: QEMU listens there for one client and
#   wires it to the guest's /dev/ttyS2, so the host test and the guest's can talk).
#
# Host packages: qemu-system-x86, cpio, xz-utils, apt (fetch), libc-bin (ldd, for
# KERNELVM_TOOLS), and the tools' own packages (hostapd, wpasupplicant, iw);
# scripts/deps.sh installs them.
set -euo pipefail

# The modules run can load; each one's dependencies (read from its depends= field)
# are added and loaded before it.
ROOT_MODULES=(snd-aloop mac80211-hwsim bochs)
# Modules installed (with their dependencies) but not loaded: the kernel asks
# /sbin/modprobe for them by name, e.g. "crypto-ccm(aes)" when a CCMP key is set.
# af_packet and aes-generic are built into Debian's kernel; listed in case they stop
# being.
EXTRA_MODULES=(ccm ctr gcm cmac ghash-generic gf128mul ecb libarc4 af-packet aes-generic)
# The cache's layout; a cache whose .complete holds anything else is refetched.
CACHE_VERSION="kernelvm cache 2: ${ROOT_MODULES[*]} + ${EXTRA_MODULES[*]}, regulatory.db"
HARNESS_FAILED=125

say() { echo "kernelvm: $*" >&2; }
die() { say "error: $*"; exit "$HARNESS_FAILED"; }
usage() {
  sed -n 's/^#   scripts\/kernelvm.sh /  scripts\/kernelvm.sh /p' "$0" >&2
  exit 2
}

# need fails naming the Debian package for each missing command.
need() {
  local missing=() cmd
  for cmd in "$@"; do
    command -v "${cmd%%=*}" >/dev/null 2>&1 || missing+=("${cmd#*=}")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing host packages: ${missing[*]} (run scripts/deps.sh, or apt-get install ${missing[*]})"
}

complete() {
  local dir=$1
  [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$CACHE_VERSION" ] &&
    [ -s "$dir/vmlinuz" ] && [ -x "$dir/busybox" ] && [ -d "$dir/root/lib/modules" ]
}

# ---------------------------------------------------------------- fetch

# kernel_package prints the versioned package linux-image-amd64 currently points at,
# e.g. linux-image-6.1.0-57-amd64.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-.*-amd64$/ { print $2; exit }'
}

apt_update() {
  if [ "$(id -u)" != 0 ]; then
    die "apt's package lists look stale; run: sudo apt-get update"
  fi
  say "apt-get update (the package lists were stale or missing)"
  apt-get update -qq
}

# download fetches the kernel, busybox-static and wireless-regdb .debs into the
# current directory.
download() {
  local opts=() pkg
  # As root, apt drops to the _apt user to download, which cannot write into a
  # directory under root's home; downloading as root is what we want here anyway.
  [ "$(id -u)" = 0 ] && opts=(-o APT::Sandbox::User=root)
  pkg=$(kernel_package)
  if [ -n "$pkg" ] && apt-get download -qq "${opts[@]}" "$pkg" busybox-static wireless-regdb; then
    return
  fi
  # No lists yet, or the mirror has moved on from the version they name.
  apt_update
  pkg=$(kernel_package)
  [ -n "$pkg" ] || die "apt-cache depends linux-image-amd64 names no linux-image-*-amd64 package"
  apt-get download -qq "${opts[@]}" "$pkg" busybox-static wireless-regdb ||
    die "apt-get download $pkg busybox-static wireless-regdb failed"
}

# unpack_module writes module file $1 (.ko, .ko.xz or .ko.zst) as plain .ko $2:
# busybox insmod cannot read compressed modules.
unpack_module() {
  case $1 in
  *.ko) cp "$1" "$2" ;;
  *.ko.xz) xz -dc "$1" >"$2" ;;
  *.ko.zst) need zstd=zstd && zstd -qdc "$1" >"$2" ;;
  *) die "unknown module format: $1" ;;
  esac
}

# module_depends prints the comma-separated depends= field of plain module $1.
module_depends() {
  tr '\0' '\n' <"$1" | grep -a '^depends=' | head -n1 | cut -d= -f2 || true
}

fetch() {
  local dir=$1
  if complete "$dir"; then
    say "$dir is complete: $(cat "$dir/kernel.txt")"
    return
  fi
  need apt-get=apt dpkg-deb=dpkg xz=xz-utils
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # Two fetches at once (parallel test packages) wait for each other.
  exec 9>"$dir/.lock"
  if command -v flock >/dev/null; then flock 9; fi
  if complete "$dir"; then
    say "$dir was completed meanwhile: $(cat "$dir/kernel.txt")"
    return
  fi
  local started=$SECONDS
  work=$(mktemp -d "$dir/.fetch.XXXXXX")
  trap 'rm -rf "$work"' EXIT

  say "downloading Debian's kernel, busybox-static and wireless-regdb into $dir (apt-get download, not installed)"
  (cd "$work" && download)
  local kdeb bdeb rdeb
  kdeb=$(ls "$work"/linux-image-*.deb)
  bdeb=$(ls "$work"/busybox-static_*.deb)
  rdeb=$(ls "$work"/wireless-regdb_*.deb)
  local kver d
  kver=""
  for d in "$kdeb" "$bdeb" "$rdeb"; do
    kver+="${kver:+, }$(dpkg-deb -f "$d" Package) $(dpkg-deb -f "$d" Version)"
  done
  say "unpacking $kver"
  dpkg-deb -x "$kdeb" "$work/k"
  dpkg-deb -x "$bdeb" "$work/b"
  dpkg-deb -x "$rdeb" "$work/r"

  local vmlinuz release moddir busybox
  vmlinuz=$(find "$work/k" -path '*/boot/vmlinuz-*' -type f | head -n1)
  [ -n "$vmlinuz" ] || die "no boot/vmlinuz-* in $kdeb"
  release=${vmlinuz##*/vmlinuz-}
  moddir=$(find "$work/k" -type d -path "*/lib/modules/$release" | head -n1)
  [ -n "$moddir" ] || die "no lib/modules/$release in $kdeb"
  busybox=$(find "$work/b" -path '*/bin/busybox' -type f | head -n1)
  [ -n "$busybox" ] || die "no busybox in $bdeb"

  # Every module file in the package by name; depends= lists use the names with '-'
  # or '_' (the kernel treats them alike), so both are normalised to '-'.
  declare -gA module_file=()
  local f b
  while IFS= read -r f; do
    b=${f##*/}
    b=${b%%.ko*}
    module_file[${b//_/-}]=$f
  done < <(find "$moddir" -name '*.ko*' -type f)

  # Depth-first over depends=, so that each module comes after what it needs.
  local out=$work/out/root/lib/modules/$release
  mkdir -p "$out/load"
  declare -gA seen=()
  order=()
  visit() {
    local m=${1//_/-} d
    [ -z "${seen[$m]:-}" ] || return 0
    seen[$m]=1
    if [ -z "${module_file[$m]:-}" ]; then
      # Built into the kernel: nothing to load.
      grep -q "/${m}.ko\$\|/${m//-/_}.ko\$" "$moddir/modules.builtin" 2>/dev/null ||
        die "module $m is neither in $kdeb nor built in"
      say "  $m is built into the kernel"
      return 0
    fi
    [ -f "$out/$m.ko" ] || unpack_module "${module_file[$m]}" "$out/$m.ko"
    local deps
    deps=$(module_depends "$out/$m.ko")
    say "  $m needs: ${deps:-nothing}"
    for d in ${deps//,/ }; do visit "$d"; done
    order+=("$m")
  }
  local m
  for m in "${ROOT_MODULES[@]}"; do
    seen=()
    order=()
    visit "$m"
    printf '%s\n' "${order[@]}" >"$out/load/$m"
    say "$m, in load order: ${order[*]}"
  done
  seen=()
  for m in "${EXTRA_MODULES[@]}"; do visit "$m"; done
  # busybox's depmod writes the modules.dep (and modules.alias) its modprobe reads;
  # it runs here, on the host, as it would in the guest.
  "$busybox" depmod -b "$work/out/root" "$release" || die "busybox depmod failed"
  [ -s "$out/modules.dep" ] || die "busybox depmod wrote no modules.dep"

  # Debian's kernel trusts the Debian-signed database (the package's default choice).
  local fw=$work/out/root/lib/firmware
  mkdir -p "$fw"
  for f in regulatory.db regulatory.db.p7s; do
    [ -f "$work/r/lib/firmware/$f-debian" ] || die "no lib/firmware/$f-debian in $rdeb"
    cp "$work/r/lib/firmware/$f-debian" "$fw/$f"
  done

  cp "$vmlinuz" "$work/out/vmlinuz"
  cp "$busybox" "$work/out/busybox"
  chmod 755 "$work/out/busybox"
  echo "$kver, kernel $release" >"$work/out/kernel.txt"

  rm -rf "$dir/vmlinuz" "$dir/busybox" "$dir/modules" "$dir/root" "$dir/kernel.txt" "$dir/.complete"
  mv "$work/out/vmlinuz" "$work/out/busybox" "$work/out/root" "$work/out/kernel.txt" "$dir/"
  echo "$CACHE_VERSION" >"$dir/.complete"
  rm -rf "$work"
  say "$dir is complete ($(du -sh "$dir" | cut -f1), $((SECONDS - started))s): $(cat "$dir/kernel.txt")"
}

# ---------------------------------------------------------------- run

# shquote prints its argument single-quoted for the guest's sh.
shquote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# module_params prints the parameters for root module $1 from its knob.
module_params() {
  case $1 in
  snd-aloop) echo "${KERNELVM_ALOOP_PARAMS:-}" ;;
  mac80211-hwsim) echo "${KERNELVM_HWSIM_PARAMS-radios=3}" ;;
  esac
}

# write_init writes the initramfs's /init, which loads root modules $2 (a
# space-separated list, named with '-') and runs /test with the remaining arguments.
write_init() {
  local out=$1 modules=$2 args="" a m loads=""
  shift 2
  for a in "$@"; do args+=" $(shquote "$a")"; done
  for m in $modules; do
    loads+="load $(shquote "$m") $(shquote "$(module_params "$m")")
"
  done
  cat >"$out" <<EOF
#!/bin/busybox sh
# Written by scripts/kernelvm.sh: set the machine up, run /test, report, power off.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/tmp TMPDIR=/tmp
fail() { echo "KERNELVM-ERROR \$*"; poweroff -f; sleep 10; }
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t tmpfs tmpfs /tmp || fail "mount /tmp"
mkdir -p /dev/pts /dev/shm /run /var
ln -s /run /var/run
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
ip link set lo up
mods=/lib/modules/\$(uname -r)
# load M PARAMS: insmod root module M's dependencies, in order, then M with PARAMS.
load() {
  [ -f "\$mods/load/\$1" ] || fail "module \$1 is not in the kernel cache"
  for d in \$(cat "\$mods/load/\$1"); do
    [ -d "/sys/module/\$(echo "\$d" | tr - _)" ] && continue
    p=""
    [ "\$d" = "\$1" ] && p=\$2
    insmod "\$mods/\$d.ko" \$p || fail "insmod \$d \$p failed"
  done
}
echo "kernelvm: kernel \$(uname -r), loading modules: $modules"
$loads
if [ -d /sys/module/snd_aloop ]; then
  echo "kernelvm: /proc/asound/cards:"
  cat /proc/asound/cards || fail "no /proc/asound/cards"
  echo "kernelvm: ls -l /dev/snd:"
  ls -l /dev/snd || fail "no /dev/snd"
fi
if [ -d /sys/module/bochs ]; then
  echo "kernelvm: DRM devices:" \$(ls /dev/dri)
fi
if [ -d /sys/module/mac80211_hwsim ]; then
  echo "kernelvm: radios:" \$(ls /sys/class/ieee80211)
fi
echo $(shquote "kernelvm: running /test$args")
cd /tmp
/test$args
status=\$?
echo "KERNELVM-EXIT \$status"
sync
poweroff -f
sleep 10
EOF
  chmod 755 "$out"
}

# tool_package names the Debian package that provides program $1.
tool_package() {
  case $1 in
  wpa_supplicant | wpa_cli | wpa_passphrase) echo wpasupplicant ;;
  hostapd | hostapd_cli) echo hostapd ;;
  ip) echo iproute2 ;;
  *) echo "$1" ;;
  esac
}

# copy_tools copies programs $2... (names on PATH, or in /usr/sbin or /sbin) into
# root $1 at their host paths, with the shared libraries ldd names and the dynamic
# loader, so that they run in the guest.
copy_tools() {
  local root=$1 t path missing=() pkgs=() files=() f
  shift
  for t in "$@"; do
    path=$(PATH="$PATH:/usr/sbin:/sbin" command -v "$t" || true)
    if [ -z "$path" ]; then
      missing+=("$t")
      pkgs+=("$(tool_package "$t")")
      continue
    fi
    files+=("$path")
    # "libx.so.1 => /lib/.../libx.so.1 (0x...)" and "/lib64/ld-linux-x86-64.so.2 (0x...)"
    while IFS= read -r f; do files+=("$f"); done < <(
      ldd "$path" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
    )
  done
  [ ${#missing[@]} -eq 0 ] ||
    die "KERNELVM_TOOLS: ${missing[*]} not on this host; missing Debian packages: ${pkgs[*]} (run scripts/deps.sh, or apt-get install ${pkgs[*]})"
  local n=0
  while IFS= read -r f; do
    mkdir -p "$root/${f%/*}"
    cp -L "$f" "$root/$f"
    n=$((n + 1))
  done < <(printf '%s\n' "${files[@]}" | sort -u)
  say "tools: $* (with their libraries, $n files)"
}

run() {
  local dir=$1 bin=$2
  shift 2
  complete "$dir" || die "$dir is not a complete kernel cache of this script's layout; run: $0 fetch $dir"
  [ -f "$bin" ] || die "no test binary $bin"
  need qemu-system-x86_64=qemu-system-x86 cpio=cpio gzip=gzip timeout=coreutils
  # A dynamically linked binary would fail in the guest with a baffling "not found".
  if LC_ALL=C grep -qa -m1 '/lib64/ld-linux' <(head -c 4096 "$bin"); then
    die "$bin is dynamically linked; build it static (for Go: CGO_ENABLED=0)"
  fi

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/kernelvm.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  local root=$tmp/root
  mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp}
  cp "$dir/busybox" "$root/bin/busybox"
  # The kernel runs /sbin/modprobe to ask for modules (crypto algorithms) by name.
  ln -s /bin/busybox "$root/sbin/modprobe"
  cp -R "$dir/root/." "$root/"
  local modules="" m
  for m in ${KERNELVM_MODULES-snd-aloop}; do
    m=${m//_/-}
    compgen -G "$dir/root/lib/modules/*/load/$m" >/dev/null ||
      die "KERNELVM_MODULES: $m is not one of the cached root modules: ${ROOT_MODULES[*]}"
    modules+="${modules:+ }$m"
  done
  if [ -n "${KERNELVM_TOOLS:-}" ]; then
    need ldd=libc-bin
    # shellcheck disable=SC2086 # a list of names
    copy_tools "$root" $KERNELVM_TOOLS
  fi
  cp "$bin" "$root/test"
  chmod 755 "$root/test"
  write_init "$root/init" "$modules" "$@"
  # The kernel's built-in initramfs provides /dev/console, which a non-root cpio
  # could not create; this archive is unpacked over it.
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$tmp/initrd.gz"

  local extra=()
  if [ -n "${KERNELVM_DISPLAY:-}" ]; then
    [[ $KERNELVM_DISPLAY =~ ^([0-9]+)x([0-9]+)$ ]] || die "KERNELVM_DISPLAY=$KERNELVM_DISPLAY: want WIDTHxHEIGHT, e.g. 800x480"
    extra+=(-vga none -device "VGA,edid=on,xres=${BASH_REMATCH[1]},yres=${BASH_REMATCH[2]}")
  fi
  [ -z "${KERNELVM_QMP:-}" ] || extra+=(-qmp "unix:$KERNELVM_QMP,server=on,wait=off")
  if [ -n "${KERNELVM_HOSTLINK:-}" ]; then
    extra+=(-chardev "socket,id=hostlink,path=$KERNELVM_HOSTLINK,server=on,wait=off" -serial chardev:hostlink)
  fi

  local timeout=${KERNELVM_TIMEOUT:-300}
  say "booting $(cat "$dir/kernel.txt") under TCG (initrd $(du -h "$tmp/initrd.gz" | cut -f1), timeout ${timeout}s)"
  local started=$SECONDS rc
  set +e
  timeout -k 10 "$timeout" qemu-system-x86_64 \
    -M q35 -accel tcg -cpu max -smp "${KERNELVM_SMP:-2}" -m "${KERNELVM_MEM:-512}" \
    -nic none -display none -monitor none -serial stdio -serial null -no-reboot "${extra[@]}" \
    -kernel "$dir/vmlinuz" -initrd "$tmp/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 mitigations=off" \
    </dev/null 2>&1 | tee "$tmp/console.log"
  rc=${PIPESTATUS[0]}
  set -e
  local took=$((SECONDS - started))

  local status err
  status=$(tr -d '\r' <"$tmp/console.log" | sed -n 's/^KERNELVM-EXIT \([0-9][0-9]*\)$/\1/p' | tail -n1)
  if [ -n "$status" ]; then
    say "/test exited with status $status after ${took}s"
    exit "$status"
  fi
  err=$(tr -d '\r' <"$tmp/console.log" | sed -n 's/^KERNELVM-ERROR //p' | tail -n1)
  if [ -n "$err" ]; then
    die "the guest could not set up: $err (after ${took}s)"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    die "timed out after ${timeout}s without a KERNELVM-EXIT line (raise KERNELVM_TIMEOUT?)"
  fi
  die "QEMU exited (status $rc) after ${took}s without a KERNELVM-EXIT line: the guest crashed or never ran /test"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
fetch) [ $# -eq 1 ] || usage; fetch "$1" ;;
run) [ $# -ge 2 ] || usage; run "$@" ;;
*) usage ;;
esac
