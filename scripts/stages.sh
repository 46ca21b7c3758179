#!/usr/bin/env bash
# Runs `make test`'s stages in order and times them: a line when each stage starts,
# a line with its verdict and wall time when it ends, and a table of all stages with
# the total at the end, so a CI log shows at a glance where the time goes.
#
#   scripts/stages.sh NAME=TARGET...     (each stage runs `$MAKE TARGET`)
#
# A failing stage does not stop the later ones (one CI run reports every tier), except
# the first, which installs what the others need. The exit status is non-zero when
# any stage failed.
set -uo pipefail
MAKE=${MAKE:-make}

# dur SECONDS: 1h2m3s-style text.
dur() {
  local s=$1 out=""
  [ "$s" -ge 3600 ] && out="$((s / 3600))h" && s=$((s % 3600))
  { [ -n "$out" ] || [ "$s" -ge 60 ]; } && out="$out$((s / 60))m" && s=$((s % 60))
  echo "$out${s}s"
}

names=() verdicts=() times=()
start=$(date +%s)
failed=0
n=$#
i=0
for stage in "$@"; do
  i=$((i + 1))
  name=${stage%%=*} target=${stage#*=}
  echo "==> stage $i/$n $name (make $target) started $(date -u +%H:%M:%SZ)"
  t0=$(date +%s)
  if "$MAKE" --no-print-directory "$target"; then verdict=PASS; else verdict=FAIL; failed=$((failed + 1)); fi
  t=$(($(date +%s) - t0))
  echo "<== stage $i/$n $name: $verdict in $(dur "$t")"
  names+=("$name") verdicts+=("$verdict") times+=("$t")
  if [ "$verdict" = FAIL ] && [ "$i" = 1 ]; then
    echo "<== the first stage failed: the later ones need it, so they do not run"
    break
  fi
done

echo "==> stage times"
for j in "${!names[@]}"; do
  printf '    %-10s %-5s %8s\n' "${names[$j]}" "${verdicts[$j]}" "$(dur "${times[$j]}")"
done
for ((j = ${#names[@]}; j < n; j++)); do
  stage=${*:j+1:1}
  printf '    %-10s %-5s %8s\n' "${stage%%=*}" "-" "not run"
done
total=$(($(date +%s) - start))
if [ "$failed" -eq 0 ]; then
  printf '    %-10s %-5s %8s\n' total PASS "$(dur "$total")"
else
  printf '    %-10s %-5s %8s   (%d stage(s) failed)\n' total FAIL "$(dur "$total")" "$failed"
  exit 1
fi
