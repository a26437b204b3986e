#!/usr/bin/env bash
# Fuzzes what kbench parses from bytes it does not control (tests/fuzz/:
# ELF files, plugin descriptors, target specs, the ledger, the state files,
# the serve client's JSON) with libFuzzer, under ASan and UBSan.
#
# usage: scripts/fuzz.sh [--smoke] [--seconds N] [HARNESS...]
#   HARNESS      elf desc spec ledger state json (default: all)
#   --seconds N  fuzz each harness N seconds (default 60)
#   --smoke      10 seconds each: the CI run
#
# Builds with clang into ${KB_FUZZ_BUILD:-build-fuzz} (KB_FUZZ=ON). The seed
# corpus tests/fuzz/corpus/<h>/ is only read; what the fuzzer adds goes to
# build-fuzz/fuzz/corpus/<h>/ and crashes to build-fuzz/fuzz/crashes/.
# Exits non-zero when any harness found a crash; each crash file then
# belongs in tests/fuzz/corpus/<h>/ (named crash-<what>) with the fix, where
# the gcc build's ctest replays it for good.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=60
all=(elf desc spec ledger state json)
harnesses=()
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) secs=10 ;;
    --seconds) secs="$2"; shift ;;
    --seconds=*) secs="${1#*=}" ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 64 ;;
    *) harnesses+=("$1") ;;
    esac
    shift
done
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")

cc=${KB_FUZZ_CC:-}
if [ -z "$cc" ]; then
    for c in clang-14 clang; do command -v "$c" >/dev/null && { cc=$c; break; }; done
fi
if [ -z "$cc" ]; then
    echo "fuzz.sh: needs clang with libFuzzer (apt-get install clang-14 libclang-rt-14-dev)" >&2
    exit 69
fi
cxx=${cc/clang/clang++}
command -v "$cxx" >/dev/null || cxx=clang++

build=${KB_FUZZ_BUILD:-build-fuzz}
# Warnings are gcc's -Werror business; clang's own extra ones must not stop
# a fuzz run.
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
    -DKB_FUZZ=ON -DKB_SANITIZE=address,undefined -DKB_WERROR=OFF >/dev/null
targets=()
for h in "${harnesses[@]}"; do targets+=(--target "fuzz_$h"); done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
out="$build/fuzz"
mkdir -p "$out/crashes"
# The file harnesses write scratch files on every run: a tmpfs when there
# is one, removed afterwards even when a crash skipped the harness's cleanup.
scratch=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/kbfuzz-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
summary=()
failed=0
for h in "${harnesses[@]}"; do
    exe="$out/fuzz_$h"
    seeds="tests/fuzz/corpus/$h"
    work="$out/corpus/$h"
    log="$out/fuzz_$h.log"
    mkdir -p "$work"
    before=$(ls "$out/crashes/" | grep -c "^$h-" || true)
    echo "== fuzz_$h: ${secs}s"
    set +e
    # the first directory receives new inputs; the seeds are only read
    TMPDIR="$scratch" "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$out/crashes/$h-" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
    crashes=$(( $(ls "$out/crashes/" | grep -c "^$h-" || true) - before ))
    line=$(printf '%-7s runs %-9s execs/s %-6s cov %-5s new crash files %s' "$h" "${runs:-?}" \
        "${eps:-?}" "${cov:-?}" "$crashes")
    if [ "$rc" -ne 0 ]; then
        failed=1
        line="$line  FAILED (rc $rc; see $log)"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*check failed|.*runtime error)' "$log" | head -5 >&2 || true
    fi
    summary+=("$line")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "fuzz.sh: crash inputs are in $out/crashes/; reproduce with $out/fuzz_<h> FILE," >&2
    echo "then fix, and add the file to tests/fuzz/corpus/<h>/crash-<what>" >&2
    exit 1
fi
