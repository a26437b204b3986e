#!/usr/bin/env bash
# fx-slowdown.sh -- how much slower the power fixtures really are than the
# oracle, measured without kbench (scripts/fxratio.c: one process, one
# pinned CPU, ABBA batches of 3 ms), for docs/measurement.md "The fixtures".
# Goals: *_same 1.000, *_slow3 1.030 +- 0.005, *_slow10 1.10 +- 0.01.
#
#   scripts/fx-slowdown.sh [SECONDS_PER_CASE]   (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh
secs=${1:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -I abi scripts/fxratio.c -o "$tmp/fxratio" -ldl -lm
# The fixtures' run must be the oracle's instructions at the oracle's
# address modulo 64 (tests/fixtures/power/fx_*.h): a compiler that lays them
# out otherwise changes their speed by more than the slowdowns measured here.
layout() { # FILE SYMBOL: the function's instructions, addresses taken mod 64
  objdump -d --no-show-raw-insn "$1" | perl -ne '
    if (/^[0-9a-f]+ <\Q'"$2"'\E>:/) { $in = 1; next }
    if ($in && /^\s*$/) { $in = 0; next }  # read to the end: no SIGPIPE
    if ($in && /^\s*([0-9a-f]+):\s*(.*)$/) {
      my ($a, $i) = (hex($1) % 64, $2);
      $i =~ s/[0-9a-f]{3,} <.*//; $i =~ s/0x[0-9a-f]+\(%rip\).*//;
      print "$a $i\n" }'
}
for t in pq-l2 posting-intersect; do
  sym=pq_run; [ "$t" = pq-l2 ] || sym=pi__run
  ref=$(layout "$KB_BUILD/oracles/$t/oracle.so" "$sym" | md5sum)
  for v in same slow3 slow10; do
    f=$KB_BUILD/tests/fixtures/fx_${t//-/_}_$v.so
    if [ "$(layout "$f" "$sym" | md5sum)" = "$ref" ]; then r="the oracle's"; else r="DIFFERENT"; fi
    echo "layout of $sym in $(basename "$f"): $r"
  done
done
echo "fixture slowdowns, $secs s per case; $(meas_load)"
for t in pq-l2 posting-intersect; do
  o=$KB_BUILD/oracles/$t/oracle.so fx=$KB_BUILD/tests/fixtures/fx_${t//-/_}
  "$tmp/fxratio" -t "$secs" "$o" "$o" "$fx"_same.so "$fx"_slow3.so "$fx"_slow10.so |
    sed "s|$KB_BUILD/||"
done
echo "(after: $(meas_load))"
