#!/usr/bin/env bash
# Measures the image build (cold and warm caches), the boot archive and image sizes, and
# the boot under QEMU: kernel time when /init starts and when all services are ready,
# read from the node's own console lines. Prints the figures and their ratios.
# Usage: bench/boot.sh [runs]   (default 3 boots)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/skyfleet" ./cmd/skyfleet

t0=$(date +%s.%N)
GOCACHE="$work/gocache" XDG_CACHE_HOME="$work/cache" "$work/skyfleet" image -o "$work/cold.img" >"$work/cold.log" 2>&1
t1=$(date +%s.%N)
"$work/skyfleet" image -o "$work/warm.img" >"$work/warm.log" 2>&1
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "image build: cold %.1f s, warm %.1f s (warm/cold %.2f)\n", b-a, c-b, (c-b)/(b-a) }'
grep '^initramfs:' "$work/warm.log"
printf 'image: %s MiB apparent, %s MiB allocated (sparse)\n' $(( $(stat -c %s "$work/warm.img") >> 20 )) $(( $(du -k "$work/warm.img" | cut -f1) >> 10 ))

for i in $(seq 1 "$runs"); do
  cp --sparse=always "$work/warm.img" "$work/boot.img"
  log="$work/serial-$i.log"
  "$work/skyfleet" qemu --image "$work/boot.img" --status-port $((20000 + RANDOM % 20000)) --serial "$log" --timeout 6m </dev/null >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 360); do grep -q 'ready in' "$log" 2>/dev/null && break; sleep 1; done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  init=$(grep -o 'kernel time [0-9.]*s' "$log" | head -1 | grep -o '[0-9.]*')
  ready=$(grep -o 'ready in [0-9]* ms' "$log" | head -1 | grep -o '[0-9]*')
  awk -v i="$i" -v init="$init" -v ready="$ready" 'BEGIN { r = ready/1000; printf "boot %d: /init at %.2f s, ready at %.2f s kernel time: ready %.2f s after /init (%.2f of the 2 s goal)\n", i, init, r, r-init, (r-init)/2 }'
done
