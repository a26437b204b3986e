#!/usr/bin/env bash
# The test suite: install dependencies, build, run every cmocka test with ctest.
# In CI (CI=true) or with KB_FULL_TESTS=1 it then also runs: the style check
# (scripts/format.sh --check), the reduced ISA
# matrix (generic, native, asan-ubsan, aarch64 under qemu, and this suite as
# a Haswell sees it, under qemu-x86_64), every ISA variant of every target
# verified on all its cases (KB_VERIFY_CASES=all; the default suite verifies
# the quick ones), the whole suite again under ASan+UBSan, and a 10-second
# libFuzzer run of each parser, and a campaign on a one-node Slurm
# (scripts/slurm-smoke.sh). The measurement
# suite (tests that assert speed) is scripts/measure.sh's, not this one's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
(cd "${KB_BUILD:-build}" && ctest --output-on-failure -j1 "$@")
if [ "${CI:-}" = true ] || [ "${KB_FULL_TESTS:-}" = 1 ]; then
  scripts/format.sh --check
  scripts/matrix.sh --reduced
  (cd "${KB_BUILD:-build}" &&
    KB_VERIFY_CASES=all ctest --output-on-failure -j1 -R '^(test_target_|test_isa_variants$)')
  # test_watch times trials against a deadline; under ASan's slowdown on a
  # shared 2-core machine that is a test of the machine, not of kbench.
  scripts/sanitize.sh -E test_watch -LE measure
  scripts/fuzz.sh --smoke
  # a campaign of 6 trials as one job array on a one-node Slurm started here
  scripts/slurm-smoke.sh "${KB_BUILD:-build}"
fi
