#!/usr/bin/env bash
# power.sh -- does kbench call a real difference? (docs/measurement.md,
# "Power"). Per target, four comparisons, each decided N times:
#
#   slower 3%:  fx_<t>_slow3.so against the oracle, --budget 4  right: discard
#   faster 3%:  a copy of the oracle against fx_<t>_slow3.so,
#               --budget 4                                      right: keep
#   slower 10%: fx_<t>_slow10.so against the oracle, default 2 s right: discard
#   faster 10%: a copy of the oracle against fx_<t>_slow10.so   right: keep
#
# Goals: >= 80% right at 3% within 4 s, >= 99% at 10% within 2 s. Printed:
# each rate with its Wilson 95% CI, the statuses, the mean trial_seconds
# (time to decision) and the mean geomean ratio kbench measured (how large
# the difference looked).
#
#   scripts/power.sh [N]          N trials per comparison (default 100)
#   scripts/power.sh --quick N    the same (for CI)
#   options: --target T (repeatable; default both), --log DIR
#
# The four comparisons take turns, trial by trial, so the machine's load
# drifts over all of them alike. Unless KBENCH_STATE_DIR is set, it first
# runs `kbench calibrate` into a fresh state dir.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh

n=100 targets=() logdir=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) n=$2; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --log) logdir=$2; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    [0-9]*) n=$1; shift ;;
    *) echo "power.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(pq-l2 posting-intersect)
meas_need_build

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "$logdir" ] && mkdir -p "$logdir"
logdir=${logdir:-$tmp}

echo "power: $n trials per comparison; $(meas_load)"
meas_calibrate "$tmp"
for t in "${targets[@]}"; do
  fx=$KB_BUILD/tests/fixtures/fx_${t//-/_}
  copy=$tmp/$t-oracle-copy.so
  cp "$KB_BUILD/oracles/$t/oracle.so" "$copy"
  for f in "$fx"_slow3.so "$fx"_slow10.so; do
    [ -f "$f" ] || { echo "power.sh: $f not built (tests/fixtures/power)" >&2; exit 2; }
  done
  names=(slower3 faster3 slower10 faster10)
  want=(discard keep discard keep)
  for name in "${names[@]}"; do : > "$logdir/power-$t-$name.tsv"; done
  start=$(date +%s)
  for ((i = 1; i <= n; i++)); do
    meas_trial "$logdir/power-$t-slower3.tsv" "$fx"_slow3.so --budget 4
    meas_trial "$logdir/power-$t-faster3.tsv" "$copy" --against "$fx"_slow3.so --budget 4
    meas_trial "$logdir/power-$t-slower10.tsv" "$fx"_slow10.so
    meas_trial "$logdir/power-$t-faster10.tsv" "$copy" --against "$fx"_slow10.so
  done
  echo "target: $t ($(( $(date +%s) - start )) s; $(meas_load))"
  for j in 0 1 2 3; do
    log=$logdir/power-$t-${names[j]}.tsv
    right=$(meas_count "$log" "${want[j]}")
    case ${names[j]} in *3) goal=80 ;; *) goal=99 ;; esac
    printf '  %-9s right (%s): %s  goal >= %s%%\n' "${names[j]}" "${want[j]}" \
      "$(meas_wilson "$right" "$n")" "$goal"
    printf '            geomean ratio seen (geometric mean over trials) %s; %s\n' \
      "$(meas_seen "$log")" "$(meas_summary "$log")"
  done
done
