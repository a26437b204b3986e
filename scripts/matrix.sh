#!/usr/bin/env bash
# scripts/matrix.sh -- every candidate of every target on every ISA build, in
# one matrix (docs/matrix.md explains how to read it).
#
#   scripts/matrix.sh              the full matrix (by hand; a few minutes)
#   scripts/matrix.sh --reduced    generic + native + asan-ubsan + aarch64, no trials,
#                                  and the suite on a Haswell (CI)
#
# For each column it builds kbench, oracles and plugins from a CMake preset
# (CMakePresets.json), then runs `kbench verify` on every oracle and candidate,
# a short `kbench trial` where the column runs natively (the ratio), and
# scripts/matrix-bits.c, which says whether the output bits equal the generic
# build's oracle's for one fixed seed. Columns that need another CPU run
# under qemu-user: x86-64-v3 as a Haswell (no AVX-512), and the aarch64 cross
# build. Emulated columns are never timed.
#
# Then the suite: the whole default ctest of a generic build, natively and
# as CPU models without AVX-512 (Haswell) and without AVX (Nehalem) see it:
# each test executable and the kbench it runs under qemu-x86_64 -cpu MODEL
# (KB_TEST_EMULATOR, KB_TEST_EXEC_PREFIX); kbench's workers are plain execs
# of the x86-64 binary, so they run natively, under their seccomp filter.
#
# Writes matrix.txt, matrix.md and matrix.json (and logs/) under ${OUT:-build-matrix},
# builds under ${KB_MATRIX_BUILD:-build-matrix}. Exit 0 when no cell is
# incorrect, crash, timeout, rejected or error and, if the aarch64 column ran,
# every target has a candidate that is correct there with the reference bits;
# 1 otherwise; 64 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

usage() {
  cat <<'EOF'
usage: scripts/matrix.sh [--reduced] [--only COL,...] [--suite CELL,...] [--budget SECONDS]
                        [--no-deps] [-j N]

  --reduced         the CI subset: generic, native, asan-ubsan, aarch64, no trials;
                    the suite on haswell only
  --only COL,...    just these columns (names as in the table header)
  --suite CELL,...  the default ctest on these CPUs: native, haswell, nehalem (default
                    all three; with --reduced, haswell), aarch64 (only when named: it
                    does not pass yet, docs/matrix.md); --suite none: no suite
  --budget SECONDS  `kbench trial --budget` of each timed cell (default 1; 0: no
                    trials, correctness only; the default with --reduced)
  --no-deps         do not install missing packages (apt, root or sudo)
  -j N              build jobs (default: nproc)

columns: generic x86-64-v2 x86-64-v3 x86-64-v4 native release asan-ubsan
         x86-64-v3@haswell aarch64
environment: KB_MATRIX_QEMU_CPU (the Haswell model), KB_WERROR (ON: warnings are
             errors in every build)
environment: OUT (reports, default build-matrix), KB_MATRIX_BUILD (builds,
             default build-matrix)
EOF
}

# ---- columns ---------------------------------------------------------------
# name | preset | runner | timed: native runs are timed, emulated ones never.
ALL_COLS=(
  "generic|generic|native|1"
  "x86-64-v2|x86-64-v2|native|1"
  "x86-64-v3|x86-64-v3|native|1"
  "x86-64-v4|x86-64-v4|native|1"
  "native|native|native|1"
  "release|release|native|1"
  "asan-ubsan|asan-ubsan|native|0"
  "x86-64-v3@haswell|x86-64-v3|qemu-x86_64|0"
  "aarch64|aarch64-cross|qemu-aarch64|0"
)
REDUCED="generic native asan-ubsan aarch64"
# The suite: name | qemu-x86_64 -cpu model ("" = natively) | the x86-64 level
# it is, and the one above that it must not be (glibc's view of its CPUID).
# aarch64: the cross build's own suite, every test and kbench and its
# workers under qemu-aarch64.
ALL_SUITE=(
  "native|||"
  "haswell|${KB_MATRIX_QEMU_CPU:-Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid}|x86-64-v3|x86-64-v4"
  "nehalem|Nehalem|x86-64-v2|x86-64-v3"
  "aarch64|aarch64||"
)
REDUCED_SUITE="haswell"
# A Haswell without the system features qemu's TCG does not emulate (they
# only make qemu print warnings; user code never sees them). AVX2, FMA,
# BMI1/2, no AVX-512: an x86-64-v3 machine.
QEMU_X86_CPU=${KB_MATRIX_QEMU_CPU:-Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid}
SEED=0x6b62656e6368 # "kbench": the one seed every bits digest uses

