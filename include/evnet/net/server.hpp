// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_SERVER_HPP
#define EVNET_NET_SERVER_HPP

#include "evnet/detail/emitter_handle.hpp"
#include "evnet/detail/loop_service.hpp"
#include "evnet/error.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/loop.hpp"
#include "evnet/net/block_list.hpp"
#include "evnet/net/socket.hpp"

#include <asio/basic_socket_acceptor.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace evnet::net {

/// Options of a server; the socket options apply to every accepted connection (Node: the
/// options of net.createServer).
struct ServerOptions : SocketOptions {
  bool pauseOnConnect = false;  // accepted sockets start paused: nothing is read until resume()
  bool reusePort = false;       // SO_REUSEPORT: several servers (one per loop) share a port
  std::shared_ptr<const BlockList> blockList{};  // peers it blocks: closed, reported as "drop"
};

/// A connection the server refused: maxConnections or blockList (Node: the 'drop' event's data).
struct DropInfo {
  AddressInfo local;
  AddressInfo remote;
};

class Server;

namespace detail {

using ServerEmitter = EventEmitter<Event<"listening", void()>, Event<"connection", void(Socket)>,
                                   Event<"close", void()>, Event<"error", void(std::error_code)>,
                                   Event<"drop", void(const DropInfo&)>>;

// True for an IP listener bound to one address (not 0.0.0.0 or ::): each connection it accepts
// has that address and port as its own.
inline bool boundToOneAddress(const Protocol::endpoint& endpoint) noexcept {
  const sockaddr* sa = endpoint.data();
  if (sa->sa_family == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(sa)->sin_addr.s_addr != htonl(INADDR_ANY);
  if (sa->sa_family == AF_INET6)
    return !IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
  return false;
}

class ServerImpl final : public ServerEmitter, public ConnectionOwner, public LoopMember {
 public:
  ServerImpl(const asio::any_io_executor& executor, ServerOptions options)
      : executor_(executor), loop_(LoopService::of(executor)), options_(options) {
    loop_.add(*this);
  }
  ServerImpl(const ServerImpl&) = delete;
  ServerImpl& operator=(const ServerImpl&) = delete;
  ~ServerImpl() {
    if (loopAlive()) loop_.remove(*this);
  }

  void listen(std::shared_ptr<ServerImpl> self, const Protocol::endpoint& endpoint, int backlog,
              bool dualStack, std::string unixPath) {
    if (acceptor_ && acceptor_->is_open())
      throw std::logic_error("evnet: listen() called on a server that is already listening");
    self_ = std::move(self);
    closing_ = false;
    std::error_code ec = open(endpoint, backlog, dualStack);
    if (ec && dualStack && ec == std::errc::address_family_not_supported)  // no IPv6 here
      ec = open(
          Protocol::endpoint(asio::ip::tcp::endpoint(asio::ip::tcp::v4(), endpointPort(endpoint))),
          backlog, false);
    ++pendingOps_;
    if (ec) {
      acceptor_.reset();
      asio::post(executor_, [this, ec] {
        --pendingOps_;
        auto keep = std::move(self_);  // no "close" follows a listen error (Node)
        emit<"error">(systemError(ec));
      });
      return;
    }
    unixPath_ = std::move(unixPath);
    const Protocol::endpoint bound = acceptor_->local_endpoint();
    address_ = toAddressInfo(bound);
    acceptedLocal_.reset();
    if (boundToOneAddress(bound)) acceptedLocal_ = bound;
    asio::post(executor_, [this] {
      --pendingOps_;
      if (acceptor_) emit<"listening">();
    });
    accept();
  }

  void close(std::function<void(std::error_code)> callback) {
    if (!loopAlive()) return;  // the loop is gone: nothing is open, nothing can run
    const bool running = acceptor_.has_value();
    if (callback) {
      once<"close">([callback = std::move(callback), running] {
        callback(running ? std::error_code() : make_error_code(Errc::serverNotRunning));
      });
    }
    if (running) stopAccepting();
    if (closing_) return;
    closing_ = true;
    if (!self_) self_ = weakSelf_.lock();
    emitCloseIfDrained();
  }

  // Beyond Node's net (its http.Server has it): destroys every open connection.
  void closeAllConnections() {
    // destroy() unlinks nothing now ("close" comes in a later turn), so the walk is safe.
    for (SocketImpl* s = connections_; s != nullptr; s = s->nextConnection) s->destroy();
  }

  // A listen that failed before reaching the kernel (a host name that does not resolve).
  void listenFailed(std::shared_ptr<ServerImpl> self, std::error_code ec) {
    self_ = std::move(self);
    ++pendingOps_;
    asio::post(executor_, [this, ec] {
      --pendingOps_;
      auto keep = std::move(self_);
      emit<"error">(systemError(ec));
    });
  }

  const asio::any_io_executor& executor() const noexcept { return executor_; }
  AddressInfo address() const { return acceptor_ ? address_ : AddressInfo{}; }
  unsigned connections() const noexcept { return connectionCount_; }
  bool listening() const noexcept { return acceptor_.has_value(); }
  unsigned maxConnections = 0;  // 0: no limit
  std::weak_ptr<ServerImpl> weakSelf_;

 private:
  static unsigned short endpointPort(const Protocol::endpoint& endpoint) {
    return toAddressInfo(endpoint).port;
  }

  std::error_code open(const Protocol::endpoint& endpoint, int backlog, bool dualStack) {
    std::error_code ec;
    acceptor_.emplace(executor_);
    acceptor_->open(endpoint.protocol(), ec);
    if (ec) return ec;
    const bool tcp = endpoint.data()->sa_family != AF_UNIX;
    if (tcp) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (dualStack) acceptor_->set_option(asio::ip::v6_only(false), ec);
    if (options_.reusePort) {
      const int on = 1;
      ::setsockopt(acceptor_->native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    }
    if (!acceptor_->bind(endpoint, ec) && !acceptor_->listen(backlog, ec)) return {};
    return ec;
  }

  // The accept loop. Out of descriptors (EMFILE/ENFILE), it waits and tries again instead of
  // spinning; the pending connections wait in the kernel's backlog meanwhile.
  void accept() {
    ++pendingOps_;
    acceptor_->async_accept(peer_, [this](std::error_code ec, Protocol::socket socket) {
      --pendingOps_;
      if (!acceptor_) return release();
      ec = systemError(ec);  // asio's own category does not compare equal to std::errc
      if (ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
          ec == std::errc::not_enough_memory || ec == std::errc::no_buffer_space)
        return backOff();
      // The next accept first, so that a throwing "connection" listener does not end the loop;
      // it may complete into peer_ at once, hence the copy.
      const Protocol::endpoint peer = peer_;
      accept();
      if (!ec) accepted(std::move(socket), peer);
    });
  }

  void backOff() {
    retry_.emplace(executor_);
    retry_->expires_after(std::chrono::milliseconds(50));
    ++pendingOps_;
    retry_->async_wait([this](std::error_code) {
      --pendingOps_;
      if (!acceptor_) return release();
      accept();
    });
  }

  void accepted(Protocol::socket socket, const Protocol::endpoint& peer) {
    if ((maxConnections != 0 && connectionCount_ >= maxConnections) ||
        (options_.blockList && detail::blocksPeer(*options_.blockList, peer.data()))) {
      DropInfo drop{address_, toAddressInfo(peer)};
      std::error_code ignored;
      socket.close(ignored);
      emit<"drop">(drop);
      return;
    }
    auto impl = std::make_shared<SocketImpl>(executor_, loop_, options_);
    impl->adopt(impl, std::move(socket), peer, this, acceptedLocal_ ? &*acceptedLocal_ : nullptr);
    link(*impl);
    if (options_.pauseOnConnect) impl->startPaused();
    const Socket handle(impl);
    try {
      emit<"connection">(handle);
    } catch (...) {
      impl->destroy();  // the exception leaves run(); the connection is closed, not leaked
      throw;
    }
    impl->start();
  }

  void link(SocketImpl& socket) noexcept {
    socket.nextConnection = connections_;
    if (connections_ != nullptr) connections_->prevConnection = &socket;
    connections_ = &socket;
    ++connectionCount_;
  }

  void connectionClosed(SocketImpl& socket) noexcept override {
    (socket.prevConnection != nullptr ? socket.prevConnection->nextConnection : connections_) =
        socket.nextConnection;
    if (socket.nextConnection != nullptr)
      socket.nextConnection->prevConnection = socket.prevConnection;
    socket.prevConnection = socket.nextConnection = nullptr;
    --connectionCount_;
    if (closing_) emitCloseIfDrained();
  }

  void stopAccepting() {
    std::error_code ignored;
    acceptor_->close(ignored);
    acceptor_.reset();
    if (retry_) retry_->cancel();
    if (!unixPath_.empty()) ::unlink(unixPath_.c_str());
    unixPath_.clear();
  }

  // "close" comes once the server stopped accepting and its last connection closed.
  void emitCloseIfDrained() {
    if (connectionCount_ != 0 || closePosted_) return;
    closePosted_ = true;
    ++pendingOps_;
    asio::post(executor_, [this] {
      --pendingOps_;
      closePosted_ = false;
      closing_ = false;
      struct AfterClose {
        ServerImpl& server;
        ~AfterClose() { server.release(); }
      } after{*this};
      emit<"close">();
    });
  }

  void release() noexcept {
    if (!acceptor_ && !closing_ && pendingOps_ == 0 && connectionCount_ == 0 && self_) {
      auto last = std::move(self_);
    }
  }

  void onLoopShutdown() noexcept override {
    for (SocketImpl* s = connections_; s != nullptr; s = s->nextConnection) s->detachOwner();
    connections_ = nullptr;
    connectionCount_ = 0;
    acceptor_.reset();
    retry_.reset();
    if (!unixPath_.empty()) ::unlink(unixPath_.c_str());  // no close() came: no stale path left
    unixPath_.clear();
    // Alive until the listeners, which may hold handles to this server, are dropped.
    const auto keep = weakSelf_.lock();
    self_.reset();
    removeAllListeners();
  }

  asio::any_io_executor executor_;
  LoopService& loop_;
  ServerOptions options_;
  std::shared_ptr<ServerImpl> self_;  // alive while listening or closing
  std::optional<asio::basic_socket_acceptor<Protocol>> acceptor_;
  std::optional<asio::steady_timer> retry_;
  Protocol::endpoint peer_;
  AddressInfo address_;
  std::optional<Protocol::endpoint> acceptedLocal_;  // every connection's local address, if one
  std::string unixPath_;
  SocketImpl* connections_ = nullptr;
  unsigned connectionCount_ = 0;
  unsigned pendingOps_ = 0;
  bool closing_ = false;
  bool closePosted_ = false;
};

}  // namespace detail

/// A TCP or Unix domain server: a copyable handle to an EventEmitter with the events listening,
/// connection(Socket), close, error(std::error_code) and drop(const DropInfo&) (Node:
/// net.Server). A listening server keeps itself alive until it is closed.
class Server : public evnet::detail::EmitterHandle<Server, detail::ServerImpl> {
 public:
  explicit Server(ServerOptions options = {}, LoopRef loop = {})
      : impl_(std::make_shared<detail::ServerImpl>(loop.executor(), options)) {
    impl_->weakSelf_ = impl_;
  }

  /// Listens on host:port; port 0 picks a free port; host "::" (the default) accepts IPv4 and
  /// IPv6. The callback runs on "listening"; failures such as EADDRINUSE come as "error" (Node:
  /// server.listen). Throws std::logic_error if already listening.
  Server& listen(unsigned short port, std::string_view host = "::", int backlog = 511,
                 std::function<void()> callback = {}) {
    if (callback) impl_->once<"listening">(std::move(callback));
    std::error_code ec;
    const asio::ip::address address = asio::ip::make_address(host, ec);
    if (ec) {  // a name: listen on its first address
      asio::ip::tcp::resolver resolver(impl_->executor());
      const auto results = resolver.resolve(host, std::to_string(port), ec);
      if (ec || results.empty()) {
        impl_->listenFailed(impl_, ec ? ec : make_error_code(std::errc::address_not_available));
        return *this;
      }
      return listenOn(results.begin()->endpoint(), backlog, false);
    }
    return listenOn(asio::ip::tcp::endpoint(address, port), backlog, host == "::");
  }
  /// listen(port, callback), as Node writes it.
  Server& listen(unsigned short port, std::function<void()> callback) {
    return listen(port, "::", 511, std::move(callback));
  }
  /// listen(port, host, callback).
  Server& listen(unsigned short port, std::string_view host, std::function<void()> callback) {
    return listen(port, host, 511, std::move(callback));
  }
  /// Listens on a Unix domain socket at path, removed again by close() (Node: listen(path)).
  Server& listenPath(const std::string& path, std::function<void()> callback = {}) {
    if (callback) impl_->once<"listening">(std::move(callback));
    const asio::local::stream_protocol::endpoint local(path);
    impl_->listen(impl_, detail::Protocol::endpoint(local.data(), local.size(), 0), 511, false,
                  path);
    return *this;
  }

  /// Stops accepting at once; "close" and the callback follow when the last connection has
  /// closed; existing connections are left alone. The callback gets Errc::serverNotRunning if
  /// the server was not listening (Node: server.close).
  template <class Callback = std::nullptr_t>
  Server& close(Callback&& callback = nullptr) {
    if constexpr (std::is_invocable_v<Callback, std::error_code>)
      impl_->close(std::forward<Callback>(callback));
    else if constexpr (std::is_invocable_v<Callback>)
      impl_->close([cb = std::forward<Callback>(callback)](std::error_code) mutable { cb(); });
    else
      impl_->close({});
    return *this;
  }
  /// Destroys every open connection (Node: http.Server's closeAllConnections).
  Server& closeAllConnections() {
    impl_->closeAllConnections();
    return *this;
  }

  /// The bound address; empty (port 0, no family) unless listening (Node: server.address(),
  /// which returns null then).
  AddressInfo address() const { return impl_->address(); }
  /// The number of open connections (Node: server.getConnections, synchronous here).
  unsigned getConnections() const noexcept { return impl_->connections(); }
  /// Whether the server is accepting (Node: server.listening).
  bool listening() const noexcept { return impl_->listening(); }
  /// Connections beyond this count are closed at once and "drop" is emitted; 0 = no limit
  /// (Node: server.maxConnections).
  Server& setMaxConnections(unsigned n) noexcept {
    impl_->maxConnections = n;
    return *this;
  }
  unsigned maxConnections() const noexcept { return impl_->maxConnections; }

 private:
  friend class evnet::detail::EmitterHandle<Server, detail::ServerImpl>;
  ListenerId listenerAdded(std::string_view, ListenerId id) { return id; }

  Server& listenOn(const asio::ip::tcp::endpoint& endpoint, int backlog, bool dualStack) {
    impl_->listen(impl_, detail::Protocol::endpoint(endpoint.data(), endpoint.size(), IPPROTO_TCP),
                  backlog, dualStack, {});
    return *this;
  }

  std::shared_ptr<detail::ServerImpl> impl_;
};

/// Creates a server whose "connection" listener is connectionListener (Node: net.createServer).
template <class Listener>
Server createServer(ServerOptions options, Listener&& connectionListener, LoopRef loop = {}) {
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
