#!/usr/bin/env bash
# spread.sh -- does a trial's interval cover what other trials of the same
# pair measure? (docs/measurement.md, "Spread across trials"). Each trial
# draws a new seed (new inputs) and meets a different machine state, which
# the bootstrap inside one trial does not see. Per target, fixed pairs are
# each trialled N times, taking turns:
#
#   same:    a byte copy of the oracle against the oracle
#   slow3:   fx_<t>_slow3.so (about 3% more work) against the oracle
#   slow10:  fx_<t>_slow10.so (about 10% more work) against the oracle
#   best:    the best variant `kbench pick` names for this CPU, against the oracle
#
# For each pair it prints the median of the N geomean ratios, their spread
# (the ratio of the 90th to the 10th percentile), and the coverage: how
# many trials' 90% interval [ci90_low, ci90_high] holds that median, and
# how many the interval from the trial's own pairs alone held
# ([trial_ci90_low, trial_ci90_high], before the between-trial component
# is added). An interval that sees every source of spread covers it in
# about 90% of trials.
#
#   scripts/spread.sh [N]            N trials per pair (default 30)
#   options: --target T (repeatable; default both), --load (two busy loops
#            beside the trials, one per CPU), --budget S, --log DIR
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh

n=30 targets=() logdir="" load=0 budget=""
while [ $# -gt 0 ]; do
  case $1 in
    --target) targets+=("$2"); shift 2 ;;
    --load) load=1; shift ;;
    --budget) budget=$2; shift 2 ;;
    --log) logdir=$2; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    [0-9]*) n=$1; shift ;;
    *) echo "spread.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(pq-l2 posting-intersect)
meas_need_build

tmp=$(mktemp -d)
busy=()
cleanup() {
  for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
[ -n "$logdir" ] && mkdir -p "$logdir"
logdir=${logdir:-$tmp}
if [ $load -eq 1 ]; then
  for ((c = 0; c < $(nproc); c++)); do
    (while :; do :; done) &
    busy+=($!)
  done
fi

# coverage LOG: median, p10..p90 spread and coverage of the median.
coverage() {
  awk -F'\t' '
    $3 != "n/a" && $4 != "n/a" { g[++m] = $3; lo[m] = $4; hi[m] = $5; tlo[m] = $10; thi[m] = $11 }
    END {
      if (m == 0) { print "no timed trials"; exit }
      for (i = 1; i <= m; i++) s[i] = g[i]
      for (i = 2; i <= m; i++) { x = s[i]; j = i - 1
        while (j > 0 && s[j] > x) { s[j + 1] = s[j]; j-- } s[j + 1] = x }
      med = m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
      p10 = s[int(0.1 * (m - 1)) + 1]; p90 = s[int(0.9 * (m - 1) + 0.5) + 1]
      for (i = 1; i <= m; i++) {
        c += lo[i] <= med && med <= hi[i]; w += hi[i] / lo[i]
        if (tlo[i] != "n/a" && tlo[i] != "") {
          tm++; tc += tlo[i] <= med && med <= thi[i]; tw += thi[i] / tlo[i]
        }
      }
      printf "median %.4f, p90/p10 %.4f, mean CI width (hi/lo) %.4f, covered %d/%d = %.0f%%",
             med, p90 / p10, w / m, c, m, 100 * c / m
      if (tm) printf "; this trial alone: width %.4f, covered %d/%d = %.0f%%", tw / tm, tc, tm, 100 * tc / tm
      printf "\n"
    }' "$1"
}

echo "spread: $n trials per pair; load beside: $([ $load -eq 1 ] && echo "$(nproc) busy loops" || echo none); $(meas_load)"
meas_calibrate "$tmp"
extra=()
[ -n "$budget" ] && extra=(--budget "$budget")
for t in "${targets[@]}"; do
  fx=$KB_BUILD/tests/fixtures/fx_${t//-/_}
  copy=$tmp/$t-oracle-copy.so
  cp "$KB_BUILD/oracles/$t/oracle.so" "$copy"
  best=$("$KBENCH" pick "$KB_BUILD"/plugins/"$t"/*.so 2>/dev/null | sed -n 's/^best: //p' || true)
  names=(same slow3 slow10)
  cands=("$copy" "$fx"_slow3.so "$fx"_slow10.so)
  if [ -n "$best" ] && [ -f "$best" ]; then names+=(best); cands+=("$best"); fi
  for name in "${names[@]}"; do : > "$logdir/spread-$t-$name.tsv"; done
  start=$(date +%s)
  for ((i = 1; i <= n; i++)); do
    for j in "${!names[@]}"; do
      meas_trial "$logdir/spread-$t-${names[j]}.tsv" "${cands[j]}" "${extra[@]}"
    done
  done
  echo "target: $t ($(( $(date +%s) - start )) s; $(meas_load))"
  for j in "${!names[@]}"; do
    printf '  %-7s %s\n' "${names[j]}" "$(coverage "$logdir/spread-$t-${names[j]}.tsv")"
    printf '          %s\n' "$(meas_summary "$logdir/spread-$t-${names[j]}.tsv")"
  done
done
