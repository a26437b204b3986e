#!/usr/bin/env bash
# Prints the verdict blocks quoted in docs/results.md: each target's optimized
# and portable candidates (expected keep), its baseline (the oracle's source
# rebuilt: near 1, up to code layout), a byte-identical copy of its oracle
# (never keep) and its wrong fixture (incorrect), with default settings. Run
# from the repository root after scripts/build.sh.
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
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
copy() { # a byte-identical copy of target $1's oracle, under another name
  cp "${KB_BUILD:-build}/oracles/$1/oracle.so" "$tmp/$1-oracle-copy.so" && echo "$tmp/$1-oracle-copy.so"
}
for c in avx512 portable baseline; do run "${KB_BUILD:-build}/plugins/pq-l2/$c.so"; done
run "$(copy pq-l2)"
for c in avx512 portable baseline; do run "${KB_BUILD:-build}/plugins/posting-intersect/$c.so"; done
run "$(copy posting-intersect)"
run "${KB_BUILD:-build}/tests/fixtures/fx_wrong_pq.so" --cases all
run "${KB_BUILD:-build}/tests/fixtures/fx_wrong_pi.so" --cases all
