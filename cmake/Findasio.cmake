# Findasio: standalone asio (header-only; Debian's libasio-dev ships no CMake config).
#
# Defines the imported target asio::asio and the variables asio_FOUND, asio_VERSION and
# asio_INCLUDE_DIR. Honours find_package's version argument.
include("${CMAKE_CURRENT_LIST_DIR}/evnetAsioVersion.cmake")
find_path(asio_INCLUDE_DIR NAMES asio.hpp asio/version.hpp)
if(asio_INCLUDE_DIR)
  evnet_asio_version("${asio_INCLUDE_DIR}" asio_VERSION)
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(asio REQUIRED_VARS asio_INCLUDE_DIR VERSION_VAR asio_VERSION)
mark_as_advanced(asio_INCLUDE_DIR)

if(asio_FOUND AND NOT TARGET asio::asio)
  find_package(Threads QUIET)
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${asio_INCLUDE_DIR}")
  if(TARGET Threads::Threads)
    set_property(TARGET asio::asio PROPERTY INTERFACE_LINK_LIBRARIES Threads::Threads)
  endif()
endif()
