// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_SOCKET_HPP
#define EVNET_NET_SOCKET_HPP

#include "evnet/detail/socket_handle.hpp"
#include "evnet/detail/socket_impl.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/loop.hpp"
#include "evnet/net/address.hpp"
#include "evnet/net/connect_options.hpp"
#include "evnet/net/socket_options.hpp"

#include <asio/async_result.hpp>

#include <functional>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace evnet::detail {
using PlainSocketImpl = SocketImpl<PlainLayer>;
}  // namespace evnet::detail

namespace evnet::net {

/// A TCP or Unix domain connection: a cheap, copyable handle to an EventEmitter with the events
/// connect, ready, data(Buffer), end, finish, close(bool hadError), error(std::error_code),
/// timeout, drain and lookup (Node: net.Socket). The connection lives until "close" whether or
/// not handles remain; after "close" its listeners are dropped, so a listener may capture its
/// own socket. A handle used after close is safe: writes fail with Errc::socketDestroyed.
class Socket : public evnet::detail::SocketHandle<Socket, evnet::detail::PlainSocketImpl> {
 public:
  /// A handle to no socket; only assignment and comparison are valid on it.
  Socket() = default;
  explicit Socket(std::shared_ptr<evnet::detail::PlainSocketImpl> impl)
      : SocketHandle(std::move(impl)) {}
  /// A socket not connected yet: add listeners, then connect() (Node: new net.Socket(options)).
  /// Until then a write fails with Errc::socketClosed (Node: ERR_SOCKET_CLOSED).
  explicit Socket(SocketOptions options, LoopRef loop = {})
      : SocketHandle(std::make_shared<evnet::detail::PlainSocketImpl>(loop.executor(), options)) {
    impl_->makeUnconnected();
  }
};

/// Connects with Node's options (see socket.connect(ConnectOptions)); the SocketOptions part
/// is the new socket's (Node: net.connect(options[, connectListener])).
inline Socket connect(ConnectOptions options, std::function<void()> connectListener = {},
                      LoopRef loop = {}) {
  auto impl = std::make_shared<evnet::detail::PlainSocketImpl>(loop.executor(), options);
  Socket socket(impl);
  if (connectListener) socket.once("connect", std::move(connectListener));
  impl->connect(impl, std::move(options));
  return socket;
}
/// Same as connect(options) (Node: net.createConnection(options)).
inline Socket createConnection(ConnectOptions options, std::function<void()> connectListener = {},
                               LoopRef loop = {}) {
  return connect(std::move(options), std::move(connectListener), std::move(loop));
}

/// Connects to host:port; the socket emits "connect" when connected, "error" then "close" if it
/// cannot; writes made meanwhile are queued (Node: net.connect / net.createConnection).
inline Socket connect(unsigned short port, std::string host = "localhost",
                      std::function<void()> connectListener = {}, SocketOptions options = {},
                      LoopRef loop = {}) {
  auto impl = std::make_shared<evnet::detail::PlainSocketImpl>(loop.executor(), options);
  Socket socket(impl);
  if (connectListener) socket.once("connect", std::move(connectListener));
  impl->connect(impl, std::move(host), port);
  return socket;
}
/// Same as connect (Node: net.createConnection).
inline Socket createConnection(unsigned short port, std::string host = "localhost",
                               std::function<void()> connectListener = {},
                               SocketOptions options = {}, LoopRef loop = {}) {
  return connect(port, std::move(host), std::move(connectListener), options, std::move(loop));
}
/// Connects to a Unix domain socket at path (Node: net.connect(path)).
inline Socket connectPath(const std::string& path, std::function<void()> connectListener = {},
                          SocketOptions options = {}, LoopRef loop = {}) {
  auto impl = std::make_shared<evnet::detail::PlainSocketImpl>(loop.executor(), options);
  Socket socket(impl);
  if (connectListener) socket.once("connect", std::move(connectListener));
  impl->connectPath(impl, path);
  return socket;
}

/// connect() for coroutines: completes with the connected socket, or fails with the error
/// (Node: the promise-based form of net.connect, via events.once(socket, 'connect')).
template <class CompletionToken>
auto connect(unsigned short port, std::string host, CompletionToken&& token,
             LoopRef loop = {}) requires(!std::is_invocable_v<CompletionToken>) {
  return asio::async_initiate<CompletionToken, void(std::error_code, Socket)>(
      [port, host = std::move(host), loop = std::move(loop)](auto handler) mutable {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        auto socket = std::make_shared<Socket>(connect(port, std::move(host), {}, {}, loop));
        auto errorId = std::make_shared<ListenerId>();
        socket->once("connect", [shared, socket, errorId] {
          socket->off("error", *errorId);
          std::move (*shared)(std::error_code{}, *socket);
        });
        *errorId = socket->once("error", [shared, socket](std::error_code ec) {
          socket->removeAllListeners("connect");
          std::move (*shared)(ec, Socket());
        });
      },
      token);
}

}  // namespace evnet::net

#endif  // EVNET_NET_SOCKET_HPP
