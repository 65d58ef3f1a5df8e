# cmake -DNM=nm -DHEADER_ONLY=a.o -DCOMPILED=b.o -P compiled_mode_check.cmake: the same test file
# built header-only and in compiled mode (EVNET_SEPARATE_COMPILATION). The header-only object
# defines functions of SocketImpl<PlainLayer> (inline copies); the compiled-mode one must define
# none, since they come from <evnet/impl/src.hpp>'s file: that is what saves its compile time.
set(pattern " [TW] evnet::detail::SocketImpl<evnet::detail::PlainLayer>::[A-Za-z]+\\(")
foreach(kind HEADER_ONLY COMPILED)
  execute_process(COMMAND "${NM}" -C "${${kind}}" OUTPUT_VARIABLE symbols RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${${kind}}")
  endif()
  string(REGEX MATCHALL "${pattern}[^\n]*" defined "${symbols}")
  list(LENGTH defined count_${kind})
endforeach()
if(count_HEADER_ONLY EQUAL 0)
  message(FATAL_ERROR "the header-only object defines no SocketImpl function: the check sees nothing")
endif()
if(NOT count_COMPILED EQUAL 0)
  message(FATAL_ERROR "the compiled-mode object defines ${count_COMPILED} SocketImpl functions "
                      "(header-only: ${count_HEADER_ONLY}): they are not extern")
endif()
message(STATUS "SocketImpl functions defined: header-only ${count_HEADER_ONLY}, compiled mode 0")
