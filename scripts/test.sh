#!/usr/bin/env bash
# The test suite: install dependencies, build, run every cmocka test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
cd "${KB_BUILD:-build}"
ctest --output-on-failure -j1 "$@"
