# cmake -DDEST=<dir> -DASIO_INCLUDE_DIR=<dir> -DDOCTEST_INCLUDE_DIR=<dir> -DDOCTEST_MODULE=<file>
#       -P fake_sources.cmake
# Lays out installed asio and doctest headers as source trees of their repositories, for
# FETCHCONTENT_SOURCE_DIR_<NAME>: <DEST>/asio as asio 1.38 (include/, and asio/include a symbolic
# link to it) with ASIO_VERSION's patch number set to 99, and <DEST>/doctest as doctest 2.4.
file(REMOVE_RECURSE "${DEST}")
file(MAKE_DIRECTORY "${DEST}/asio/include" "${DEST}/asio/asio")
file(COPY "${ASIO_INCLUDE_DIR}/asio.hpp" "${ASIO_INCLUDE_DIR}/asio"
     DESTINATION "${DEST}/asio/include")
file(CREATE_LINK ../include "${DEST}/asio/asio/include" SYMBOLIC)
set(version_hpp "${DEST}/asio/include/asio/version.hpp")
file(READ "${version_hpp}" text)
string(REGEX REPLACE "(#define ASIO_VERSION [0-9]+)[0-9][0-9]" "\\199" text "${text}")
file(WRITE "${version_hpp}" "${text}")

get_filename_component(doctest_module_dir "${DOCTEST_MODULE}" DIRECTORY)
file(COPY "${DOCTEST_INCLUDE_DIR}/doctest/doctest.h" DESTINATION "${DEST}/doctest/doctest")
file(COPY "${DOCTEST_MODULE}" "${doctest_module_dir}/doctestAddTests.cmake"
     DESTINATION "${DEST}/doctest/scripts/cmake")
