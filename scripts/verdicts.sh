#!/usr/bin/env bash
# Prints the verdict blocks quoted in docs/results.md: each target's optimized
# and portable candidates (expected keep), its baseline (never keep) and its
# wrong fixture (incorrect), with default settings. Run from the repository
# root after scripts/build.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
kb=${KB_BUILD:-build}/kbench
run() {
  echo "\$ $kb trial $*"
  "$kb" trial "$@"
  echo "(exit $?)"
  echo
}
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
for c in avx512 portable baseline; do run "${KB_BUILD:-build}/plugins/pq-l2/$c.so"; done
for c in simd portable baseline; do run "${KB_BUILD:-build}/plugins/posting-intersect/$c.so"; done
run "${KB_BUILD:-build}/tests/fixtures/fx_wrong_pq.so" --cases all
run "${KB_BUILD:-build}/tests/fixtures/fx_wrong_pi.so" --cases all
