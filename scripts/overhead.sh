#!/usr/bin/env bash
# overhead.sh -- builds scripts/overhead.c and runs it on the empty and the
# 1 us kernel of tests/fixtures/power (docs/measurement.md, "Overhead"):
# the clock's resolution and cost, the harness loop's cost per call, and a
# host-timed batch's round trip; then N A/A kbench trials per target
# (default 5) for the same fixed cost inside the real worker, what kbench
# subtracts and what is left. Goal: overhead below 0.1% of a 1 us call.
#
#   scripts/overhead.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh
trials=${1:-5}
case $trials in ''|*[!0-9]*) echo "usage: scripts/overhead.sh [TRIALS]" >&2; exit 64 ;; esac
meas_need_build
fx=$KB_BUILD/tests/fixtures
for f in "$fx"/fx_kernel_empty.so "$fx"/fx_kernel_1us.so; do
  [ -f "$f" ] || { echo "overhead.sh: $f not built (tests/fixtures/power)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -I abi -I host/sandbox scripts/overhead.c -o "$tmp/overhead" -ldl
echo "overhead: $(meas_load)"
out=$("$tmp/overhead" "$fx"/fx_kernel_empty.so "$fx"/fx_kernel_1us.so)
echo "$out"

# ---- the same fixed cost inside real kbench trials ----
# overhead.c replays a batch's two sends; here the worker itself is timed:
# A/A trials (each oracle against a byte-identical copy), whose JSON gives,
# per case, both sides' median gap (stamped interval minus the worker's
# reading: the harness inside a batch) and what kbench subtracted from every
# batch of both (the smaller median). What stays in a ratio is the
# difference of the two sides' gaps.
command -v jq >/dev/null || { echo "overhead.sh: needs jq for the trial part (apt-get install jq)" >&2; exit 2; }
for t in pq-l2 posting-intersect; do
  cp "$KB_BUILD/oracles/$t/oracle.so" "$tmp/$t-copy.so"
  for ((i = 1; i <= trials; i++)); do
    "$KBENCH" trial "$tmp/$t-copy.so" --json > "$tmp/$t-$i.json" 2>/dev/null || true
    jq -r '.kbench.cases[]? | select(.batch_ns != null) |
      "\(.batch_ns) \(.cand_batch_gap_ns) \(.base_batch_gap_ns) \(.batch_overhead_ns)"' \
      "$tmp/$t-$i.json" >> "$tmp/cases.txt"
  done
done
[ -s "$tmp/cases.txt" ] || { echo "overhead.sh: no kbench trial was timed" >&2; exit 1; }
loop=$(sed -n 's/^loop_ns_per_call: \([0-9.]*\).*/\1/p' <<< "$out")
one=$(sed -n 's/^one_us_kernel_ns_per_call: \([0-9.]*\).*/\1/p' <<< "$out")
awk -v loop="$loop" -v one="$one" -v trials="$trials" '
  function sort(a, n,   i, j, x) {   # insertion sort: mawk has no asort
    for (i = 2; i <= n; i++) { x = a[i]; j = i - 1
      while (j > 0 && a[j] > x) { a[j + 1] = a[j]; j-- } a[j + 1] = x } }
  function q(a, n, p) { return a[int(p * (n - 1)) + 1] }
  { n++; g[++m] = $2; g[++m] = $3; s[n] = $4; d = $2 - $3; r[n] = d < 0 ? -d : d
    rp[n] = 100 * r[n] / $1 }
  END {
    sort(g, m); sort(s, n); sort(r, n); sort(rp, n)
    printf "kbench_trials: %d A/A per target (pq-l2, posting-intersect), %d cases timed\n", trials, n
    printf "batch_gap_us: %.2f median, p10 %.2f, p90 %.2f (the harness inside a batch, both sides)\n",
      q(g, m, .5) / 1e3, q(g, m, .1) / 1e3, q(g, m, .9) / 1e3
    printf "batch_overhead_subtracted_us: %.2f median (p10 %.2f, p90 %.2f)\n",
      q(s, n, .5) / 1e3, q(s, n, .1) / 1e3, q(s, n, .9) / 1e3
    printf "batch_residual_us: %.2f median, p90 %.2f (|candidate gap - baseline gap|: what a ratio keeps)\n",
      q(r, n, .5) / 1e3, q(r, n, .9) / 1e3
    printf "batch_residual_pct_of_batch: %.4f median, p90 %.4f\n", q(rp, n, .5), q(rp, n, .9)
    # A 1 us kernel in a 3 ms batch: 3e6 / one calls share the fixed cost.
    calls = 3e6 / one; l = loop
    before = 100 * (l + q(g, m, .5) / calls) / one
    after = 100 * (l + q(r, n, .5) / calls) / one
    printf "harness_overhead_pct_of_1us_unsubtracted: %.4f (loop %.2f ns + the whole gap over %.0f calls)\n",
      before, l, calls
    printf "harness_overhead_pct_of_1us: %.4f (loop + residual per call, what stays in a ratio; goal < 0.1): %s\n",
      after, after < 0.1 ? "met" : "NOT met"
  }' "$tmp/cases.txt"
