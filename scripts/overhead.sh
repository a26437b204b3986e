#!/usr/bin/env bash
# overhead.sh -- builds scripts/overhead.c and runs it on the empty and the
# 1 us kernel of tests/fixtures/power (docs/measurement.md, "Overhead"):
# the clock's resolution and cost, the harness loop's cost per call, and a
# host-timed batch's round trip. Goal: overhead below 0.1% of a 1 us call.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh
fx=$KB_BUILD/tests/fixtures
for f in "$fx"/fx_kernel_empty.so "$fx"/fx_kernel_1us.so; do
  [ -f "$f" ] || { echo "overhead.sh: $f not built (tests/fixtures/power)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -I abi -I host scripts/overhead.c -o "$tmp/overhead" -ldl
echo "overhead: $(meas_load)"
"$tmp/overhead" "$fx"/fx_kernel_empty.so "$fx"/fx_kernel_1us.so