only="" reduced=0 budget="" deps=1 jobs=$(nproc) suite=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reduced) reduced=1 ;;
    --only) only=${2:?--only needs a list}; shift ;;
    --only=*) only=${1#--only=} ;;
    --suite) suite=${2:?--suite needs a list}; shift ;;
    --suite=*) suite=${1#--suite=} ;;
    --budget) budget=${2:?--budget needs seconds}; shift ;;
    --budget=*) budget=${1#--budget=} ;;
    --no-deps) deps=0 ;;
    -j) jobs=${2:?-j needs a number}; shift ;;
    -j*) jobs=${1#-j} ;;
    -h|--help) usage; exit 0 ;;
    *) echo "matrix.sh: unknown argument '$1'" >&2; usage >&2; exit 64 ;;
  esac
  shift
done

# CI checks correctness: a shared runner's timings are noise, and a noisy
# trial must not fail a build. By hand, a short trial gives each cell a ratio.
[ -n "$budget" ] || { [ $reduced = 1 ] && budget=0 || budget=1; }
[[ "$budget" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "matrix.sh: --budget expects seconds, got '$budget'" >&2; exit 64; }
want=""
if [ -n "$only" ]; then want=" ${only//,/ } "
elif [ $reduced = 1 ]; then want=" $REDUCED "
fi
COLS=()
for c in "${ALL_COLS[@]}"; do
  name=${c%%|*}
  if [ -z "$want" ] || [[ "$want" == *" $name "* ]]; then COLS+=("$c"); fi
done
for w in $want; do
  [[ " ${ALL_COLS[*]} " == *" $w|"* ]] || { echo "matrix.sh: no column '$w'" >&2; exit 64; }
done
[ ${#COLS[@]} -gt 0 ] || { echo "matrix.sh: no columns selected" >&2; exit 64; }
if [ -z "$suite" ]; then
  if [ $reduced = 1 ]; then suite=$REDUCED_SUITE; elif [ -n "$only" ]; then suite=none; else suite=all; fi
fi
SUITE=()
for c in "${ALL_SUITE[@]}"; do
  if { [ "$suite" = all ] && [ "${c%%|*}" != aarch64 ]; } || [[ ",$suite," == *",${c%%|*},"* ]]; then
    SUITE+=("$c")
  fi
done
if [ "$suite" != all ] && [ "$suite" != none ]; then
  for w in ${suite//,/ }; do
    [[ " ${ALL_SUITE[*]} " == *" $w|"* ]] || { echo "matrix.sh: no suite cell '$w'" >&2; exit 64; }
  done
fi

if [ "$(uname -m)" != x86_64 ]; then
  echo "matrix.sh: runs on x86-64 Linux hosts (this is $(uname -m)); build the presets by hand" >&2
  exit 64
fi

BROOT=${KB_MATRIX_BUILD:-build-matrix}
ODIR=${OUT:-build-matrix}
mkdir -p "$BROOT" "$ODIR/logs"
BROOT=$(cd "$BROOT" && pwd)
ODIR=$(cd "$ODIR" && pwd)
LOGS=$ODIR/logs
T0=$(date +%s)
progress() { [ -t 2 ] && printf '\r\033[K%s' "$*" >&2 || true; }
say() { progress ""; echo "matrix: $*" >&2; }

# ---- dependencies ----------------------------------------------------------
# (No `| grep -q` under pipefail: grep leaving early can fail the writer.)
needs_col() {
  [[ " ${COLS[*]} " == *"|$1|"* ]] ||
    { [ "$1" = qemu-x86_64 ] && [[ " ${SUITE[*]}" == *"|x86-64-v"* ]]; } ||
    { [ "$1" = qemu-aarch64 ] && [[ " ${SUITE[*]}" == *" aarch64|"* ]]; }
}
install_deps() {
  local pkgs=() missing=() sudo=""
  needs_col qemu-x86_64 && pkgs+=(qemu-user)
  if needs_col qemu-aarch64; then
    pkgs+=(qemu-user gcc-aarch64-linux-gnu g++-aarch64-linux-gnu
           libxxhash-dev:arm64 libseccomp-dev:arm64 libffi-dev:arm64 libjansson-dev:arm64)
  fi
  [[ " ${SUITE[*]}" == *" aarch64|"* ]] && pkgs+=(libcmocka-dev:arm64)
  scripts/deps.sh
  for p in "${pkgs[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == *"ok installed"* ]] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  say "installing ${missing[*]}"
  # arm64 libraries come from Debian multiarch, next to the native ones: the
  # cross build links them and qemu-aarch64 runs them (with libc6:arm64's
  # /lib/ld-linux-aarch64.so.1; see abi/toolchain-aarch64.cmake).
  if [[ " ${missing[*]}" == *":arm64"* ]] &&
     [[ " $(dpkg --print-foreign-architectures | tr '\n' ' ') " != *" arm64 "* ]]; then
    $sudo dpkg --add-architecture arm64
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >"$LOGS/apt.log" 2>&1 ||
    { tail -20 "$LOGS/apt.log" >&2; return 1; }
}
if [ $deps = 1 ]; then install_deps; fi

# ---- state -----------------------------------------------------------------
declare -A BUILT BUILD_NOTE ST NOTE RATIO LO HI TRIAL BITS DIGEST COLCPU COLSKIP
declare -a ROWS=()
# The reference bits come from the generic build's oracles, always built.
presets=(generic)
for c in "${COLS[@]}"; do
  IFS='|' read -r _ p _ _ <<<"$c"
  [[ " ${presets[*]} " == *" $p "* ]] || presets+=("$p")
done

build_preset() {
  local p=$1 dir=$BROOT/$1 log=$LOGS/build-$1.log
  say "building $p"
  if cmake --preset "$p" -B "$dir" -DKB_TESTS=OFF -DKB_WERROR="${KB_WERROR:-OFF}" >"$log" 2>&1 &&
     cmake --build "$dir" -j"$jobs" >>"$log" 2>&1; then
    BUILT[$p]=1
  else
    BUILT[$p]=0
    BUILD_NOTE[$p]="build failed: $(grep -m1 -E 'error|Error' "$log" | cut -c1-160) (see logs/build-$p.log)"
    tail -15 "$log" >&2
  fi
}
for p in "${presets[@]}"; do build_preset "$p"; done

# matrix-bits, once per architecture (and sanitizer: an ASan plugin loads
# only into an ASan process).
mb_cflags=(-std=c11 -O2 -Wall -Wextra -D_GNU_SOURCE -Iabi -Ihost/core scripts/matrix-bits.c host/core/cpu.c -ldl)
MB_X86=$BROOT/matrix-bits-x86_64
gcc "${mb_cflags[@]}" -o "$MB_X86" 2>"$LOGS/matrix-bits.log" || MB_X86=""
if [[ " ${presets[*]} " == *" asan-ubsan "* ]]; then
  MB_ASAN=$BROOT/matrix-bits-asan
  gcc -fsanitize=address,undefined "${mb_cflags[@]}" -o "$MB_ASAN" 2>>"$LOGS/matrix-bits.log" || MB_ASAN=""
fi
if [[ " ${presets[*]} " == *" aarch64-cross "* ]]; then
  MB_A64=$BROOT/matrix-bits-aarch64
  aarch64-linux-gnu-gcc "${mb_cflags[@]}" -o "$MB_A64" 2>>"$LOGS/matrix-bits.log" || MB_A64=""
fi

# Runs a command the way column $1 runs binaries: natively, or under qemu
# with the worker re-exec going through the same qemu (KB_WORKER_EXEC_PREFIX:
# without binfmt_misc the kernel cannot exec a foreign kbench itself).
run_in() {
  local runner=$1; shift
  case "$runner" in
    native) timeout 180 "$@" ;;
    qemu-x86_64)
      QEMU_CPU=$QEMU_X86_CPU KB_WORKER_EXEC_PREFIX=$(command -v qemu-x86_64) \
        timeout 180 qemu-x86_64 "$@" ;;
    qemu-aarch64)
      KB_WORKER_EXEC_PREFIX=$(command -v qemu-aarch64) timeout 180 qemu-aarch64 "$@" ;;
  esac
}

# `key: value` out of a verdict block.
field() { sed -n "/^$1: /{s///p;q}" <<<"$2"; }

# ---- rows: targets (oracles) and their candidates, over every build --------
targets=$(for p in "${presets[@]}"; do
             for o in "$BROOT/$p"/oracles/*/oracle.so; do
               if [ -f "$o" ]; then basename "$(dirname "$o")"; fi
             done
           done | sort -u)
for t in $targets; do
  ROWS+=("$t|oracle")
  for c in $(for p in "${presets[@]}"; do
               for so in "$BROOT/$p/plugins/$t"/*.so; do if [ -f "$so" ]; then basename "$so" .so; fi; done
             done | sort -u); do
    ROWS+=("$t|$c")
  done
done
[ ${#ROWS[@]} -gt 0 ] || { say "nothing built; see $LOGS"; exit 1; }
row_path() { # build-dir target candidate
  if [ "$3" = oracle ]; then echo "$1/oracles/$2/oracle.so"; else echo "$1/plugins/$2/$3.so"; fi
}

# Reference bits: the generic build's oracle, natively.
declare -A REF
for t in $targets; do
  o=$BROOT/generic/oracles/$t/oracle.so
  if [ -n "$MB_X86" ] && [ -f "$o" ] && out=$("$MB_X86" "$o" "$o" $SEED 2>>"$LOGS/matrix-bits.log"); then
    REF[$t]=$(awk '{print $2}' <<<"$out")
  fi
done

# ---- the column's CPU: can it run here? ------------------------------------
# x86-64-vN: glibc's own check of the CPU it runs on (and of the OS state).
level_ok() { # level [runner-prefix...]
  local level=$1 out; shift
  out=$("$@" /lib64/ld-linux-x86-64.so.2 --help 2>/dev/null || true)
  [[ "$out" == *$'\n'"  $level (supported"* ]]
}
col_skip() {
  local name=$1 preset=$2 runner=$3
  case "$runner" in
    native)
      case "$preset" in
        x86-64-v[234]) level_ok "$preset" ||
          echo "this CPU is not $preset, and qemu cannot stand in (TCG has no AVX-512)" ;;
      esac ;;
    qemu-x86_64)
      command -v qemu-x86_64 >/dev/null || { echo "no qemu-x86_64 (apt-get install qemu-user)"; return; }
      QEMU_CPU=$QEMU_X86_CPU level_ok x86-64-v3 qemu-x86_64 ||
        echo "qemu's $QEMU_X86_CPU is not an x86-64-v3 CPU" ;;
    qemu-aarch64)
      command -v qemu-aarch64 >/dev/null || { echo "no qemu-aarch64 (apt-get install qemu-user)"; return; }
      [ -e /lib/ld-linux-aarch64.so.1 ] ||
        echo "no /lib/ld-linux-aarch64.so.1 (apt-get install libc6:arm64, Debian multiarch)" ;;
  esac
}

# ---- one cell --------------------------------------------------------------
# Sets ST NOTE RATIO LO HI TRIAL BITS for key "$col|$t|$c".
run_cell() {
  local col=$1 dir=$2 runner=$3 timed=$4 t=$5 c=$6 mb=$7 key="$1|$5|$6"
  local so; so=$(row_path "$dir" "$t" "$c")
  local kb=$dir/kbench log=$LOGS/$col.log
  if [ ! -f "$so" ]; then
    ST[$key]=unsupported
    NOTE[$key]="not built here (the plugin's CMakeLists builds it only for another ISA, or a library it needs is missing for this one)"
    return
  fi
  local out rc=0
  out=$(run_in "$runner" "$kb" verify "$so" 2>>"$log") || rc=$?
  printf '== verify %s\n%s\n' "$so" "$out" >>"$log"
  local s reason
  s=$(field status "$out")
  reason=$(field reason "$out")
  case "$s" in
    correct|incorrect|crash|timeout) ST[$key]=$s ;;
    rejected)
      if [[ "$reason" == *"needs CPU features this machine lacks: "* ]]; then
        ST[$key]=unsupported
        reason="needs ${reason#*needs CPU features this machine lacks: }"
        reason=${reason%%;*}
      else
        ST[$key]=rejected
      fi ;;
    *) ST[$key]=error; reason="kbench verify exited $rc without a verdict${out:+: $(tail -1 <<<"$out")}" ;;
  esac
  [ "${ST[$key]}" = correct ] || NOTE[$key]=$reason
  if [ "${ST[$key]}" = correct ] && [ "$timed" = 1 ] && [ "$c" != oracle ] &&
     [ "$budget" != 0 ]; then
    rc=0
    out=$(run_in "$runner" "$kb" trial --budget "$budget" "$so" 2>>"$log") || rc=$?
    printf '== trial %s\n%s\n' "$so" "$out" >>"$log"
    s=$(field status "$out")
    TRIAL[$key]=$s
    case "$s" in
      keep|discard|inconclusive)
        RATIO[$key]=$(field geomean_ratio "$out")
        LO[$key]=$(field ci90_low "$out")
        HI[$key]=$(field ci90_high "$out") ;;
      *) # correct a moment ago, not now: the worse verdict stands
        ST[$key]=${s:-error}
        NOTE[$key]="trial: $(field reason "$out")" ;;
    esac
  fi
  if [ "${ST[$key]}" = correct ] && [ -n "$mb" ] && [ -n "${REF[$t]:-}" ]; then
    local o=$dir/oracles/$t/oracle.so d
    if d=$(ASAN_OPTIONS=detect_leaks=0 run_in "$runner" "$mb" "$o" "$so" $SEED 2>>"$log"); then
      DIGEST[$key]=$(awk '{print $2}' <<<"$d")
      if [ "${DIGEST[$key]}" = "${REF[$t]}" ]; then BITS[$key]=identical; else BITS[$key]=differ; fi
    fi
  fi
}

# ---- run every column --------------------------------------------------------
ncells=$(( ${#COLS[@]} * ${#ROWS[@]} )) i=0
for colspec in "${COLS[@]}"; do
  IFS='|' read -r col preset runner timed <<<"$colspec"
  dir=$BROOT/$preset
  : >"$LOGS/$col.log"
  skip="" broken=""
  if [ "${BUILT[$preset]:-0}" != 1 ]; then broken=${BUILD_NOTE[$preset]:-not built}
  else skip=$(col_skip "$col" "$preset" "$runner"); fi
  mb=$MB_X86
  case "$preset" in asan-ubsan) mb=${MB_ASAN:-} ;; aarch64-cross) mb=${MB_A64:-} ;; esac
  if [ -n "$broken" ]; then
    COLSKIP[$col]=$broken
    say "$col: $broken"
  elif [ -n "$skip" ]; then
    COLSKIP[$col]=$skip
    say "$col: skipped: $skip"
  else
    o=$(row_path "$dir" "${ROWS[0]%%|*}" oracle)
    COLCPU[$col]=$(field host_cpu_features "$(run_in "$runner" "$dir/kbench" info "$o" 2>/dev/null || true)")
  fi
  for r in "${ROWS[@]}"; do
    i=$((i + 1))
    t=${r%%|*} c=${r#*|}
    progress "[$i/$ncells] $col $t/$c"
    if [ -n "$broken" ]; then # a build that fails is a finding, not a skip
      ST["$col|$t|$c"]=error
      continue
    fi
    if [ -n "$skip" ]; then
      ST["$col|$t|$c"]=skipped
      continue
    fi
    run_cell "$col" "$dir" "$runner" "$timed" "$t" "$c" "$mb"
  done
done
progress ""

# ---- the suite: the default ctest as other CPUs see it ----------------------
declare -A SUITE_ST SUITE_NOTE SUITE_SECS SUITE_SKIPS SUITE_WHY
suite_level_ok() { # model level above: glibc sees `level` and not `above`
  QEMU_CPU=$1 level_ok "$2" qemu-x86_64 && ! QEMU_CPU=$1 level_ok "$3" qemu-x86_64
}
suite_cell() { # dir name model level above
  local dir=$1 name=$2 model=$3 level=$4 above=$5 log=$LOGS/suite-$2.log emu="" rc=0 t0
  if [ -n "$model" ]; then
    emu=$(command -v qemu-x86_64) ||
      { SUITE_ST[$name]=skipped; SUITE_NOTE[$name]="no qemu-x86_64 (apt-get install qemu-user)"; return; }
    suite_level_ok "$model" "$level" "$above" ||
      { SUITE_ST[$name]=error; SUITE_NOTE[$name]="qemu's $model is not $level without $above"; return; }
  fi
  cmake -S "$SRC" -B "$dir" -DKB_TEST_EMULATOR="$emu" >>"$LOGS/build-suite.log" 2>&1
  say "suite on $name"
  t0=$(date +%s)
  (cd "$dir" && unset KB_WORKER_EXEC_PREFIX &&
   if [ -n "$model" ]; then export QEMU_CPU=$model KB_TEST_EXEC_PREFIX=$emu; fi &&
   ctest -j1 -V) >"$log" 2>&1 || rc=$?
  suite_result "$name" "$rc" "$t0" "$log"
}
suite_result() { # name rc t0 log
  local name=$1 rc=$2 t0=$3 log=$4
  SUITE_SECS[$name]=$(( $(date +%s) - t0 ))
  if [ $rc = 0 ]; then SUITE_ST[$name]=passed; else SUITE_ST[$name]=failed; fi
  SUITE_NOTE[$name]=$(grep -m1 -E 'tests passed' "$log" || echo "ctest exited $rc")
  # CI keeps only what the summary prints: name the failed tests and what
  # cmocka said about them, not just a count.
  [ $rc = 0 ] || SUITE_WHY[$name]=$( {
      sed -n '/The following tests FAILED/,$p' "$log" | grep -E '^[[:space:]]+[0-9]+ - ' || true
      grep -E '\[  (ERROR|FAILED) +\]|\[   LINE   \]|Assertion|Timeout|Subprocess aborted' "$log" |
        grep -v -E 'test\(s\), listed below|^[0-9]+: \[  FAILED  \] [0-9]+ test' | head -n 40 || true
    } | sed 's/^/      /')
  SUITE_SKIPS[$name]=$(sed -n 's/.*\[  SKIPPED \] \([0-9]*\) test(s), listed below.*/\1/p' "$log" |
                       awk '{n += $1} END {print n + 0}')
}
# The aarch64 cross build with its tests, each test, the kbench it runs and
# kbench's workers under qemu-aarch64 (the kernel refuses the ELF natively).
suite_aarch64() {
  local dir=$BROOT/suite-aarch64 log=$LOGS/suite-aarch64.log emu rc=0 t0
  emu=$(command -v qemu-aarch64) ||
    { SUITE_ST[aarch64]=skipped; SUITE_NOTE[aarch64]="no qemu-aarch64 (apt-get install qemu-user)"; return; }
  say "building the suite (preset aarch64-cross, tests on)"
  if ! { cmake --preset aarch64-cross -B "$dir" -DKB_TESTS=ON -DKB_TEST_EMULATOR="$emu" \
           -DKB_WERROR="${KB_WERROR:-OFF}" >"$LOGS/build-suite-aarch64.log" 2>&1 &&
         cmake --build "$dir" -j"$jobs" >>"$LOGS/build-suite-aarch64.log" 2>&1; }; then
    SUITE_ST[aarch64]=error SUITE_NOTE[aarch64]="build failed (see logs/build-suite-aarch64.log)"
    return
  fi
  say "suite on aarch64"
  t0=$(date +%s)
  (cd "$dir" && export KB_TEST_EXEC_PREFIX=$emu KB_WORKER_EXEC_PREFIX=$emu && ctest -j1 -V) \
    >"$log" 2>&1 || rc=$?
  suite_result aarch64 "$rc" "$t0" "$log"
}
run_suite() {
  local dir=$BROOT/suite c name model level above x86=0
  for c in "${SUITE[@]}"; do [ "${c%%|*}" = aarch64 ] || x86=1; done
  [[ " ${SUITE[*]}" != *" aarch64|"* ]] || suite_aarch64
  [ $x86 = 1 ] || return 0
  say "building the suite (preset generic, tests on)"
  if ! { cmake --preset generic -B "$dir" -DKB_TESTS=ON -DKB_TEST_EMULATOR= \
           -DKB_WERROR="${KB_WERROR:-OFF}" >"$LOGS/build-suite.log" 2>&1 &&
         cmake --build "$dir" -j"$jobs" >>"$LOGS/build-suite.log" 2>&1; }; then
    for c in "${SUITE[@]}"; do
      [ "${c%%|*}" = aarch64 ] ||
        SUITE_ST[${c%%|*}]=error SUITE_NOTE[${c%%|*}]="build failed (see logs/build-suite.log)"
    done
    return
  fi
  for c in "${SUITE[@]}"; do
    IFS='|' read -r name model level above <<<"$c"
    [ "$name" = aarch64 ] && continue
    suite_cell "$dir" "$name" "$model" "$level" "$above"
  done
  cmake -S "$SRC" -B "$dir" -DKB_TEST_EMULATOR= >>"$LOGS/build-suite.log" 2>&1 || true
}
[ ${#SUITE[@]} -eq 0 ] || run_suite

# ---- verdict of the matrix --------------------------------------------------
fail=0
problems=()
for c in "${SUITE[@]}"; do
  name=${c%%|*}
  case "${SUITE_ST[$name]}" in
    passed|skipped) ;;
    *) fail=1; problems+=("suite on $name: ${SUITE_ST[$name]}: ${SUITE_NOTE[$name]}") ;;
  esac
