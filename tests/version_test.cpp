#include <evnet/version.hpp>

#include <doctest/doctest.h>

#include <string>

TEST_CASE("the header's version is the CMake project's version") {
  const std::string fromMacros = std::to_string(EVNET_VERSION_MAJOR) + "." +
                                 std::to_string(EVNET_VERSION_MINOR) + "." +
                                 std::to_string(EVNET_VERSION_PATCH);
  CHECK(fromMacros == EVNET_PROJECT_VERSION);
  CHECK(std::string(evnet::version) == EVNET_PROJECT_VERSION);
}

TEST_CASE("EVNET_VERSION orders versions numerically") {
  CHECK(EVNET_VERSION ==
        EVNET_VERSION_MAJOR * 10000 + EVNET_VERSION_MINOR * 100 + EVNET_VERSION_PATCH);
}
