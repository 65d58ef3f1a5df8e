# Finds evnet's dependencies, fetching them only when they are missing.
include(GNUInstallDirs)
find_package(Threads REQUIRED)

set(EVNET_ASIO_MIN_VERSION 1.22)
set(EVNET_ASIO_FETCH_TAG asio-1-30-2)  # pinned release fetched when no asio is installed

if(NOT TARGET asio::asio)
  find_package(asio ${EVNET_ASIO_MIN_VERSION} QUIET MODULE)
endif()
if(NOT TARGET asio::asio)
  # Offline: -DFETCHCONTENT_SOURCE_DIR_ASIO=/path/to/asio (a checkout of chriskohlhoff/asio).
  message(STATUS "evnet: standalone asio not found, fetching ${EVNET_ASIO_FETCH_TAG}")
  include(FetchContent)
  FetchContent_Declare(asio GIT_REPOSITORY https://github.com/chriskohlhoff/asio.git
                            GIT_TAG ${EVNET_ASIO_FETCH_TAG} GIT_SHALLOW TRUE)
  FetchContent_GetProperties(asio)
  if(NOT asio_POPULATED)
    FetchContent_Populate(asio)
  endif()
  set(EVNET_FETCHED_ASIO_INCLUDE_DIR "${asio_SOURCE_DIR}/asio/include")
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES INTERFACE_INCLUDE_DIRECTORIES
                                              "${EVNET_FETCHED_ASIO_INCLUDE_DIR}")
endif()
