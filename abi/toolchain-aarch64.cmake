# Cross-compiling kbench for aarch64 Linux on a Debian x86-64 machine.
#
#   cmake --preset aarch64-cross        (or -DCMAKE_TOOLCHAIN_FILE=abi/toolchain-aarch64.cmake)
#
# Needs gcc-aarch64-linux-gnu, and the arm64 builds of the libraries kbench
# links, installed side by side with the native ones through Debian multiarch:
#
#   dpkg --add-architecture arm64 && apt-get update
#   apt-get install gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libxxhash-dev:arm64 \
#     libseccomp-dev:arm64
#   # and, for KB_TESTS=ON: libcmocka-dev:arm64 libjansson-dev:arm64 libffi-dev:arm64
#
# Multiarch puts them in /usr/lib/aarch64-linux-gnu with their headers in
# /usr/include, so the search root stays "/" and only pkg-config is pointed
# at the arm64 .pc files; the cross toolchain's own libc lives in
# /usr/aarch64-linux-gnu. Run the result with qemu-aarch64 (qemu-user):
#
#   KB_WORKER_EXEC_PREFIX=/usr/bin/qemu-aarch64 qemu-aarch64 build-aarch64-cross/kbench verify ...
#
# with no -L / QEMU_LD_PREFIX: libc6:arm64 (multiarch) provides the loader at
# /lib/ld-linux-aarch64.so.1, and Debian 12's qemu 7.2 hangs a forked child of
# a dynamic program when a prefix is given. KB_WORKER_EXEC_PREFIX makes the
# host start its workers through qemu too (docs/matrix.md).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(KB_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${KB_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${KB_CROSS_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${KB_CROSS_TRIPLE})

set(CMAKE_FIND_ROOT_PATH /usr/${KB_CROSS_TRIPLE} /)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The host's pkg-config would hand out the x86-64 libraries.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${KB_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# How try_run and tests would run a target binary; ctest uses it too.
find_program(KB_QEMU_AARCH64 qemu-aarch64)
if(KB_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${KB_QEMU_AARCH64})
endif()
