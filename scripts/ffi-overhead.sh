#!/usr/bin/env bash
# ffi-overhead.sh -- the per-call cost of a foreign kernel (`kbench trial
# --foreign`, host/core/foreign.c) against a native plugin: builds
# scripts/ffi-overhead.c against the build's kbench_core and runs it on
# empty kernels of the pq-l2 shape, at 4 arguments (the four buffers) and
# at 7 (the buffers and the three case params), on this machine.
#   KB_BUILD=/tmp/build scripts/ffi-overhead.sh
# With KB_CALLGRIND=1 (and valgrind installed) it also counts instructions
# per call under callgrind, a figure the machine's load does not move.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh
fx=$KB_BUILD/tests/fixtures
oracle=$KB_BUILD/oracles/pq-l2/oracle.so
# The host layers, each linked before the ones it uses (host/CMakeLists.txt).
host_libs=""
for l in cli session report trial sandbox core; do host_libs="$host_libs $KB_BUILD/host/libkb_$l.a"; done
# shellcheck disable=SC2086
for f in $host_libs "$oracle" "$fx/fx_kernel_empty.so" "$fx/libfx_foreign.so"; do
  [ -f "$f" ] || { echo "ffi-overhead.sh: $f not built (cmake --build $KB_BUILD)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
libs="$host_libs $(pkg-config --libs libffi libxxhash libseccomp jansson) -ldl -lm"
cg=${KB_CALLGRIND:-0}
# shellcheck disable=SC2086
${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -I abi -I host/core scripts/ffi-overhead.c $libs \
  -o "$tmp/ffi-overhead"
if [ "$cg" = 1 ]; then
  # shellcheck disable=SC2086
  ${CC:-cc} -O2 -g -std=gnu11 -DREPS=3 -DCALLS=100000 -I abi -I host/core scripts/ffi-overhead.c \
    $libs -o "$tmp/ffi-overhead-cg"
fi
echo "ffi-overhead: $(meas_load); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
run() {
  "$tmp/ffi-overhead" "$oracle" "$fx/fx_kernel_empty.so" "$fx/libfx_foreign.so" "$1" "$2"
  [ "$cg" = 1 ] || return 0
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" "$tmp/ffi-overhead-cg" \
    "$oracle" "$fx/fx_kernel_empty.so" "$fx/libfx_foreign.so" "$1" "$2" >/dev/null 2>&1
  # (REPS + 1 warm-up batch) x CALLS = 400000 calls each way
  callgrind_annotate --inclusive=yes "$tmp/cg.$1" 2>/dev/null | awk '
    /:f_run / { gsub(",", "", $1); f = $1 } /:ffi_call / { gsub(",", "", $1); c = $1 }
    /:fx_run / { gsub(",", "", $1); n = $1 }
    END { printf "instructions_per_call: foreign %.0f (ffi_call %.0f), native run() %.0f\n",
                 f / 400000, c / 400000, n / 400000 }'
}
echo "== 4 arguments"
run fx_empty4 'void (const f32 *codebook, const f32 *query, const u8 *codes, f32 *dist)'
echo "== 7 arguments"
run fx_empty 'void (const f32 *codebook, const f32 *query, const u8 *codes, u64 n, u32 d, u32 m, f32 *dist)'
