#!/usr/bin/env bash
# gbench-agree.sh -- kbench's per-call time against Google Benchmark's on the
# same case of the pq-l2 oracle (docs/measurement.md, "Agreement with the
# standard tool"). Goal: the two ns/op agree within 2%.
#
#   scripts/gbench-agree.sh [--case NAME] [--reps N] [--trials N] [--gb-sets N]
#
# Google Benchmark: tests/bench/gbench_pq.cpp (built by CMake where
# libbenchmark-dev is found, else compiled here), about N repetitions in
# all (default 36); printed: median and stddev of real_time over the
# repetitions, and the median cpu_time. kbench: N trials (default 9) of a
# byte-identical copy of the oracle against the oracle on that one case,
# --json; each gives two figures of the same code (cand_ns_per_call,
# base_ns_per_call); printed: their median, min and max. The two tools take
# turns (a share of the repetitions, then one trial), Google Benchmark on
# the CPU kbench puts its workers on (the last one allowed). --gb-sets N:
# Google Benchmark cycles through the first N of the case's 16 input sets.
# Default 1: each call finds its inputs in cache, which is what kbench
# times for a warm target whose batch's sets fit in L2, as this case's do
# (it reads them in before the clock); with 16 each call reads a set from
# beyond L2, which kbench does not time for a warm target. Needs jq.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh

case_name='n=65536,d=128,m=16/clustered' reps=36 trials=9 gb_sets=1
while [ $# -gt 0 ]; do
  case $1 in
    --case) case_name=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --trials) trials=$2; shift 2 ;;
    --gb-sets) gb_sets=$2; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "gbench-agree.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
meas_need_build
command -v jq >/dev/null || { echo "gbench-agree.sh: needs jq (apt-get install jq)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gb=$KB_BUILD/gbench_pq
if [ ! -x "$gb" ]; then
  gb=$tmp/gbench_pq
  ${CXX:-c++} -O2 -std=c++17 -I abi tests/bench/gbench_pq.cpp -o "$gb" -lbenchmark -lpthread -ldl ||
    { echo "gbench-agree.sh: cannot build gbench_pq (libbenchmark-dev installed?)" >&2; exit 2; }
fi
oracle=$KB_BUILD/oracles/pq-l2/oracle.so
cpu=$(taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' | sed 's/.*-//' | sort -n | tail -1)

echo "agreement on pq-l2 $case_name; Google Benchmark cycling $gb_sets input sets; $(meas_load)"
# Rounds of Google Benchmark repetitions and one kbench trial, in turn, so
# the machine's drift over the run hits both tools alike.
cp "$oracle" "$tmp/oracle-copy.so"
per=$(( (reps + trials - 1) / trials ))
for ((i = 1; i <= trials; i++)); do
  taskset -c "$cpu" "$gb" --oracle "$oracle" --case "$case_name" --sets "$gb_sets" \
    --benchmark_repetitions="$per" --benchmark_min_time=0.2 \
    --benchmark_format=json > "$tmp/gb$i.json" 2> "$tmp/gb.err" ||
    { cat "$tmp/gb.err" >&2; exit 1; }
  jq '.benchmarks[] | select(.run_type == "iteration") | .real_time, .cpu_time' "$tmp/gb$i.json" |
    paste - - >> "$tmp/gb.txt"
  "$KBENCH" trial "$tmp/oracle-copy.so" --cases "$case_name" --json > "$tmp/kb$i.json" || true
  # Untimed verdicts (rejected, ...) have no per-call figures: none kept.
  jq '.kbench.cases[0] // empty | .cand_ns_per_call, .base_ns_per_call | numbers' \
    "$tmp/kb$i.json" >> "$tmp/kb.txt"
  jq -r --arg i "$i" '.kbench | "  kbench trial \($i): \(.status), ratio \(.geomean_ratio) "
    + "[\(.ci90_low), \(.ci90_high)], noise \(.noise_pct // "n/a")%"
    + (if .geomean_ratio == null then " (\(.reason))" else "" end)' "$tmp/kb$i.json"
done
# median, sample stddev, and the median of the second column (cpu_time)
read -r gb_med gb_sd gb_cpu < <(sort -g "$tmp/gb.txt" | awk '
  { v[++n] = $1; s += $1; q += $1 * $1; c[n] = $2 }
  END {
    m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    for (i = 2; i <= n; i++) {   # insertion sort: mawk has no asort
      x = c[i]; j = i - 1
      while (j > 0 && c[j] > x) { c[j + 1] = c[j]; j-- }
      c[j + 1] = x
    }
    mc = n % 2 ? c[(n + 1) / 2] : (c[n / 2] + c[n / 2 + 1]) / 2
    print m, (n > 1 ? sqrt((q - s * s / n) / (n - 1)) : 0), mc }')
reps=$(wc -l < "$tmp/gb.txt")
[ -s "$tmp/kb.txt" ] || { echo "gbench-agree.sh: no kbench trial was timed" >&2; exit 1; }
read -r kb_med kb_min kb_max < <(sort -g "$tmp/kb.txt" | awk '{ v[++n] = $1 } END {
  m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2; print m, v[1], v[n] }')

gb_pct=$(awk -v a="$gb_sd" -v b="$gb_med" 'BEGIN { print 100 * a / b }')
printf 'google_benchmark_ns_per_op: %.0f (median of %d repetitions; stddev %.0f = %.1f%%; ' \
  "$gb_med" "$reps" "$gb_sd" "$gb_pct"
printf 'cpu_time %.0f)\n' "$gb_cpu"
printf 'kbench_ns_per_call: %.0f (median of %d figures from %d trials; min %.0f, max %.0f)\n' \
  "$kb_med" "$(wc -l < "$tmp/kb.txt")" "$trials" "$kb_min" "$kb_max"
awk -v k="$kb_med" -v g="$gb_med" 'BEGIN {
  d = 100 * (k / g - 1); a = d < 0 ? -d : d
  printf "difference: kbench/gbench - 1 = %+.2f%%: %s (goal: within 2%%)\n", d,
         a <= 2 ? "agree" : "DISAGREE" }'
