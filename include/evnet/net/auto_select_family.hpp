// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_AUTO_SELECT_FAMILY_HPP
#define EVNET_NET_AUTO_SELECT_FAMILY_HPP

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

namespace evnet::net {

namespace detail {
inline std::atomic<bool> autoSelectFamilyDefault{true};
inline std::atomic<std::int64_t> autoSelectFamilyAttemptTimeoutMs{250};
}  // namespace detail

/// The default of connect's autoSelectFamily option (Happy Eyeballs): true, as in Node 20
/// (Node: net.getDefaultAutoSelectFamily()). Process-wide, safe from any thread.
inline bool getDefaultAutoSelectFamily() noexcept {
  return detail::autoSelectFamilyDefault.load(std::memory_order_relaxed);
}

/// Sets the default of connect's autoSelectFamily option (Node: net.setDefaultAutoSelectFamily).
inline void setDefaultAutoSelectFamily(bool value) noexcept {
  detail::autoSelectFamilyDefault.store(value, std::memory_order_relaxed);
}

/// The default of connect's autoSelectFamilyAttemptTimeout option: how long one address is
/// tried before the next one is tried too; 250 ms (Node:
/// net.getDefaultAutoSelectFamilyAttemptTimeout()).
inline std::chrono::milliseconds getDefaultAutoSelectFamilyAttemptTimeout() noexcept {
  return std::chrono::milliseconds(
      detail::autoSelectFamilyAttemptTimeoutMs.load(std::memory_order_relaxed));
}

/// Sets that default; values below 10 ms become 10 ms, as in Node. Throws std::out_of_range
/// outside 1 ms to 2^31 - 1 ms (Node: ERR_OUT_OF_RANGE) (Node:
/// net.setDefaultAutoSelectFamilyAttemptTimeout).
inline void setDefaultAutoSelectFamilyAttemptTimeout(std::chrono::milliseconds value) {
  constexpr std::int64_t max = std::numeric_limits<std::int32_t>::max();
  if (value.count() < 1 || value.count() > max)
    throw std::out_of_range(
        "evnet: The value of \"value\" is out of range. It must be >= 1 && <= 2147483647. "
        "Received " +
        std::to_string(value.count()));
  detail::autoSelectFamilyAttemptTimeoutMs.store(value.count() < 10 ? 10 : value.count(),
                                                 std::memory_order_relaxed);
}
/// The same with the value in milliseconds, as Node writes it: (250).
inline void setDefaultAutoSelectFamilyAttemptTimeout(std::integral auto ms) {
  using Rep = std::chrono::milliseconds::rep;
  const Rep value = std::in_range<Rep>(ms) ? static_cast<Rep>(ms) : std::numeric_limits<Rep>::max();
  setDefaultAutoSelectFamilyAttemptTimeout(std::chrono::milliseconds(value));
}

}  // namespace evnet::net

#endif  // EVNET_NET_AUTO_SELECT_FAMILY_HPP
