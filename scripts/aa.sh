#!/usr/bin/env bash
# aa.sh -- false keeps: A/A trials, the oracle against a byte-identical copy
# of itself, on each target (docs/measurement.md, "False keeps").
#
#   scripts/aa.sh [N]            N trials per target (default 200)
#   scripts/aa.sh --quick N      the same with N trials (for CI)
#   options: --target T (repeatable; default both), --budget S (default:
#            kbench's own), --log DIR (keep the per-trial lines there)
#
# Unless KBENCH_STATE_DIR is set, it first runs `kbench calibrate` into a
# fresh state dir, so the verdicts carry a noise floor as a user's would.
# A copy has another path and another snapshot, so kbench runs it like any
# candidate, in its own worker, against the oracle in another. Nothing can
# be faster than itself, so every keep is a false keep; discard ("not a
# win") and inconclusive are both right answers. Goal: keep rate <= 1%.
# Trials run one after another: two at once would share the workers' CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh

n=200 targets=() budget=() logdir=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) n=$2; shift 2 ;;
    --target) targets+=("$2"); shift 2 ;;
    --budget) budget=(--budget "$2"); shift 2 ;;
    --log) logdir=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    [0-9]*) n=$1; shift ;;
    *) echo "aa.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=(pq-l2 posting-intersect)
meas_need_build

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -n "$logdir" ] && mkdir -p "$logdir"

echo "A/A: $n trials per target, ${budget[*]:-default budget}; $(meas_load)"
meas_calibrate "$tmp"
for t in "${targets[@]}"; do
  oracle=$KB_BUILD/oracles/$t/oracle.so
  copy=$tmp/$t-oracle-copy.so
  cp "$oracle" "$copy"
  cmp -s "$oracle" "$copy" || { echo "aa.sh: copy of $oracle differs" >&2; exit 1; }
  log=${logdir:+$logdir/aa-$t.tsv}
  log=${log:-$tmp/aa-$t.tsv}
  : > "$log"
  start=$(date +%s)
  for ((i = 1; i <= n; i++)); do
    meas_trial "$log" "$copy" "${budget[@]}"
  done
  keeps=$(meas_count "$log" keep)
  echo "target: $t ($(( $(date +%s) - start )) s; $(meas_load))"
  echo "  false keep rate: $(meas_wilson "$keeps" "$n")  goal <= 1%"
  echo "  $(meas_summary "$log")"
done