done
for colspec in "${COLS[@]}"; do
  col=${colspec%%|*}
  for r in "${ROWS[@]}"; do
    case "${ST["$col|$r"]}" in
      correct|unsupported|skipped) ;;
      *) fail=1; problems+=("$col ${r/|//}: ${ST["$col|$r"]}") ;;
    esac
  done
done
if [[ " ${COLS[*]}" == *" aarch64|"* ]]; then
  if [ -z "${COLSKIP[aarch64]:-}" ]; then
    for t in $targets; do
      ok=0
      for r in "${ROWS[@]}"; do
        [ "${r%%|*}" = "$t" ] && [ "${r#*|}" != oracle ] || continue
        [ "${ST["aarch64|$r"]}" = correct ] && [ "${BITS["aarch64|$r"]:-}" = identical ] && ok=1
      done
      [ $ok = 1 ] || { fail=1; problems+=("aarch64: no $t candidate is correct with the reference bits"); }
    done
  fi
fi

# ---- output -----------------------------------------------------------------
cell_text() { # key
  local k=$1 s=${ST[$1]} txt
  txt=$s
  if [[ "${RATIO[$k]:-}" =~ ^[0-9.]+$ ]]; then
    txt+=" $(printf '%.2f' "${RATIO[$k]}")"
    [ "${TRIAL[$k]}" = inconclusive ] && txt+="?" # CI too wide to decide at this budget
  fi
  case "${BITS[$k]:-}" in identical) txt+=" =" ;; differ) txt+=" ≠" ;; esac
  printf '%s' "$txt"
}
header=(target candidate)
for colspec in "${COLS[@]}"; do header+=("${colspec%%|*}"); done
SECS=$(( $(date +%s) - T0 ))
cpu_model=$(sed -n '/^model name[[:space:]]*: /{s///p;q}' /proc/cpuinfo)

