#!/usr/bin/env bash
# measure-smoke.sh -- the short version of scripts/aa.sh and
# scripts/power.sh (docs/measurement.md), in the measurement suite
# (ctest label measure, scripts/measure.sh). Per target: A A/A trials (default
# 10) and P trials (default 5) of each power comparison (slower and faster
# by 3% with --budget 4, by 10% with the default budget). Prints the
# figures; fails (exit 1) only on a false keep: an A/A trial kept, or a
# slower variant kept. Nothing here asserts a rate or a duration: a short
# run on a shared machine cannot show either, and a CI that fails on a
# busy neighbour teaches people to ignore it.
#
#   scripts/measure-smoke.sh [--aa A] [--power P] [--target T]...
#
# Runs with an empty state dir (no noise floor), the setting with the
# fewest guards against false keeps, unless KBENCH_STATE_DIR is set.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh

aa=10 pw=5 targets=()
while [ $# -gt 0 ]; do
  case $1 in
    --aa) aa=$2; shift 2 ;;
    --power) pw=$2; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "measure-smoke.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(pq-l2 posting-intersect)
meas_need_build

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export KBENCH_STATE_DIR=${KBENCH_STATE_DIR:-$tmp/state}

echo "measure-smoke: $aa A/A and $pw trials per power comparison per target; $(meas_load)"
bad=0
for t in "${targets[@]}"; do
  fx=$KB_BUILD/tests/fixtures/fx_${t//-/_}
  copy=$tmp/$t-oracle-copy.so
  cp "$KB_BUILD/oracles/$t/oracle.so" "$copy"
  for ((i = 1; i <= aa; i++)); do meas_trial "$tmp/$t-aa.tsv" "$copy"; done
  for ((i = 1; i <= pw; i++)); do
    meas_trial "$tmp/$t-slower3.tsv" "$fx"_slow3.so --budget 4
    meas_trial "$tmp/$t-faster3.tsv" "$copy" --against "$fx"_slow3.so --budget 4
    meas_trial "$tmp/$t-slower10.tsv" "$fx"_slow10.so
    meas_trial "$tmp/$t-faster10.tsv" "$copy" --against "$fx"_slow10.so
  done
  echo "target: $t"
  k=$(meas_count "$tmp/$t-aa.tsv" keep)
  printf '  %-8s %-8s %s; %s\n' A/A keep: "$(meas_wilson "$k" "$aa")" \
    "$(meas_summary "$tmp/$t-aa.tsv")"
  [ "$k" -eq 0 ] || { echo "  FAIL: $k A/A trial(s) kept"; bad=1; }
  for c in slower3 faster3 slower10 faster10; do
    case $c in slower*) want=discard ;; *) want=keep ;; esac
    r=$(meas_count "$tmp/$t-$c.tsv" "$want")
    printf '  %-8s %-8s %s; %s\n' "$c" "$want:" "$(meas_wilson "$r" "$pw")" \
      "$(meas_summary "$tmp/$t-$c.tsv")"
    if [ "$want" = discard ]; then
      k=$(meas_count "$tmp/$t-$c.tsv" keep)
      if [ "$k" -ne 0 ]; then
        echo "  FAIL: the ${c#slower}% slower variant was kept $k time(s)"
        bad=1
      fi
    fi
  done
  # A trial that printed no verdict is a harness failure, not a figure.
  e=$(cat "$tmp/$t"-*.tsv | awk -F'\t' '$1 == "error" { n++ } END { print n + 0 }')
  [ "$e" -eq 0 ] || { echo "  FAIL: $e trial(s) printed no verdict"; bad=1; }
done
exit $bad
