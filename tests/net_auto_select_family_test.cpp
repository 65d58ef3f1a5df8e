// net::setDefaultAutoSelectFamily and friends: Node 20's defaults and its checks of the values,
// as Node 20 prints them.
#include <evnet/net/auto_select_family.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace net = evnet::net;
using namespace std::chrono_literals;

namespace {
// Each case starts from Node's defaults and leaves them as it found them.
struct Defaults {
  Defaults() { restore(); }
  ~Defaults() { restore(); }
  static void restore() {
    net::setDefaultAutoSelectFamily(true);
    net::setDefaultAutoSelectFamilyAttemptTimeout(250ms);
  }
};
}  // namespace

TEST_CASE("autoSelectFamily is on by default and can be turned off and on") {
  CHECK(net::getDefaultAutoSelectFamily());
  const Defaults defaults;
  net::setDefaultAutoSelectFamily(false);
  CHECK(!net::getDefaultAutoSelectFamily());
  net::setDefaultAutoSelectFamily(true);
  CHECK(net::getDefaultAutoSelectFamily());
}

TEST_CASE("the attempt timeout is 250 ms by default, at least 10 ms, at most 2^31 - 1 ms") {
  CHECK(net::getDefaultAutoSelectFamilyAttemptTimeout() == 250ms);
  const Defaults defaults;
  net::setDefaultAutoSelectFamilyAttemptTimeout(11);
  CHECK(net::getDefaultAutoSelectFamilyAttemptTimeout() == 11ms);
  for (const int below : {1, 5, 9, 10}) {
    net::setDefaultAutoSelectFamilyAttemptTimeout(below);
    CHECK(net::getDefaultAutoSelectFamilyAttemptTimeout() == 10ms);
  }
  constexpr std::int32_t max = std::numeric_limits<std::int32_t>::max();
  net::setDefaultAutoSelectFamilyAttemptTimeout(max);
  CHECK(net::getDefaultAutoSelectFamilyAttemptTimeout().count() == max);

  net::setDefaultAutoSelectFamilyAttemptTimeout(300ms);
  CHECK_THROWS_AS(net::setDefaultAutoSelectFamilyAttemptTimeout(0), std::out_of_range);
  CHECK_THROWS_AS(net::setDefaultAutoSelectFamilyAttemptTimeout(-1), std::out_of_range);
  CHECK_THROWS_AS(net::setDefaultAutoSelectFamilyAttemptTimeout(std::int64_t{max} + 1),
                  std::out_of_range);
  CHECK_THROWS_AS(
      net::setDefaultAutoSelectFamilyAttemptTimeout(std::numeric_limits<std::uint64_t>::max()),
      std::out_of_range);
  CHECK(net::getDefaultAutoSelectFamilyAttemptTimeout() ==
        300ms);  // a refused value changes nothing
}
