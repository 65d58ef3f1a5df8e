# cmake -DBINARY_DIR=... -DTARGET=... -DMAX_BYTES=... [-DEXPECT_FAILURE=ON] -P build.cmake builds a
# compile-fail case and prints the build's output, then "compiler message too long" when the
# compiler's message (the output without the build tool's lines) is longer than MAX_BYTES. A wrong
# event name gets a message about as short as {fmt}'s format-string errors; this keeps it so.
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${BINARY_DIR}" --target "${TARGET}"
                OUTPUT_VARIABLE output ERROR_VARIABLE output RESULT_VARIABLE result)
message("${output}")
if(result EQUAL 0)
  return()
elseif(NOT EXPECT_FAILURE)  # a control case
  message(FATAL_ERROR "the control case does not compile")
endif()
string(REPLACE ";" "," output "${output}")
string(REPLACE "\n" ";" lines "${output}")
set(bytes 0)
set(skip_next OFF)
foreach(line IN LISTS lines)
  if(skip_next)  # Ninja prints the failed command after "FAILED:"
    set(skip_next OFF)
  elseif(line MATCHES "^FAILED:")
    set(skip_next ON)
  elseif(NOT line MATCHES "^(\\[ *[0-9]+%\\]|g?make|ninja|Built target|Consolidate|Scanning)")
    string(LENGTH "${line}" length)
    math(EXPR bytes "${bytes} + ${length} + 1")
  endif()
endforeach()
message("compiler message: ${bytes} bytes")
if(bytes GREATER MAX_BYTES)
  message("compiler message too long: ${bytes} bytes, more than ${MAX_BYTES}")
endif()
