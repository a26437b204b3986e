# KB_ISA: the instruction-set level the whole build is compiled for.
#
# Included from the top-level CMakeLists.txt before any target exists, so the
# -march flag reaches the host, the generators, the oracles and every plugin.
# Plugins written with intrinsics for a wider ISA add their own flags to their
# own files on top of it (plugins/*/CMakeLists.txt) and declare those features
# in their descriptor; the rest of the build runs on any CPU of the chosen
# level, and on no older one: a KB_ISA=x86-64-v3 kbench dies of SIGILL on a
# CPU without AVX2 before it can check anything. scripts/matrix.sh builds
# every level and runs each where a CPU of that level exists (natively, or
# emulated by qemu-user).
#
#   generic    x86-64: -march=x86-64 (SSE2); aarch64: -march=armv8-a
#   x86-64-v2  + SSE4.2, POPCNT, SSSE3               (x86-64 psABI levels)
#   x86-64-v3  + AVX, AVX2, FMA, BMI1/2, F16C, MOVBE
#   x86-64-v4  + AVX-512 F/BW/CD/DQ/VL
#   native     whatever the build machine has (-march=native); its binaries
#              may not run on another machine
#
# FMA from v3 up does not change results: every float kernel is compiled
# with -ffp-contract=off (C11 mode already defaults to it), so the oracle's
# rounding order holds at every level, and the matrix checks it.
set(KB_ISA "generic" CACHE STRING
    "Instruction-set level of the build: generic, x86-64-v2, x86-64-v3, x86-64-v4 or native")
set_property(CACHE KB_ISA PROPERTY STRINGS generic x86-64-v2 x86-64-v3 x86-64-v4 native)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(KB_ARCH x86_64)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(KB_ARCH aarch64)
else()
  message(FATAL_ERROR "kbench builds for x86-64 or aarch64, not '${CMAKE_SYSTEM_PROCESSOR}'")
endif()

if(KB_ISA STREQUAL "generic")
  if(KB_ARCH STREQUAL "x86_64")
    set(KB_ISA_FLAGS -march=x86-64 -mtune=generic)
  else()
    set(KB_ISA_FLAGS -march=armv8-a)
  endif()
elseif(KB_ISA MATCHES "^x86-64-v[234]$")
  if(NOT KB_ARCH STREQUAL "x86_64")
    message(FATAL_ERROR "KB_ISA=${KB_ISA} is an x86-64 level; this build is for ${KB_ARCH} "
                        "(use generic or native)")
  endif()
  set(KB_ISA_FLAGS -march=${KB_ISA} -mtune=generic)
elseif(KB_ISA STREQUAL "native")
  if(CMAKE_CROSSCOMPILING)
    message(FATAL_ERROR "KB_ISA=native describes the build machine, not the ${KB_ARCH} target "
                        "of a cross build (use generic)")
  endif()
  if(KB_ARCH STREQUAL "x86_64")
    set(KB_ISA_FLAGS -march=native)
  else()
    set(KB_ISA_FLAGS -mcpu=native) # aarch64 gcc spells it -mcpu
  endif()
else()
  message(FATAL_ERROR "KB_ISA='${KB_ISA}' is not one of: generic x86-64-v2 x86-64-v3 "
                      "x86-64-v4 native")
endif()

# Older compilers lack the x86-64-vN names (GCC 11, Clang 12): say so here
# rather than in the first compile error.
include(CheckCCompilerFlag)
set(CMAKE_REQUIRED_QUIET ON)
string(REPLACE ";" " " _kb_isa_flags_str "${KB_ISA_FLAGS}")
string(MAKE_C_IDENTIFIER "KB_ISA_FLAGS_OK_${KB_ARCH}_${KB_ISA}" _kb_isa_ok)
check_c_compiler_flag("${_kb_isa_flags_str}" ${_kb_isa_ok})
unset(CMAKE_REQUIRED_QUIET)
if(NOT ${_kb_isa_ok})
  message(FATAL_ERROR "KB_ISA=${KB_ISA}: ${CMAKE_C_COMPILER} does not accept ${_kb_isa_flags_str}")
endif()

add_compile_options(${KB_ISA_FLAGS})
message(STATUS "kbench: KB_ISA=${KB_ISA} (${KB_ARCH}): ${_kb_isa_flags_str}")
