# Findasio: standalone asio (header-only; Debian's libasio-dev ships no CMake config).
#
# Defines the imported target asio::asio and the variables asio_FOUND, asio_VERSION and
# asio_INCLUDE_DIR. Honours find_package's version argument.
find_path(asio_INCLUDE_DIR NAMES asio.hpp asio/version.hpp)

if(asio_INCLUDE_DIR AND EXISTS "${asio_INCLUDE_DIR}/asio/version.hpp")
  file(STRINGS "${asio_INCLUDE_DIR}/asio/version.hpp" _asio_version_line
       REGEX "^#define ASIO_VERSION [0-9]+")
  string(REGEX REPLACE "^#define ASIO_VERSION ([0-9]+).*" "\\1" _asio_version "${_asio_version_line}")
  math(EXPR _asio_major "${_asio_version} / 100000")
  math(EXPR _asio_minor "${_asio_version} / 100 % 1000")
  math(EXPR _asio_patch "${_asio_version} % 100")
  set(asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
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
