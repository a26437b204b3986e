# kbench_add_plugin(<name> TARGET <target> [ORACLE] [OUTPUT_DIR dir] [FILE_NAME base]
#                   SOURCES src... [LIBS lib...])
#
# Builds a kbench plugin: a MODULE library with hidden visibility, so the .so
# exports only kb_plugin_entry_v1 (and kb_target_entry_v1 for an oracle).
# Plugins land in <build>/plugins/<target>/<name>.so and oracles in
# <build>/oracles/<target>/oracle.so, unless OUTPUT_DIR says otherwise.
# FILE_NAME sets the file's base name (default: the CMake target's name);
# LIBS are linked privately (a static library is linked into the .so).
#
# The same file serves in-tree (included by the top-level CMakeLists.txt)
# and installed (included by kbenchConfig.cmake after find_package(kbench)):
# either way kbench::plugin, which carries the include directory of the
# header, exists before this is called.
function(kbench_add_plugin name)
  cmake_parse_arguments(KB "ORACLE" "TARGET;OUTPUT_DIR;FILE_NAME" "SOURCES;LIBS" ${ARGN})
  if(NOT KB_TARGET)
    message(FATAL_ERROR "kbench_add_plugin(${name}): TARGET <target-name> is required")
  endif()
  add_library(${name} MODULE ${KB_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX "" C_VISIBILITY_PRESET hidden CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(TARGET kbench::plugin)
    target_link_libraries(${name} PRIVATE kbench::plugin)
  endif()
  if(KB_LIBS)
    target_link_libraries(${name} PRIVATE ${KB_LIBS})
  endif()
  # Two builds of one source at different addresses differ in speed by a
  # few percent from where their loops fall on cache lines (the
  # posting-intersect baseline, the oracle's own merge, measured 0.96-0.99
  # of the oracle); functions and loops on 64-byte lines take that lottery
  # out of comparisons between plugins built here.
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${name} PRIVATE -falign-functions=64 -falign-loops=64)
  endif()
  # Undefined symbols are an error at link time, not a surprise at dlopen.
  target_link_options(${name} PRIVATE -Wl,--no-undefined -Wl,-z,now)
  if(NOT KB_OUTPUT_DIR)
    if(KB_ORACLE)
      set(KB_OUTPUT_DIR ${CMAKE_BINARY_DIR}/oracles/${KB_TARGET})
    else()
      set(KB_OUTPUT_DIR ${CMAKE_BINARY_DIR}/plugins/${KB_TARGET})
    endif()
  endif()
  set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${KB_OUTPUT_DIR})
  if(KB_FILE_NAME)
    set_target_properties(${name} PROPERTIES OUTPUT_NAME ${KB_FILE_NAME})
  endif()
endfunction()
