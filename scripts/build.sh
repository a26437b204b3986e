#!/usr/bin/env bash
# Configures and builds kbench into ${KB_BUILD:-build} (Release with debug info).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${KB_BUILD:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
