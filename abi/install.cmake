# install.cmake -- what `cmake --install` puts under the prefix, and the
# plugin SDK third parties build against:
#
#   bin/kbench                              the host
#   include/kbench/kbench.h                 the plugin ABI, as <kbench/kbench.h>
#   lib/kbench/oracles/<target>/oracle.so   the frozen oracles, found by bin/kbench
#   lib/kbench/plugins/<target>/<name>.so   the built-in candidates, for --against
#   lib/cmake/kbench/                       find_package(kbench): kbench::plugin,
#                                           kbench::kbench, kbench_add_plugin()
#   lib/pkgconfig/kbench.pc                 the same flags for Makefiles
#   share/kbench/src/{oracles/<t>,generators}  the oracles' pinned sources and
#                                           their PIN, which `kbench list` checks
#   share/doc/kbench/                       every page of docs/ and the example
#
# Plain lib/, not GNUInstallDirs' multiarch libdir: the host looks for its
# oracles in <prefix>/lib/kbench/oracles (host/CMakeLists.txt bakes
# KB_INSTALL_ORACLE_DIR from it; host/core/oracles.c also tries the prefix the
# binary sits in, so an install moved with --prefix still finds them).
#
# Plugins need no generators library: a candidate gets its inputs from the
# host. Nothing that links the host is installed, because plugins never do.
include(CMakePackageConfigHelpers)

set(KB_INSTALL_CMAKEDIR lib/cmake/kbench)
# The ABI version, from the header itself, for the package and kbench.pc.
file(STRINGS ${CMAKE_SOURCE_DIR}/abi/kbench.h kb_abi_lines REGEX "^#define KB_ABI_M(AJ|IN)OR ")
foreach(l IN LISTS kb_abi_lines)
  if(l MATCHES "^#define (KB_ABI_M[A-Z]+) ([0-9]+)")
    set(${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endif()
endforeach()

# The ABI: one header, one interface target carrying its include directory.
install(FILES ${CMAKE_SOURCE_DIR}/abi/kbench.h DESTINATION include/kbench)
target_include_directories(kbench_abi INTERFACE $<INSTALL_INTERFACE:include>)
set_target_properties(kbench_abi PROPERTIES EXPORT_NAME plugin)
install(TARGETS kbench_abi EXPORT kbenchTargets)

if(TARGET kbench)
  install(TARGETS kbench EXPORT kbenchTargets RUNTIME DESTINATION bin)
endif()

# Every plugin built under oracles/ and plugins/ (whoever added it), at the
# path it has in the build tree: build/oracles/pq-l2/oracle.so becomes
# lib/kbench/oracles/pq-l2/oracle.so, build/plugins/pq-l2/avx512.so becomes
# lib/kbench/plugins/pq-l2/avx512.so.
function(kb__install_plugins_in dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    get_target_property(out ${t} LIBRARY_OUTPUT_DIRECTORY)
    if(NOT type STREQUAL "MODULE_LIBRARY" OR NOT out)
      continue()
    endif()
    file(RELATIVE_PATH rel ${CMAKE_BINARY_DIR} ${out})
    if(rel MATCHES "^(oracles|plugins)/[^/]+$")
      install(TARGETS ${t} LIBRARY DESTINATION lib/kbench/${rel})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(d IN LISTS subdirs)
    kb__install_plugins_in(${d})
  endforeach()
endfunction()
foreach(d oracles plugins)
  if(EXISTS ${CMAKE_SOURCE_DIR}/${d}/CMakeLists.txt)
    kb__install_plugins_in(${CMAKE_SOURCE_DIR}/${d})
  endif()
endforeach()

# The CMake package. Everything in it is relative to the config file, so a
# prefix copied or moved elsewhere still works.
install(EXPORT kbenchTargets NAMESPACE kbench:: DESTINATION ${KB_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/abi/kbenchConfig.cmake.in
  ${CMAKE_BINARY_DIR}/kbenchConfig.cmake INSTALL_DESTINATION ${KB_INSTALL_CMAKEDIR})
# The package version is kbench's; plugins care about the ABI major, which
# the header carries and the host checks at load time.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/kbenchConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/kbenchConfig.cmake ${CMAKE_BINARY_DIR}/kbenchConfigVersion.cmake
  ${CMAKE_SOURCE_DIR}/abi/kbench-plugin.cmake DESTINATION ${KB_INSTALL_CMAKEDIR})

# The oracles' sources with their PIN and the generator library the PIN
# covers, in the source tree's layout: an installed `kbench list` checks the
# pins against these (host/core/pin.c), never against the checkout it was
# built from.
file(GLOB kb_oracle_dirs LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/oracles/*)
foreach(d IN LISTS kb_oracle_dirs)
  if(IS_DIRECTORY ${d} AND EXISTS ${d}/PIN)
    get_filename_component(t ${d} NAME)
    install(DIRECTORY ${d}/ DESTINATION share/kbench/src/oracles/${t} PATTERN ".*" EXCLUDE)
  endif()
endforeach()
install(DIRECTORY ${CMAKE_SOURCE_DIR}/generators/ DESTINATION share/kbench/src/generators
  PATTERN ".*" EXCLUDE)

# pkg-config: its prefix is computed from where the .pc file lies, so it
# stays right under any --prefix.
configure_file(${CMAKE_SOURCE_DIR}/abi/kbench.pc.in ${CMAKE_BINARY_DIR}/kbench.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/kbench.pc DESTINATION lib/pkgconfig)

# README.md and every file of docs/ (pages, images, the out-of-tree example),
# staged by the build with their relative links rewritten to work under
# share/doc/kbench (scripts/stage-docs.cmake).
file(GLOB_RECURSE kb_doc_files CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/docs/*)
list(FILTER kb_doc_files EXCLUDE REGEX "/build/|\\.(so|o)$")
set(kb_doc_stage ${CMAKE_BINARY_DIR}/share-doc-kbench)
add_custom_command(OUTPUT ${kb_doc_stage}.stamp
  COMMAND ${CMAKE_COMMAND} -DSRC=${CMAKE_SOURCE_DIR} -DOUT=${kb_doc_stage}
          -P ${CMAKE_SOURCE_DIR}/scripts/stage-docs.cmake
  COMMAND ${CMAKE_COMMAND} -E touch ${kb_doc_stage}.stamp
  DEPENDS ${kb_doc_files} ${CMAKE_SOURCE_DIR}/README.md ${CMAKE_SOURCE_DIR}/scripts/stage-docs.cmake
  COMMENT "Staging docs/ for share/doc/kbench" VERBATIM)
add_custom_target(kbench_docs ALL DEPENDS ${kb_doc_stage}.stamp)
install(DIRECTORY ${kb_doc_stage}/ DESTINATION share/doc/kbench)
