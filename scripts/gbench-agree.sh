#!/usr/bin/env bash
# gbench-agree.sh -- kbench's per-call time against Google Benchmark's on the
# same case of the pq-l2 oracle (docs/measurement.md, "Agreement with the
# standard tool"). Goal: the two ns/op agree within 2%.
#
#   scripts/gbench-agree.sh [--case NAME] [--reps N] [--trials N]
#
# Google Benchmark: tests/bench/gbench_pq.cpp (built by CMake where
# libbenchmark-dev is found, else compiled here), N repetitions (default
# 20); printed: median and stddev of real_time over repetitions, and the
# median cpu_time. kbench: N trials (default 5) of a byte-identical copy of
# the oracle against the oracle on that one case, --json; each gives two
# figures of the same code (cand_ns_per_call, base_ns_per_call); printed:
# their median, and their min and max. Both run on the CPU kbench puts its
# workers on (the last one allowed), one after the other. Needs jq.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh

case_name='n=65536,d=128,m=16/clustered' reps=20 trials=5
while [ $# -gt 0 ]; do
  case $1 in
    --case) case_name=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --trials) trials=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
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

echo "agreement on pq-l2 $case_name; $(meas_load)"
taskset -c "$cpu" "$gb" --oracle "$oracle" --case "$case_name" \
  --benchmark_repetitions="$reps" --benchmark_min_time=0.2 \
  --benchmark_format=json > "$tmp/gb.json" 2> "$tmp/gb.err" ||
  { cat "$tmp/gb.err" >&2; exit 1; }
gb_med=$(jq '[.benchmarks[] | select(.run_type == "iteration") | .real_time] | sort |
  if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end' "$tmp/gb.json")
gb_sd=$(jq '.benchmarks[] | select(.aggregate_name == "stddev") | .real_time' "$tmp/gb.json")
gb_cpu=$(jq '.benchmarks[] | select(.aggregate_name == "median") | .cpu_time' "$tmp/gb.json")

cp "$oracle" "$tmp/oracle-copy.so"
for ((i = 1; i <= trials; i++)); do
  "$KBENCH" trial "$tmp/oracle-copy.so" --cases "$case_name" --json > "$tmp/kb$i.json" || true
  jq -r '.kbench.cases[0] | "\(.cand_ns_per_call)\n\(.base_ns_per_call)"' "$tmp/kb$i.json" >> "$tmp/kb.txt"
  jq -r '.kbench | "  kbench trial \('"$i"'): \(.status), ratio \(.geomean_ratio) [\(.ci90_low), \(.ci90_high)], noise \(.noise_pct // "n/a")%"' "$tmp/kb$i.json"
done
read -r kb_med kb_min kb_max < <(sort -g "$tmp/kb.txt" | awk '{ v[++n] = $1 } END {
  m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2; print m, v[1], v[n] }')

printf 'google_benchmark_ns_per_op: %.0f (median of %d repetitions; stddev %.0f = %.1f%%; cpu_time %.0f)\n' \
  "$gb_med" "$reps" "$gb_sd" "$(awk -v a="$gb_sd" -v b="$gb_med" 'BEGIN { print 100 * a / b }')" "$gb_cpu"
printf 'kbench_ns_per_call: %.0f (median of %d figures from %d trials; min %.0f, max %.0f)\n' \
  "$kb_med" "$(wc -l < "$tmp/kb.txt")" "$trials" "$kb_min" "$kb_max"
awk -v k="$kb_med" -v g="$gb_med" 'BEGIN {
  d = 100 * (k / g - 1); a = d < 0 ? -d : d
  printf "difference: kbench/gbench - 1 = %+.2f%%: %s (goal: within 2%%)\n", d, a <= 2 ? "agree" : "DISAGREE" }'
