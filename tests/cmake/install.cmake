# cmake -DBUILD_DIR=<dir> -DPREFIX=<dir> [-DBUNDLED_ASIO=ON] [-DSOURCE_DIR=<evnet> -DGENERATOR=<g>
#       -DCXX=<compiler> -DASIO_SOURCE=<dir> [-DDOCTEST_SOURCE=<dir>]] -P install.cmake
# Installs evnet from BUILD_DIR into PREFIX and checks that only evnet was installed: its
# headers, its CMake package and, when asio was fetched (BUNDLED_ASIO), asio under
# include/evnet-asio, where it shadows no other asio. With SOURCE_DIR, first configures evnet
# there with asio fetched from ASIO_SOURCE (and, with DOCTEST_SOURCE, its tests on with doctest
# fetched from there).
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${ARGV}")
  endif()
endfunction()

file(REMOVE_RECURSE "${PREFIX}")
set(bundled_asio "${BUNDLED_ASIO}")
if(SOURCE_DIR)
  set(bundled_asio TRUE)
  set(tests -DEVNET_BUILD_TESTS=OFF)
  if(DOCTEST_SOURCE)
    set(tests -DEVNET_BUILD_TESTS=ON -DCMAKE_DISABLE_FIND_PACKAGE_doctest=ON
              -DFETCHCONTENT_SOURCE_DIR_DOCTEST=${DOCTEST_SOURCE})
  endif()
  file(REMOVE_RECURSE "${BUILD_DIR}")
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BUILD_DIR} -G ${GENERATOR}
      -DCMAKE_CXX_COMPILER=${CXX} -DEVNET_INSTALL=ON -DEVNET_BUILD_EXAMPLES=OFF ${tests}
      -DCMAKE_DISABLE_FIND_PACKAGE_asio=ON -DFETCHCONTENT_SOURCE_DIR_ASIO=${ASIO_SOURCE})
endif()
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${PREFIX})

file(GLOB_RECURSE installed RELATIVE "${PREFIX}" LIST_DIRECTORIES false "${PREFIX}/*")
set(allowed "^(include/evnet/|share/cmake/evnet/)")
if(bundled_asio)
  set(allowed "^(include/evnet/|include/evnet-asio/asio/|include/evnet-asio/asio.hpp$|share/cmake/evnet/)")
endif()
foreach(file IN LISTS installed)
  if(NOT file MATCHES "${allowed}")
    message(FATAL_ERROR "installed what is not evnet's: ${PREFIX}/${file}")
  endif()
endforeach()
foreach(file include/evnet/evnet.hpp share/cmake/evnet/evnetConfig.cmake
             share/cmake/evnet/evnetTargets.cmake share/cmake/evnet/Findasio.cmake)
  if(NOT EXISTS "${PREFIX}/${file}")
    message(FATAL_ERROR "not installed: ${PREFIX}/${file}")
  endif()
endforeach()
if(bundled_asio AND NOT EXISTS "${PREFIX}/include/evnet-asio/asio/version.hpp")
  message(FATAL_ERROR "the fetched asio was not installed in ${PREFIX}/include/evnet-asio")
endif()
list(LENGTH installed count)
message(STATUS "installed ${count} files, all evnet's")
