#!/usr/bin/env bash
# Compares the mesh with a peer, Yggdrasil, as the issue's "Measure and report" asks:
# in one run, a line of 4 network namespaces (3 hops) running `skyfleet node` and then
# Yggdrasil (Debian's yggdrasil, static TCP peers, no multicast), alternated for
# ROUNDS rounds (default 3). Each run measures the time from starting the 4 daemons to
# the first end-to-end ping, the median round trip of 20 pings, the goodput of 100 MB
# from end to end, the CPU seconds each daemon spent on it (/proc/PID/stat utime+stime),
# and the goodput through a 20 Mbit/s tbf on the middle link (both ways). Prints every
# run, the medians and the ratios Skyfleet / Yggdrasil, with the load average around
# each run: on a shared machine the figures are only as good as that load.
# The measurement is e2e/ygg_bench_test.go (build tags e2e and yggbench, so CI never
# builds it). Needs root: namespaces, and apt-get for yggdrasil and ping if missing.
# Takes about a minute per round.
# Usage: sudo bench/ygg.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/sbin:/sbin
rounds=${1:-${ROUNDS:-3}}
if [ "$(id -u)" != 0 ]; then
  echo "bench/ygg.sh: needs root (network namespaces, apt-get)" >&2
  exit 1
fi
missing=()
command -v yggdrasil >/dev/null || missing+=(yggdrasil)
command -v ping >/dev/null || missing+=(iputils-ping)
command -v tc >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The test's whole output, with per-run details (link retransmissions), stays here;
# the daemons' logs are in e2e/artifacts/TestYggComparison/ (both are git-ignored).
mkdir -p e2e/artifacts
log=e2e/artifacts/ygg-bench.log
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "skyfleet vs yggdrasil: $(go env GOVERSION), yggdrasil $(dpkg-query -W -f '${Version}' yggdrasil 2>/dev/null || echo '(not from apt)'), ${cpu:-unknown cpu}, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), $rounds rounds"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
t0=$(date +%s)
status=0
(cd e2e && SKYFLEET_YGG_ROUNDS=$rounds go test -tags e2e,yggbench -run '^TestYggComparison$' -count=1 -v -timeout $((10 + 3 * rounds))m .) >"$log" 2>&1 || status=$?
t1=$(date +%s)
echo "load after:  $(cut -d' ' -f1-3 /proc/loadavg), $((t1 - t0)) s"
echo
if [ $status -ne 0 ] || ! grep -q '^=== ygg report' "$log"; then
  echo "FAILED:"
  tail -n 60 "$log"
  exit 1
fi
sed -n '/^=== ygg report/,/^=== end ygg report/p' "$log" | sed '1d;$d'
echo
echo "goodput: 10^8 bytes (tbf: 24 x 10^6) over the time from the send's start to the receiver's"
echo "end of stream; MB = 10^6 bytes; /rate is the tbf goodput over 20 Mbit/s. Round trip: median"
echo "of 20 pings 100 ms apart (Skyfleet: the node's rtt_ms; Yggdrasil: ping -6 on the TUN). CPU:"
echo "each daemon's utime+stime during the 100 MB, not the sender's or receiver's. others: the"
echo "share of all CPUs busy during the 100 MB with anything but the daemons, sender and receiver"
echo "(/proc/stat), i.e. other users of the machine; load: /proc/loadavg before and after each run."
echo "full output: $log"
