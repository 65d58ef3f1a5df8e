// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_SERVER_HPP
#define EVNET_NET_SERVER_HPP

#include "evnet/detail/server_handle.hpp"
#include "evnet/detail/server_impl.hpp"
#include "evnet/detail/socket_impl.hpp"
#include "evnet/loop.hpp"
#include "evnet/net/server_options.hpp"
#include "evnet/net/socket.hpp"

#include <type_traits>
#include <utility>

namespace evnet::net {

class Server;

namespace detail {
struct ServerTraits {
  using Layer = evnet::detail::PlainLayer;
  using Socket = net::Socket;
  using Options = ServerOptions;
  using Emitter = evnet::detail::BasicServerEmitter<Socket>;
};
}  // namespace detail
}  // namespace evnet::net

#ifdef EVNET_SEPARATE_COMPILATION
namespace evnet::detail {
// compiled by <evnet/impl/src.hpp>
extern template class ServerImpl<net::detail::ServerTraits>;
extern template class ServerHandle<net::Server, ServerImpl<net::detail::ServerTraits>>;
}  // namespace evnet::detail
#endif

namespace evnet::net {

/// A TCP or Unix domain server: a copyable handle to an EventEmitter with the events listening,
/// connection(Socket), close, error(std::error_code) and drop(const DropInfo&) (Node:
/// net.Server). A listening server keeps itself alive until it is closed.
class Server
    : public evnet::detail::ServerHandle<Server, evnet::detail::ServerImpl<detail::ServerTraits>> {
 public:
  /// A server that is not listening yet (Node: new net.Server(options)).
  explicit Server(ServerOptions options = {}, LoopRef loop = {})
      : ServerHandle(options, std::move(loop)) {}
};

/// Creates a server whose "connection" listener is connectionListener (Node: net.createServer).
template <class Listener>
requires std::is_invocable_v<Listener&, Socket> Server createServer(ServerOptions options,
                                                                    Listener&& connectionListener,
                                                                    LoopRef loop = {}) {
  Server server(options, std::move(loop));
  server.on("connection", std::forward<Listener>(connectionListener));
  return server;
}
/// createServer with default options.
template <class Listener>
requires std::is_invocable_v<Listener&, Socket> Server createServer(Listener&& connectionListener,
                                                                    LoopRef loop = {}) {
  return createServer(ServerOptions{}, std::forward<Listener>(connectionListener), std::move(loop));
}
/// createServer without a listener; add "connection" listeners later.
inline Server createServer(ServerOptions options = {}, LoopRef loop = {}) {
  return Server(options, std::move(loop));
}

}  // namespace evnet::net

#endif  // EVNET_NET_SERVER_HPP
