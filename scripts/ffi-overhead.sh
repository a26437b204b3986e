#!/usr/bin/env bash
# ffi-overhead.sh -- the per-call cost of a foreign kernel (`kbench trial
# --foreign`, host/foreign.c) against a native plugin: builds
# scripts/ffi-overhead.c against the build's kbench_core and runs it on
# empty kernels of the pq-l2 shape, at 4 arguments (the four buffers) and
# at 7 (the buffers and the three case params), on this machine.
#   KB_BUILD=/tmp/build scripts/ffi-overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/meas-lib.sh
fx=$KB_BUILD/tests/fixtures
need=("$KB_BUILD/host/libkbench_core.a" "$KB_BUILD/oracles/pq-l2/oracle.so"
      "$fx/fx_kernel_empty.so" "$fx/libfx_foreign.so")
for f in "${need[@]}"; do
  [ -f "$f" ] || { echo "ffi-overhead.sh: $f not built (cmake --build $KB_BUILD)" >&2; exit 2; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# shellcheck disable=SC2046
${CC:-cc} -O2 -std=gnu11 -Wall -Wextra -I abi -I host scripts/ffi-overhead.c \
  "$KB_BUILD/host/libkbench_core.a" $(pkg-config --libs libffi libxxhash libseccomp jansson) \
  -ldl -lm -o "$tmp/ffi-overhead"
echo "ffi-overhead: $(meas_load); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
run() {
  "$tmp/ffi-overhead" "$KB_BUILD/oracles/pq-l2/oracle.so" "$fx/fx_kernel_empty.so" \
    "$fx/libfx_foreign.so" "$1" "$2"
}
echo "== 4 arguments"
run fx_empty4 'void (const f32 *codebook, const f32 *query, const u8 *codes, f32 *dist)'
echo "== 7 arguments"
run fx_empty 'void (const f32 *codebook, const f32 *query, const u8 *codes, u64 n, u32 d, u32 m, f32 *dist)'
