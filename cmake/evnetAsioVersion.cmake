# evnet_asio_version(<include-dir> <out-var>): the version of the asio headers in <include-dir>
# ("1.30.2"), read from asio/version.hpp; empty when there is none.
function(evnet_asio_version include_dir out_var)
  set(version "")
  if(EXISTS "${include_dir}/asio/version.hpp")
    file(STRINGS "${include_dir}/asio/version.hpp" line REGEX "^#define ASIO_VERSION [0-9]+")
    string(REGEX REPLACE "^#define ASIO_VERSION ([0-9]+).*" "\\1" number "${line}")
    math(EXPR major "${number} / 100000")
    math(EXPR minor "${number} / 100 % 1000")
    math(EXPR patch "${number} % 100")
    set(version "${major}.${minor}.${patch}")
  endif()
  set(${out_var} "${version}" PARENT_SCOPE)
endfunction()
