# cmake -DNM=nm -DHEADER_ONLY=a.o -DCOMPILED=b.o -P compiled_mode_check.cmake: the same test file
# built header-only and in compiled mode (EVNET_SEPARATE_COMPILATION). The header-only object
# defines functions of the socket's and the server's classes (inline copies); the compiled-mode
# one must define none, since they come from <evnet/impl/src.hpp>'s file: that is what saves its
# compile time.
set(classes
    "SocketImpl<evnet::detail::PlainLayer>"
    "ServerImpl<evnet::net::detail::ServerTraits>"
    "ServerHandle<evnet::net::Server, evnet::detail::ServerImpl<evnet::net::detail::ServerTraits> >")
foreach(kind HEADER_ONLY COMPILED)
  execute_process(COMMAND "${NM}" -C "${${kind}}" OUTPUT_VARIABLE symbols_${kind}
                  RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "${NM} failed on ${${kind}}")
  endif()
endforeach()
set(seen 0)
foreach(class IN LISTS classes)
  # Only the name's text is matched: escape what a regular expression reads otherwise.
  string(REGEX REPLACE "([][+.*?()^$<>|\\\\])" "\\\\\\1" escaped "${class}")
  set(pattern " [TW] evnet::detail::${escaped}::[A-Za-z]+\\(")
  foreach(kind HEADER_ONLY COMPILED)
    string(REGEX MATCHALL "${pattern}[^\n]*" defined "${symbols_${kind}}")
    list(LENGTH defined count_${kind})
  endforeach()
  math(EXPR seen "${seen} + ${count_HEADER_ONLY}")
  if(NOT count_COMPILED EQUAL 0)
    message(FATAL_ERROR "the compiled-mode object defines ${count_COMPILED} functions of ${class} "
                        "(header-only: ${count_HEADER_ONLY}): they are not extern")
  endif()
  message(STATUS "${class}: functions defined header-only ${count_HEADER_ONLY}, compiled mode 0")
endforeach()
# An optimised build may inline every function of one class into its callers (ServerHandle's, at
# -O3); all of them inlined would mean the pattern matches nothing.
if(seen EQUAL 0)
  message(FATAL_ERROR "the header-only object defines no function of these classes: "
                      "the check sees nothing")
endif()
