# Finds evnet's dependencies: Threads, standalone asio (found, else fetched) and, for evnet::tls,
# OpenSSL 3 (found, never fetched).
include(GNUInstallDirs)
find_package(Threads REQUIRED)

set(EVNET_ASIO_MIN_VERSION 1.22)
set(EVNET_ASIO_FETCH_TAG asio-1-30-2)  # pinned release fetched when no asio is installed

if(TARGET asio::asio)
  message(STATUS "evnet: asio from the existing target asio::asio")
else()
  find_package(asio ${EVNET_ASIO_MIN_VERSION} QUIET MODULE)
  if(asio_FOUND)
    message(STATUS "evnet: asio ${asio_VERSION} found in ${asio_INCLUDE_DIR}")
  endif()
endif()
if(NOT TARGET asio::asio)
  include(FetchContent)
  # asio has no CMakeLists.txt: SOURCE_SUBDIR names a folder without one, so that
  # FetchContent_MakeAvailable only downloads (FetchContent_Populate(asio) is deprecated, CMP0169).
  FetchContent_Declare(asio GIT_REPOSITORY https://github.com/chriskohlhoff/asio.git
                            GIT_TAG ${EVNET_ASIO_FETCH_TAG} GIT_SHALLOW TRUE SOURCE_SUBDIR include)
  if(FETCHCONTENT_SOURCE_DIR_ASIO)
    message(STATUS "evnet: asio not found; using the source tree FETCHCONTENT_SOURCE_DIR_ASIO="
                   "${FETCHCONTENT_SOURCE_DIR_ASIO}")
  else()
    message(STATUS "evnet: asio not found; fetching ${EVNET_ASIO_FETCH_TAG} from GitHub "
                   "(offline: -DFETCHCONTENT_SOURCE_DIR_ASIO=/path/to/asio)")
  endif()
  FetchContent_MakeAvailable(asio)
  # Up to 1.36 the headers are in asio/include; from 1.38 in include (asio/include links there).
  foreach(dir "${asio_SOURCE_DIR}/include" "${asio_SOURCE_DIR}/asio/include")
    if(EXISTS "${dir}/asio/version.hpp")
      file(REAL_PATH "${dir}" EVNET_FETCHED_ASIO_INCLUDE_DIR)
      break()
    endif()
  endforeach()
  if(NOT EVNET_FETCHED_ASIO_INCLUDE_DIR)
    message(FATAL_ERROR "evnet: no asio/version.hpp in ${asio_SOURCE_DIR}/include or "
                        "${asio_SOURCE_DIR}/asio/include: is it a checkout of chriskohlhoff/asio?")
  endif()
  include(evnetAsioVersion)
  evnet_asio_version("${EVNET_FETCHED_ASIO_INCLUDE_DIR}" EVNET_FETCHED_ASIO_VERSION)
  if(EVNET_FETCHED_ASIO_VERSION VERSION_LESS EVNET_ASIO_MIN_VERSION)
    message(FATAL_ERROR "evnet: asio ${EVNET_FETCHED_ASIO_VERSION} in ${asio_SOURCE_DIR} is older "
                        "than ${EVNET_ASIO_MIN_VERSION}")
  endif()
  message(STATUS "evnet: asio ${EVNET_FETCHED_ASIO_VERSION} from ${EVNET_FETCHED_ASIO_INCLUDE_DIR}")
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
                                              "${EVNET_FETCHED_ASIO_INCLUDE_DIR}")
endif()

option(EVNET_TLS "Define evnet::tls (needs OpenSSL 3, which is never fetched)" ON)
if(EVNET_TLS)
  find_package(OpenSSL 3 QUIET)
  if(OpenSSL_FOUND)
    message(STATUS "evnet: OpenSSL ${OPENSSL_VERSION} found; evnet::tls is defined")
  else()
    message(STATUS "evnet: OpenSSL 3 not found; evnet::tls is not defined "
                   "(Debian: apt-get install libssl-dev)")
  endif()
else()
  message(STATUS "evnet: EVNET_TLS is OFF; evnet::tls is not defined")
endif()

# The io_uring transport (Linux): on by default where liburing is found; the core builds without.
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
  find_package(liburing QUIET MODULE)
endif()
if(liburing_FOUND)
  option(EVNET_IO_URING "Build the io_uring transport (needs liburing)" ON)
else()
  option(EVNET_IO_URING "Build the io_uring transport (needs liburing)" OFF)
endif()
if(EVNET_IO_URING AND NOT liburing_FOUND)
  message(FATAL_ERROR "evnet: EVNET_IO_URING is ON but liburing was not found "
                      "(Debian: apt-get install liburing-dev)")
endif()
if(EVNET_IO_URING)
  message(STATUS "evnet: liburing found; the io_uring transport is built")
else()
  message(STATUS "evnet: the io_uring transport is not built (EVNET_IO_URING is OFF)")
endif()
