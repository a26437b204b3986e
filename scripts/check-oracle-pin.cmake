# cmake -DPIN_TOOL=<kbench_pin> -DORACLE_DIR=<oracles/T> -DSTAMP=<file> -P check-oracle-pin.cmake
#
# Run by the build before each oracle is compiled (oracles/CMakeLists.txt):
# fails the build when the oracle's sources no longer match oracles/T/PIN, with
# a message naming the file and the command that re-pins it. An oracle is the
# fixed point every ledger line is measured against; changing it silently
# would make old and new results look comparable when they are not.
foreach(v PIN_TOOL ORACLE_DIR STAMP)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check-oracle-pin.cmake: -D${v}=... is required")
  endif()
endforeach()
execute_process(COMMAND ${PIN_TOOL} check ${ORACLE_DIR}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  string(STRIP "${out}" out)
  message(FATAL_ERROR "oracle pin check failed:\n  ${out}\n")
endif()
file(TOUCH ${STAMP})
