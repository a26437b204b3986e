#!/usr/bin/env bash
# The sanitizer build: host, plugins, fixtures and tests with ASan + UBSan
# (-fno-sanitize-recover=all, so any report fails its test), then the whole
# ctest suite, fuzz corpus replays included. Must pass clean.
#
# usage: scripts/sanitize.sh [ctest args...]
# Builds into ${KB_BUILD:-build-asan}; CC picks the compiler (default cc).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KB_BUILD:-build-asan}
werror=()
[ -z "${KB_WERROR:-}" ] || werror=(-DKB_WERROR="$KB_WERROR")
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKB_SANITIZE=address,undefined \
    "${werror[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
# Errors abort with a stack; leaks count as errors. A sanitizer report in a
# worker (an exec'd kbench) makes it die, which the test sees as a failure.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure -j1 "$@"
