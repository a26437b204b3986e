#!/usr/bin/env bash
# The test suite: install dependencies, build, run every cmocka test with ctest.
# In CI (CI=true) or with KB_MATRIX=1 it then runs the reduced ISA matrix
# (scripts/matrix.sh --reduced: generic, native, asan-ubsan, aarch64 under qemu).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
(cd "${KB_BUILD:-build}" && ctest --output-on-failure -j1 "$@")
if [ "${CI:-}" = true ] || [ "${KB_MATRIX:-}" = 1 ]; then
  scripts/matrix.sh --reduced
fi
