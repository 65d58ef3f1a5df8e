// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_SYSTEM_ERROR_HPP
#define EVNET_DETAIL_SYSTEM_ERROR_HPP

#include <asio/error.hpp>

#include <cerrno>
#include <system_error>

namespace evnet::detail {

inline std::error_code lastError() noexcept { return {errno, std::system_category()}; }

// asio 1.22 reports system errors in its own category, whose codes do not compare equal to
// std::errc conditions; evnet reports every system error in std::system_category, as
// lastError() does, so that `ec == std::errc::connection_refused` holds whatever the source.
inline std::error_code systemError(std::error_code ec) noexcept {
  if (ec.category() == asio::system_category()) return {ec.value(), std::system_category()};
  return ec;
}

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_SYSTEM_ERROR_HPP
