#!/usr/bin/env bash
# Configures and builds kbench into ${KB_BUILD:-build} (Release with debug info).
# KB_WERROR=ON (set by .ci/run) makes every warning an error; a user's build
# keeps the cache's value (default OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KB_BUILD:-build}
werror=()
[ -z "${KB_WERROR:-}" ] || werror=(-DKB_WERROR="$KB_WERROR")
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${werror[@]}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
