#!/usr/bin/env bash
# Runs every Go fuzz target in the tree within one fixed total time budget.
#
#   scripts/fuzz.sh [BUDGET [PACKAGES...]]
#
# BUDGET: 10m, 90s, 1h30m, ... (default 5m). PACKAGES: go list patterns (default ./...).
#
# The budget is wall time for the whole stage, shared by all targets: each target in
# turn gets what is left of the budget divided by the targets still to run, so
# compiling and the baseline coverage run count against the budget too, and the stage
# ends near BUDGET however many targets the tree grows to. No target gets less than
# FUZZFLOOR of fuzzing (default 10s); when targets x FUZZFLOOR no longer fits, the
# stage runs over and says so, which is the cue to raise the budget.
#
# Every run goes through bin/testcheck (internal/testcheck), like the other tiers:
# a skipped fuzz target fails in CI unless it is on .ci/allowed-skips.
#
# A target fails when the fuzzer finds an input that breaks it: Go then writes the
# input under testdata/fuzz/ and says "Failing input written". Go 1.26's fuzzing
# coordinator can also end a run with a bare "context deadline exceeded" at the
# -fuzztime boundary, with no input found (golang/go#75804, fixed in Go 1.27): that
# run is repeated once, with a share of the budget left like any other run, so the
# repeat is inside the budget; only a repeat that fails the same way is let through,
# with a warning. Anything else non-zero fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
TESTCHECK=${TESTCHECK:-bin/testcheck}

# secs DURATION: whole seconds in a Go-style duration of h, m and s parts.
secs() {
  local d=$1 total=0 n unit
  [[ $d =~ ^([0-9]+[hms])+$ ]] || { echo "fuzz.sh: bad duration $d (want e.g. 10m, 90s, 1h30m)" >&2; exit 2; }
  while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
    n=$((10#${BASH_REMATCH[1]})) unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
    case $unit in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
  done
  echo "$total"
}
# dur SECONDS: 1h2m3s-style text.
dur() {
  local s=$1 out=""
  [ "$s" -ge 3600 ] && out="$((s / 3600))h" && s=$((s % 3600))
  { [ -n "$out" ] || [ "$s" -ge 60 ]; } && out="$out$((s / 60))m" && s=$((s % 60))
  echo "$out${s}s"
}

budget=$(secs "${1:-5m}")
shift || true
[ $# -gt 0 ] || set -- ./...
floor=$(secs "${FUZZFLOOR:-10s}")
[ -x "$TESTCHECK" ] || "$GO" build -o "$TESTCHECK" ./internal/testcheck/cmd/testcheck
TESTCHECK=$(realpath "$TESTCHECK")
ALLOW=$PWD/.ci/allowed-skips

targets=()
for pkg in $("$GO" list "$@"); do
  dir=$("$GO" list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //'); do
    targets+=("$pkg $f")
  done
done
n=${#targets[@]}
if [ "$n" -eq 0 ]; then
  echo "fuzz.sh: no fuzz targets found" >&2
  exit 1
fi
echo "fuzz.sh: $n targets share a budget of $(dur "$budget") (at least $(dur "$floor") of fuzzing each)"

start=$(date +%s)
flaked=0
last_out=""
# Each package's test binary is built once, instrumented for fuzzing (go test -c
# -fuzz), and run once per target: a go test -fuzz per target would compile and
# link it again each time, which took two thirds of the stage (15 minutes for 73
# targets with 4 s of fuzzing each).
bins=$(mktemp -d)
trap 'rm -rf "$bins"' EXIT
cache=$("$GO" env GOCACHE)/fuzz
# binary pkg -> prints the path of pkg's instrumented test binary, building it
# the first time.
binary() {
  local pkg=$1 bin
  bin="$bins/$(tr '/.' '__' <<<"$pkg").test"
  if [ ! -x "$bin" ]; then
    "$GO" test -c -fuzz . -o "$bin" "$pkg" >&2 || return 1
  fi
  echo "$bin"
}
# run pkg target i -> 0 ok, 1 real failure, 2 coordinator deadline race. i is the
# index of the target, for its share of the budget left.
run() {
  local pkg=$1 f=$2 i=$3 rc=0 left share t0
  left=$((budget - ($(date +%s) - start)))
  share=$((left / (n - i)))
  [ "$share" -lt "$floor" ] && share=$floor
  t0=$(date +%s)
  echo "== [$((i + 1))/$n] $pkg $f: fuzzing $(dur "$share") ($(dur $((left > 0 ? left : 0))) of the budget left for $((n - i)) targets)"
  local bin dir
  if ! bin=$(binary "$pkg"); then
    last_out="fuzz.sh: building the fuzz test binary of $pkg failed"
    return 1
  fi
  dir=$("$GO" list -f '{{.Dir}}' "$pkg")
  # In the package's directory, as go test runs it (testdata/fuzz holds the
  # seed corpus), with go test's cache of interesting inputs; test2json gives
  # testcheck the events go test -json would.
  last_out=$(cd "$dir" && "$TESTCHECK" -allow "$ALLOW" -- "$GO" tool test2json -t -p "$pkg" "$bin" -test.v=test2json -test.run '^$' -test.fuzz "^$f\$" -test.fuzztime "${share}s" -test.fuzzcachedir "$cache/$pkg" 2>&1) || rc=$?
  echo "   $f took $(dur $(($(date +%s) - t0)))"
  [ $rc -eq 0 ] && return 0
  if ! grep -q 'Failing input written' <<<"$last_out" && grep -q 'context deadline exceeded' <<<"$last_out"; then
    return 2
  fi
  return 1
}
for i in "${!targets[@]}"; do
  read -r pkg f <<<"${targets[$i]}"
  rc=0; run "$pkg" "$f" "$i" || rc=$?
  if [ $rc -eq 2 ]; then
    echo "fuzz.sh: $f ended on Go's fuzztime deadline race with no failing input; running it again"
    rc=0; run "$pkg" "$f" "$i" || rc=$?
    if [ $rc -eq 2 ]; then
      printf '%s\n' "$last_out"
      echo "fuzz.sh: WARNING: $f hit the deadline race twice, still with no failing input"
      flaked=$((flaked + 1)); rc=0
    fi
  fi
  if [ $rc -ne 0 ]; then
    printf '%s\n' "$last_out"
    echo "fuzz.sh: $pkg $f FAILED"
    exit 1
  fi
done
took=$(($(date +%s) - start))
over=""
[ "$took" -gt $((budget + budget / 10 + 30)) ] && over=" (OVER the budget: $n targets x $(dur "$floor") floor plus build time no longer fit; raise FUZZBUDGET)"
echo "fuzz.sh: every target passed: $n targets in $(dur "$took") of a $(dur "$budget") budget$over ($flaked deadline-race repeats let through)"
