#!/usr/bin/env bash
# kernelvm.sh boots Debian's own x86-64 kernel under QEMU (TCG, software emulation)
# with the snd-aloop ALSA loopback driver loaded, runs one static test binary inside
# it, and hands the binary's output and exit status back to the host.
#
# Why: the pure-Go ALSA driver (drivers/audio/alsa) has to be tested against a real
# kernel's /dev/snd, and neither the build hosts nor CI have sound hardware or may load
# kernel modules. A throwaway VM with snd-aloop gives real PCM devices to play into and
# capture from. TCG is used because this machine's KVM cannot run Debian's kernel.
#
#   scripts/kernelvm.sh fetch DIR
#       Fills the cache DIR (e.g. ~/.cache/skyfleet/kernelvm) unless it is complete:
#       `apt-get download`s (never installs) Debian's current linux-image-*-amd64 and
#       busybox-static and keeps only what the VM needs:
#         DIR/vmlinuz           the kernel
#         DIR/busybox           static busybox (the initramfs's shell and tools)
#         DIR/modules/*.ko      snd-aloop and every module it needs, decompressed
#         DIR/modules/order     their load order, dependencies first
#         DIR/kernel.txt        which package and version they came from
#         DIR/.complete         written last: the cache is whole
#
#   scripts/kernelvm.sh run DIR BINARY [ARGS...]
#       Packs an initramfs (busybox, the modules, an /init, BINARY as /test), boots it
#       with a timeout, streams the serial console to stdout and exits with the status
#       of `/test ARGS...`. The guest reports that status on a `KERNELVM-EXIT <n>` line;
#       if it never comes (boot failure, timeout, a module that will not load) the
#       script says why on stderr and exits 125. BINARY must be static (for Go:
#       CGO_ENABLED=0). Its environment: PATH=/bin (busybox), HOME=TMPDIR=/tmp (a
#       tmpfs), working directory /tmp, /proc, /sys and devtmpfs on /dev. The guest
#       has a second 16550 UART, /dev/ttyS1, wired to nothing: a real serial
#       driver's modem lines for the push-to-talk tests (a pty has none).
#
#   Knobs (environment): KERNELVM_TIMEOUT (seconds for the whole boot and test,
#   default 300), KERNELVM_SMP (guest CPUs, default 2), KERNELVM_MEM (MiB, default 512),
#   KERNELVM_ALOOP_PARAMS (snd-aloop module parameters, e.g. "pcm_substreams=2").
#
# Host packages: qemu-system-x86, cpio, xz-utils, apt (fetch); scripts/deps.sh installs
# them.
set -euo pipefail

# The modules to load; each one's dependencies (read from its depends= field) are
# added and loaded before it.
ROOT_MODULES=(snd-aloop)
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
  [ -f "$dir/.complete" ] && [ -s "$dir/vmlinuz" ] && [ -x "$dir/busybox" ] && [ -s "$dir/modules/order" ]
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

# download fetches the kernel and busybox-static .debs into the current directory.
download() {
  local opts=() pkg
  # As root, apt drops to the _apt user to download, which cannot write into a
  # directory under root's home; downloading as root is what we want here anyway.
  [ "$(id -u)" = 0 ] && opts=(-o APT::Sandbox::User=root)
  pkg=$(kernel_package)
  if [ -n "$pkg" ] && apt-get download -qq "${opts[@]}" "$pkg" busybox-static; then
    return
  fi
  # No lists yet, or the mirror has moved on from the version they name.
  apt_update
  pkg=$(kernel_package)
  [ -n "$pkg" ] || die "apt-cache depends linux-image-amd64 names no linux-image-*-amd64 package"
  apt-get download -qq "${opts[@]}" "$pkg" busybox-static || die "apt-get download $pkg busybox-static failed"
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

  say "downloading Debian's kernel and busybox-static into $dir (apt-get download, not installed)"
  (cd "$work" && download)
  local kdeb bdeb
  kdeb=$(ls "$work"/linux-image-*.deb)
  bdeb=$(ls "$work"/busybox-static_*.deb)
  local kver
  kver="$(dpkg-deb -f "$kdeb" Package) $(dpkg-deb -f "$kdeb" Version), $(dpkg-deb -f "$bdeb" Package) $(dpkg-deb -f "$bdeb" Version)"
  say "unpacking $kver"
  dpkg-deb -x "$kdeb" "$work/k"
  dpkg-deb -x "$bdeb" "$work/b"

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
  declare -gA seen=()
  order=()
  mkdir -p "$work/out/modules"
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
    unpack_module "${module_file[$m]}" "$work/out/modules/$m.ko"
    local deps
    deps=$(module_depends "$work/out/modules/$m.ko")
    say "  $m needs: ${deps:-nothing}"
    for d in ${deps//,/ }; do visit "$d"; done
    order+=("$m")
  }
  local m
  for m in "${ROOT_MODULES[@]}"; do visit "$m"; done

  cp "$vmlinuz" "$work/out/vmlinuz"
  cp "$busybox" "$work/out/busybox"
  chmod 755 "$work/out/busybox"
  printf '%s\n' "${order[@]}" >"$work/out/modules/order"
  echo "$kver, kernel $release" >"$work/out/kernel.txt"

  rm -rf "$dir/vmlinuz" "$dir/busybox" "$dir/modules" "$dir/kernel.txt"
  mv "$work/out/vmlinuz" "$work/out/busybox" "$work/out/modules" "$work/out/kernel.txt" "$dir/"
  touch "$dir/.complete"
  rm -rf "$work"
  say "modules, in load order: ${order[*]}"
  say "$dir is complete ($(du -sh "$dir" | cut -f1), $((SECONDS - started))s): $(cat "$dir/kernel.txt")"
}

