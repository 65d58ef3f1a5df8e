# Catch2 for the benchmarks: the installed one (2.x or 3.x, e.g. Debian's catch2), else 3.x
# fetched. The major version is told by the targets, not Catch2_VERSION (empty for a fetched
# Catch2): Catch2::Catch2 is a header-only INTERFACE target in 2.x, a compiled library in 3.x.
# Defines evnet_catch2, which links Catch2 and defines EVNET_CATCH2_MAJOR.
set(EVNET_CATCH2_FETCH_TAG v3.4.0)
find_package(Catch2 QUIET)
if(TARGET Catch2::Catch2)
  message(STATUS "evnet: Catch2 ${Catch2_VERSION} found in ${Catch2_DIR}")
else()
  include(FetchContent)
  FetchContent_Declare(Catch2 GIT_REPOSITORY https://github.com/catchorg/Catch2.git
                              GIT_TAG ${EVNET_CATCH2_FETCH_TAG} GIT_SHALLOW TRUE)
  if(FETCHCONTENT_SOURCE_DIR_CATCH2)
    message(STATUS "evnet: Catch2 not found; using the source tree "
                   "FETCHCONTENT_SOURCE_DIR_CATCH2=${FETCHCONTENT_SOURCE_DIR_CATCH2}")
  else()
    message(STATUS "evnet: Catch2 not found; fetching ${EVNET_CATCH2_FETCH_TAG} from GitHub")
  endif()
  FetchContent_MakeAvailable(Catch2)  # as a subproject Catch2 installs nothing
endif()

add_library(evnet_catch2 INTERFACE)
get_target_property(catch2_type Catch2::Catch2 TYPE)
if(catch2_type STREQUAL "INTERFACE_LIBRARY")  # 2.x: one header (2.13 also has a WithMain)
  target_link_libraries(evnet_catch2 INTERFACE Catch2::Catch2)
  target_compile_definitions(evnet_catch2 INTERFACE EVNET_CATCH2_MAJOR=2)
else()  # 3.x: a compiled library
  target_link_libraries(evnet_catch2 INTERFACE Catch2::Catch2WithMain)
  target_compile_definitions(evnet_catch2 INTERFACE EVNET_CATCH2_MAJOR=3)
endif()
