#!/usr/bin/env bash
# Reports every oracle's pin state: are oracles/<target>/'s sources still the
# ones recorded in oracles/<target>/PIN (XXH3-64 per file) and where was it
# ported from. Exit 0 when every oracle matches its pin, 1 when one drifted.
#
#   scripts/check-oracle-drift.sh                   report every oracle
#   scripts/check-oracle-drift.sh --update T [UP]   re-pin oracle T after an intended
#                                                   change (UP: new upstream text)
#
# Needs only a C compiler and libxxhash: the checker (host/core/pin.c) is compiled
# on the spot, the same code the build and `kbench list` use.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cc -O2 -std=c11 -DKB_PIN_TOOL -D_GNU_SOURCE "$root/host/core/pin.c" -o "$tmp/kbench_pin" -lxxhash

if [ "${1:-}" = "--update" ]; then
  [ $# -ge 2 ] || { echo "usage: $0 --update TARGET [UPSTREAM]" >&2; exit 64; }
  d="$root/oracles/$2"
  [ -d "$d" ] || { echo "$0: no oracle directory $d" >&2; exit 64; }
  if [ $# -ge 3 ]; then "$tmp/kbench_pin" update "$d" "$3"; else "$tmp/kbench_pin" update "$d"; fi
  exit 0
fi
[ $# -eq 0 ] || { echo "usage: $0 [--update TARGET [UPSTREAM]]" >&2; exit 64; }

drift=0
for d in "$root"/oracles/*/; do
  d="${d%/}"
  t="$(basename "$d")"
  [ -f "$d/CMakeLists.txt" ] || continue
  upstream="$(sed -n 's/^upstream\t//p' "$d/PIN" 2>/dev/null || true)"
  files="$(grep -c '^xxh3' "$d/PIN" 2>/dev/null || true)"
  if msg="$("$tmp/kbench_pin" check "$d" 2>&1)"; then
    printf '%-20s pinned   %s file(s); upstream: %s\n' "$t" "$files" "${upstream:-?}"
  else
    printf '%-20s DRIFTED  %s\n' "$t" "${msg#kbench pin: }"
    drift=1
  fi
done
exit $drift
