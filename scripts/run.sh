#!/usr/bin/env bash
# The first verdict: install dependencies, build, and trial the optimized pq-l2
# candidate against its oracle. Extra arguments go to `kbench trial`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
cand=build/plugins/pq-l2/avx512.so
grep -qw avx512f /proc/cpuinfo || cand=build/plugins/pq-l2/portable.so
exec build/kbench trial "$cand" "$@"