# Terminal table: widths by column, UTF-8 aware (≠ is one column, 3 bytes).
declare -a W
for j in "${!header[@]}"; do W[$j]=${#header[$j]}; done
declare -A CELL
for r in "${ROWS[@]}"; do
  t=${r%%|*} c=${r#*|}
  CELL["$r|0"]=$t CELL["$r|1"]=$c
  j=2
  for colspec in "${COLS[@]}"; do
    CELL["$r|$j"]=$(cell_text "${colspec%%|*}|$r")
    j=$((j + 1))
  done
  for j in "${!header[@]}"; do
    n=$(printf '%s' "${CELL["$r|$j"]}" | wc -m)
    [ "$n" -gt "${W[$j]}" ] && W[$j]=$n
  done
done
pad() { local s=$1 w=$2 n; n=$(printf '%s' "$s" | wc -m); printf '%s%*s' "$s" $((w - n)) ""; }
{
  line=""
  for j in "${!header[@]}"; do line+="$(pad "${header[$j]}" "${W[$j]}")  "; done
  echo "${line%  }"
  line=""
  for j in "${!header[@]}"; do line+="$(printf '%*s' "${W[$j]}" "" | tr ' ' '-')  "; done
  echo "${line%  }"
  prev=""
  for r in "${ROWS[@]}"; do
    line=""
    for j in "${!header[@]}"; do
      v=${CELL["$r|$j"]}
      [ $j = 0 ] && [ "$v" = "$prev" ] && v=""
      line+="$(pad "$v" "${W[$j]}")  "
    done
    prev=${r%%|*}
    echo "${line%  }"
  done
  echo
  echo "correct/incorrect: kbench verify against the column's own oracle; unsupported: the"
  echo "host refused it for CPU features the column's CPU lacks, or it is not built there;"
  if [ "$budget" != 0 ]; then
    echo "0.17: geomean time ratio vs the oracle (kbench trial --budget $budget; below 1 is faster;"
    echo "? = inconclusive, CI too wide), native columns only."
  else
    echo "No trials (--budget 0): correctness and bits only."
  fi
  echo "= / ≠: output bits equal / differ from the generic build's oracle's (seed $SEED)."
  for colspec in "${COLS[@]}"; do
    IFS='|' read -r col preset runner timed <<<"$colspec"
    if [ -n "${COLSKIP[$col]:-}" ]; then
      case "${COLSKIP[$col]}" in build*) echo "  $col: ${COLSKIP[$col]}" ;;
                                  *) echo "  $col: skipped: ${COLSKIP[$col]}" ;; esac
      continue
    fi
    how="native"
    [ "$runner" = qemu-x86_64 ] && how="qemu-x86_64 -cpu $QEMU_X86_CPU, correctness only"
    [ "$runner" = qemu-aarch64 ] && how="qemu-aarch64 (cross build), correctness only"
    [ "$preset" = asan-ubsan ] && how="native, ASan+UBSan, correctness only"
    echo "  $col: preset $preset, $how; cpu: ${COLCPU[$col]:-?}"
  done
  for colspec in "${COLS[@]}"; do
    col=${colspec%%|*}
    for r in "${ROWS[@]}"; do
      [ -n "${NOTE["$col|$r"]:-}" ] && echo "  $col ${r/|//}: ${ST["$col|$r"]}: ${NOTE["$col|$r"]}"
    done
  done
  for c in "${SUITE[@]}"; do
    IFS='|' read -r name model level above <<<"$c"
    how=natively
    [ -z "$model" ] || how="qemu-x86_64 -cpu $model ($level, no ${above#x86-64-})"
    [ "$name" != aarch64 ] || how="qemu-aarch64, cross build"
    echo "  suite on $name ($how): ${SUITE_ST[$name]}: ${SUITE_NOTE[$name]}; ${SUITE_SKIPS[$name]:-0} test(s) skipped; ${SUITE_SECS[$name]:-0}s (logs/suite-$name.log)"
    [ -z "${SUITE_WHY[$name]:-}" ] || printf '%s\n' "${SUITE_WHY[$name]}"
  done
  echo "host: $cpu_model, $(nproc) CPUs; ${SECS}s"
  if [ $fail = 0 ]; then echo "matrix: OK"; else
    echo "matrix: FAILED"; for p in "${problems[@]}"; do echo "  $p"; done; fi
} >"$ODIR/matrix.txt"