# ---------------------------------------------------------------- run

# shquote prints its argument single-quoted for the guest's sh.
shquote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# write_init writes the initramfs's /init, which runs /test with the given arguments.
write_init() {
  local out=$1 args="" a
  shift
  for a in "$@"; do args+=" $(shquote "$a")"; done
  cat >"$out" <<EOF
#!/bin/busybox sh
# Written by scripts/kernelvm.sh: set the machine up, run /test, report, power off.
/bin/busybox --install -s /bin
export PATH=/bin HOME=/tmp TMPDIR=/tmp
fail() { echo "KERNELVM-ERROR \$*"; poweroff -f; sleep 10; }
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t tmpfs tmpfs /tmp || fail "mount /tmp"
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
echo "kernelvm: kernel \$(uname -r), loading modules"
for m in \$(cat /lib/modules/order); do
  params=""
  [ "\$m" = snd-aloop ] && params=$(shquote "${KERNELVM_ALOOP_PARAMS:-}")
  insmod /lib/modules/\$m.ko \$params || fail "insmod \$m failed"
done
echo "kernelvm: /proc/asound/cards:"
cat /proc/asound/cards || fail "no /proc/asound/cards"
echo "kernelvm: ls -l /dev/snd:"
ls -l /dev/snd || fail "no /dev/snd"
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

run() {
  local dir=$1 bin=$2
  shift 2
  complete "$dir" || die "$dir is not a complete kernel cache; run: $0 fetch $dir"
  [ -f "$bin" ] || die "no test binary $bin"
  need qemu-system-x86_64=qemu-system-x86 cpio=cpio gzip=gzip timeout=coreutils
  # A dynamically linked binary would fail in the guest with a baffling "not found".
  if LC_ALL=C grep -qa -m1 '/lib64/ld-linux' <(head -c 4096 "$bin"); then
    die "$bin is dynamically linked; build it static (for Go: CGO_ENABLED=0)"
  fi

  tmp=$(mktemp -d "${TMPDIR:-/tmp}/kernelvm.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  local root=$tmp/root
  mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
  cp "$dir/busybox" "$root/bin/busybox"
  cp "$dir"/modules/*.ko "$dir/modules/order" "$root/lib/modules/"
  cp "$bin" "$root/test"
  chmod 755 "$root/test"
  write_init "$root/init" "$@"
  # The kernel's built-in initramfs provides /dev/console, which a non-root cpio
  # could not create; this archive is unpacked over it.
  (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$tmp/initrd.gz"

  local timeout=${KERNELVM_TIMEOUT:-300}
  say "booting $(cat "$dir/kernel.txt") under TCG (initrd $(du -h "$tmp/initrd.gz" | cut -f1), timeout ${timeout}s)"
  local started=$SECONDS rc
  set +e
  timeout -k 10 "$timeout" qemu-system-x86_64 \
    -M q35 -accel tcg -cpu max -smp "${KERNELVM_SMP:-2}" -m "${KERNELVM_MEM:-512}" \
    -nic none -display none -monitor none -serial stdio -serial null -no-reboot \
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
