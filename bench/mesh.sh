#!/usr/bin/env bash
# Measures the mesh router against its goals and prints the figures with their ratios:
#   - link data path: session Seal+Open of 1280-byte payloads vs raw ChaCha20-Poly1305
#     Seal+Open of the same size, one core (goal: >= 0.7 of raw);
#   - handshakes per second (both sides of a Noise IKpsk2 handshake, one core) vs raw
#     secp256k1 ECDH per second, and what one handshake costs in ECDHs;
#   - forwarding through 3 hops over UDP on loopback: one stream's MB/s, and 1280-byte
#     datagrams per second open loop (as fast as the source can send) and closed loop
#     (at most 128 in flight), with loss and datagrams per CPU-second;
#   - route setup over 4 hops at 20 ms per link vs the ideal 8 x 20 = 160 ms;
#   - heap per route (10,000 routes through one node) and per link end (200-link hub).
# Takes about a minute; needs only the Go toolchain.
# Usage: bench/mesh.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

failed=()
run() { # run NAME GO-TEST-ARGS...: go test benchmarks into $work/NAME.txt; failures noted
  local name=$1
  shift
  if ! go test -run '^$' -count 1 "$@" >"$work/$name.txt" 2>&1; then
    failed+=("$name")
  fi
}

# metric NAME BENCH UNIT: the value benchmark BENCH (any -N suffix) reported in UNIT in
# $work/NAME.txt, or nothing.
metric() {
  awk -v b="$2" -v u="$3" '
    $1 == b || index($1, b "-") == 1 { for (i = 3; i <= NF; i++) if ($i == u) { print $(i - 1); exit } }' "$work/$1.txt"
}

t0=$(date +%s)
run link -bench '^Benchmark(SealOpen1280|RawAEAD1280|Handshake|ECDH)$' -cpu 1 -benchtime 1s ./services/mesh/link/
run fwd -bench '^BenchmarkForward3HopsUDP$' -benchtime 400x -v ./services/mesh/
run setup -bench '^BenchmarkRouteSetup4Hops20ms$' -benchtime 10x ./services/mesh/
run mem -bench '^BenchmarkMemoryPer(Route|Link)$' -benchtime 1x ./services/mesh/
t1=$(date +%s)

seal=$(metric link BenchmarkSealOpen1280 MB/s)
raw=$(metric link BenchmarkRawAEAD1280 MB/s)
hs_ns=$(metric link BenchmarkHandshake ns/op)
dh_ns=$(metric link BenchmarkECDH ns/op)
fwd_mbs=$(metric fwd BenchmarkForward3HopsUDP fwd-MB/s)
fwd_cores=$(metric fwd BenchmarkForward3HopsUDP stream-cores)
pps=$(metric fwd BenchmarkForward3HopsUDP pkts/s)
loss=$(metric fwd BenchmarkForward3HopsUDP loss)
ppsc=$(metric fwd BenchmarkForward3HopsUDP pkts/s/core)
wpps=$(metric fwd BenchmarkForward3HopsUDP win-pkts/s)
wloss=$(metric fwd BenchmarkForward3HopsUDP win-loss)
wppsc=$(metric fwd BenchmarkForward3HopsUDP win-pkts/s/core)
setup_ms=$(metric setup BenchmarkRouteSetup4Hops20ms setup-ms)
route_b=$(metric mem BenchmarkMemoryPerRoute bytes/route)
rule_b=$(metric mem BenchmarkMemoryPerRoute transit-rule-bytes)
link_b=$(metric mem BenchmarkMemoryPerLink bytes/link)

cpu=$(awk -F': ' '/^cpu:/ { print $2; exit }' "$work/link.txt")
echo "mesh benchmarks: $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH), ${cpu:-unknown cpu}, $(nproc) CPUs, $(date -u '+%Y-%m-%d %H:%M UTC'), $((t1 - t0)) s"
echo
awk -v seal="$seal" -v raw="$raw" -v hs_ns="$hs_ns" -v dh_ns="$dh_ns" \
  -v fwd_mbs="$fwd_mbs" -v fwd_cores="$fwd_cores" -v pps="$pps" -v loss="$loss" -v ppsc="$ppsc" \
  -v wpps="$wpps" -v wloss="$wloss" -v wppsc="$wppsc" -v setup_ms="$setup_ms" \
  -v route_b="$route_b" -v rule_b="$rule_b" -v link_b="$link_b" '
# v formats x, or says the benchmark gave no figure.
function v(fmt, x) { return x == "" ? "(no result)" : sprintf(fmt, x) }
# r formats a / b.
function r(fmt, a, b) { return a == "" || b == "" || b + 0 == 0 ? "" : sprintf(fmt, a / b) }
BEGIN {
  f = "%-42s %14s   %-26s %s\n"
  printf f, "measure", "value", "reference", "ratio"
  printf f, "-------", "-----", "---------", "-----"
  printf f, "link Seal+Open 1280 B, 1 core", v("%.1f MB/s", seal), v("raw AEAD %.1f MB/s", raw), r("%.2f (goal >= 0.70)", seal, raw)
  hs = hs_ns == "" ? "" : 1e9 / hs_ns
  dh = dh_ns == "" ? "" : 1e9 / dh_ns
  printf f, "handshakes/s, both sides, 1 core", v("%.0f /s", hs), v("ECDH %.0f /s", dh), r("%.3f", hs, dh) r(" = %.1f ECDH per handshake", dh, hs)
  printf f, "3-hop UDP forwarding, one stream", v("%.1f MB/s", fwd_mbs), v("%.2f cores busy", fwd_cores), ""
  printf f, "3-hop UDP, 1280 B datagrams, open loop", v("%.0f pkts/s", pps), v("loss %.1f%%", loss == "" ? "" : 100 * loss), v("%.0f pkts/s/core", ppsc)
  printf f, "3-hop UDP, 1280 B datagrams, window 128", v("%.0f pkts/s", wpps), v("loss %.1f%%", wloss == "" ? "" : 100 * wloss), v("%.0f pkts/s/core", wppsc)
  printf f, "route setup, 4 hops x 20 ms", v("%.0f ms", setup_ms), "ideal 160 ms", r("%.2f x ideal", setup_ms, 160)
  printf f, "heap per route, 10,000 routes A-B-C", v("%.0f B", route_b), "rules at A, B, C + route", ""
  printf f, "  of it the transit rule at B", v("%.0f B", rule_b), (rule_b != "" && (rule_b < 64 || rule_b > 1e6) ? "implausible" : ""), ""
  printf f, "heap per link, 1,000 links on one node", v("%.0f B", link_b), "neighbour, queues, session", ""
  print ""
  print "pkts/s/core: delivered datagrams per CPU-second of the whole process (getrusage), i.e. all"
  print "4 routers plus sender and receiver: each datagram is sealed and opened on 3 links and once"
  print "end to end. Open loop: the source sends as fast as its first link takes datagrams, and the"
  print "hops behind it drop what their queues cannot hold; window 128: at most 128 in flight."
}'
echo
echo "forwarding detail (the measured run; go test first runs the benchmark once with b.N = 1):"
grep 'packets, ' "$work/fwd.txt" | tail -n 2 | sed 's/^ *bench_udp_test.go:[0-9]*: /  /'
for name in "${failed[@]}"; do
  echo
  echo "FAILED ($name):"
  grep -E -- '--- FAIL|_test.go:[0-9]+:|^FAIL|panic' "$work/$name.txt" | grep -v 'packets, ' || cat "$work/$name.txt"
done
[ ${#failed[@]} -eq 0 ]