{
  echo "# kbench ISA matrix"
  echo
  printf '|'; for h in "${header[@]}"; do printf ' %s |' "$h"; done; echo
  printf '|'; for h in "${header[@]}"; do printf -- '---|'; done; echo
  for r in "${ROWS[@]}"; do
    printf '|'
    for j in "${!header[@]}"; do printf ' %s |' "${CELL["$r|$j"]}"; done
    echo
  done
  echo
  sed -n '/^correct\/incorrect/,$p' "$ODIR/matrix.txt" | sed 's/^  /- /'
} >"$ODIR/matrix.md"

json_str() { # JSON string of $1
  local s=$1
  s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/}
  printf '"%s"' "$(printf '%s' "$s" | tr -d '\000-\037')"
}
json_num() { [[ "${1:-}" =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]] && printf '%s' "$1" || printf null; }
json_opt() { [ -n "${1:-}" ] && json_str "$1" || printf null; }
{
  printf '{\n  "host": {"cpu": %s, "cpus": %s, "seconds": %s},\n' "$(json_str "$cpu_model")" "$(nproc)" "$SECS"
  printf '  "seed": %s,\n  "budget_s": %s,\n  "ok": %s,\n' "$(json_str $SEED)" "$(json_num "$budget")" \
    "$([ $fail = 0 ] && echo true || echo false)"
  printf '  "reference_bits": {'
  sep=""; for t in $targets; do printf '%s%s: %s' "$sep" "$(json_str "$t")" "$(json_opt "${REF[$t]:-}")"; sep=", "; done
  printf '},\n  "columns": [\n'
  sep=""
  for colspec in "${COLS[@]}"; do
    IFS='|' read -r col preset runner timed <<<"$colspec"
    printf '%s    {"name": %s, "preset": %s, "runner": %s, "timed": %s, "cpu_features": %s, "skipped": %s}' \
      "$sep" "$(json_str "$col")" "$(json_str "$preset")" "$(json_str "$runner")" \
      "$([ "$timed" = 1 ] && [ "$budget" != 0 ] && echo true || echo false)" "$(json_opt "${COLCPU[$col]:-}")" \
      "$(json_opt "${COLSKIP[$col]:-}")"
    sep=$',\n'
  done
  printf '\n  ],\n  "cells": [\n'
  sep=""
  for r in "${ROWS[@]}"; do
    for colspec in "${COLS[@]}"; do
      col=${colspec%%|*} k="${colspec%%|*}|$r"
      printf '%s    {"target": %s, "candidate": %s, "column": %s, "status": %s, "note": %s, "trial": %s, "ratio": %s, "ci90_low": %s, "ci90_high": %s, "bits": %s, "digest": %s}' \
        "$sep" "$(json_str "${r%%|*}")" "$(json_str "${r#*|}")" "$(json_str "$col")" \
        "$(json_str "${ST[$k]}")" "$(json_opt "${NOTE[$k]:-}")" "$(json_opt "${TRIAL[$k]:-}")" \
        "$(json_num "${RATIO[$k]:-}")" "$(json_num "${LO[$k]:-}")" "$(json_num "${HI[$k]:-}")" \
        "$(json_opt "${BITS[$k]:-}")" "$(json_opt "${DIGEST[$k]:-}")"
      sep=$',\n'
    done
  done
  printf '\n  ],\n  "suite": ['
  sep=""
  for c in "${SUITE[@]}"; do
    IFS='|' read -r name model level above <<<"$c"
    printf '%s\n    {"name": %s, "qemu_cpu": %s, "status": %s, "summary": %s, "skipped_tests": %s, "seconds": %s}' \
      "$sep" "$(json_str "$name")" "$(json_opt "$model")" "$(json_str "${SUITE_ST[$name]}")" \
      "$(json_opt "${SUITE_NOTE[$name]:-}")" "$(json_num "${SUITE_SKIPS[$name]:-0}")" "$(json_num "${SUITE_SECS[$name]:-0}")"
    sep=","
  done
  printf '\n  ],\n  "problems": ['
  sep=""; for p in "${problems[@]}"; do printf '%s%s' "$sep" "$(json_str "$p")"; sep=", "; done
  printf ']\n}\n'
} >"$ODIR/matrix.json"

cat "$ODIR/matrix.txt"
echo "(also $ODIR/matrix.md, $ODIR/matrix.json; logs in $LOGS)"
exit $fail
