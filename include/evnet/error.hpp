// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_ERROR_HPP
#define EVNET_ERROR_HPP

#include <string>
#include <system_error>
#include <type_traits>

namespace evnet {

/// evnet's own error conditions, as std::error_code values in the "evnet" category; each names
/// the Node error code it stands for.
enum class Errc {
  writeAfterEnd = 1,             // ERR_STREAM_WRITE_AFTER_END
  socketDestroyed,               // ERR_STREAM_DESTROYED
  serverNotRunning,              // ERR_SERVER_NOT_RUNNING
  socketClosedBeforeConnection,  // the socket was destroyed while connecting
  socketClosed,                  // ERR_SOCKET_CLOSED: a write on a socket never connected
  ipBlocked,                     // ERR_IP_BLOCKED: connect's blockList lists the address
  aborted,                       // ABORT_ERR: the signal (std::stop_token) asked to stop
  socketConnectionTimeout,       // ERR_SOCKET_CONNECTION_TIMEOUT: every attempt timed out
};

namespace detail {
class ErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "evnet"; }
  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::writeAfterEnd:
        return "write after end";
      case Errc::socketDestroyed:
        return "Cannot call write after a stream was destroyed";
      case Errc::serverNotRunning:
        return "Server is not running.";
      case Errc::socketClosedBeforeConnection:
        return "Socket closed before the connection was established";
      case Errc::socketClosed:
        return "Socket is closed";
      case Errc::ipBlocked:
        return "IP is blocked by net.BlockList";
      case Errc::aborted:
        return "The operation was aborted";
      case Errc::socketConnectionTimeout:
        return "Socket connection timeout";
    }
    return "unknown evnet error";
  }
};
}  // namespace detail

/// The "evnet" error category.
inline const std::error_category& errorCategory() noexcept {
  static const detail::ErrorCategory category;
  return category;
}

/// Makes Errc values usable as std::error_code.
inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), errorCategory()};
}

}  // namespace evnet

template <>
struct std::is_error_code_enum<evnet::Errc> : std::true_type {};

#endif  // EVNET_ERROR_HPP
