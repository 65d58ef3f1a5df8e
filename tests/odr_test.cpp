// The umbrella header included from two translation units linked into one program: any
// non-inline definition in a header would break the link (one definition rule).
#include <evnet/evnet.hpp>

#include <doctest/doctest.h>

#include <string_view>

std::string_view versionSeenBySecondTranslationUnit();

TEST_CASE("two translation units that include evnet.hpp link into one program") {
  CHECK(versionSeenBySecondTranslationUnit() == evnet::version);
}
