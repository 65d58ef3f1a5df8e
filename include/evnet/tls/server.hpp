// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_TLS_SERVER_HPP
#define EVNET_TLS_SERVER_HPP

#include "evnet/detail/server_handle.hpp"
#include "evnet/detail/server_impl.hpp"
#include "evnet/detail/tls_layer.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/loop.hpp"
#include "evnet/tls/options.hpp"
#include "evnet/tls/socket.hpp"

#include <system_error>
#include <type_traits>
#include <utility>

namespace evnet::tls {

class Server;

namespace detail {
struct ServerTraits {
  using Layer = evnet::detail::TlsLayer;
  using Socket = tls::Socket;
  using Options = ServerOptions;
  using Emitter =
      evnet::detail::BasicServerEmitter<Socket, Event<"secureConnection", void(Socket)>,
                                        Event<"tlsClientError", void(std::error_code, Socket)>>;
};
}  // namespace detail
}  // namespace evnet::tls

#ifdef EVNET_SEPARATE_COMPILATION
namespace evnet::detail {
// Compiled by <evnet/impl/tls_src.hpp>.
extern template class ServerImpl<tls::detail::ServerTraits>;
extern template class ServerHandle<tls::Server, ServerImpl<tls::detail::ServerTraits>>;
}  // namespace evnet::detail
#endif

namespace evnet::tls {

/// A TLS server: everything a net::Server has, plus the events secureConnection(tls::Socket),
/// after a client's handshake, and tlsClientError(std::error_code, tls::Socket), when one fails
/// (the connection is then closed; the server goes on). "connection" comes first, for the TCP
/// connection (Node: tls.Server).
class Server
    : public evnet::detail::ServerHandle<Server, evnet::detail::ServerImpl<detail::ServerTraits>> {
 public:
  /// A server that is not listening yet (Node: new tls.Server(options)).
  explicit Server(ServerOptions options = {}, LoopRef loop = {})
      : ServerHandle(std::move(options), std::move(loop)) {}
};

/// Creates a TLS server whose "secureConnection" listener is secureConnectionListener (Node:
/// tls.createServer).
template <class Listener>
requires std::is_invocable_v<Listener&, Socket> Server createServer(ServerOptions options,
                                                                    Listener&& listener,
                                                                    LoopRef loop = {}) {
  Server server(std::move(options), std::move(loop));
  server.on("secureConnection", std::forward<Listener>(listener));
  return server;
}
/// createServer without a listener; add "secureConnection" listeners later.
inline Server createServer(ServerOptions options, LoopRef loop = {}) {
  return Server(std::move(options), std::move(loop));
}

}  // namespace evnet::tls

#endif  // EVNET_TLS_SERVER_HPP
