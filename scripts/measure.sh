#!/usr/bin/env bash
# The measurement suite: the tests that assert speed (ctest label `measure`:
# tests/measure/ and scripts/measure-smoke.sh). They hold on a quiet machine
# only, so the default suite leaves them out; run them by hand, alone.
#
# usage: scripts/measure.sh [ctest args...]
# Builds into ${KB_MEASURE_BUILD:-build-measure} with -DKB_MEASURE_TESTS=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KB_MEASURE_BUILD:-build-measure}
scripts/deps.sh
KB_BUILD=$build scripts/build.sh -DKB_MEASURE_TESTS=ON
cd "$build"
ctest --output-on-failure -j1 -L measure "$@"
