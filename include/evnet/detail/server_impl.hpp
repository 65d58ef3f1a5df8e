// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_SERVER_IMPL_HPP
#define EVNET_DETAIL_SERVER_IMPL_HPP

#include "evnet/detail/address.hpp"
#include "evnet/detail/block_cache.hpp"
#include "evnet/detail/config.hpp"
#include "evnet/detail/loop_service.hpp"
#include "evnet/detail/socket_impl.hpp"
#include "evnet/detail/stop_token.hpp"
#include "evnet/detail/system_error.hpp"
#include "evnet/error.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/net/server_options.hpp"

#include <asio/basic_socket_acceptor.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/ip/v6_only.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace evnet::detail {

using net::DropInfo;

// The events of every server (Node: net.Server's); a TLS server adds its own.
template <class Socket, class... Extra>
using BasicServerEmitter =
    EventEmitter<Event<"listening", void()>, Event<"connection", void(Socket)>,
                 Event<"close", void()>, Event<"error", void(std::error_code)>,
                 Event<"drop", void(const DropInfo&)>, Extra...>;

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

// A listener and its connections. Traits name the socket it makes (plain or secure), its
// public handle, the server's options and its events.
template <class Traits>
class ServerImpl final : public Traits::Emitter,
                         public ConnectionOwner<SocketImpl<typename Traits::Layer>>,
                         public LoopMember {
 public:
  using Connection = SocketImpl<typename Traits::Layer>;
  using Socket = typename Traits::Socket;
  using Options = typename Traits::Options;

  ServerImpl(const asio::any_io_executor& executor, Options options);
  ServerImpl(const ServerImpl&) = delete;
  ServerImpl& operator=(const ServerImpl&) = delete;
  ~ServerImpl();

  // How a listener is set up beyond its address: IPV6_V6ONLY off (dualStack) or on
  // (ipv6Only), and the mode bits a Unix socket's path gets (Node: readableAll, writableAll).
  struct ListenFlags {
    bool dualStack = false;
    bool ipv6Only = false;
    unsigned unixMode = 0;
  };

  void listen(std::shared_ptr<ServerImpl> self, const Protocol::endpoint& endpoint, int backlog,
              bool dualStack, std::string unixPath);
  void listen(std::shared_ptr<ServerImpl> self, const Protocol::endpoint& endpoint, int backlog,
              ListenFlags flags, std::string unixPath);

  // Node's server.unref() / ref(): a listening server has its accept (or its retry timer)
  // pending at all times, and hides that one unit of work from the loop while unreferenced
  // (see hideWork).
  void unref() noexcept {
    unref_ = true;
    if (acceptor_) hide();
  }
  void ref() noexcept {
    unref_ = false;
    show();
  }

  void close(std::function<void(std::error_code)> callback);

  // Node's signal option of listen: a stop request, from any thread, closes the server on its
  // loop. close() lets go of the request.
#if EVNET_HAS_STOP_TOKEN
  void closeOn(std::stop_token signal);
#endif

  // Beyond Node's net (its http.Server has it): destroys every open connection.
  void closeAllConnections();

  // A listen that failed before reaching the kernel (a host name that does not resolve).
  void listenFailed(std::shared_ptr<ServerImpl> self, std::error_code ec);

  const asio::io_context::executor_type& executor() const noexcept { return executor_; }
  AddressInfo address() const { return acceptor_ ? address_ : AddressInfo{}; }
  unsigned connections() const noexcept { return connectionCount_; }
  bool listening() const noexcept { return acceptor_.has_value(); }
  unsigned maxConnections = 0;  // 0: no limit
  std::weak_ptr<ServerImpl> weakSelf_;

 private:
  static unsigned short endpointPort(const Protocol::endpoint& endpoint) {
    return toAddressInfo(endpoint).port;
  }

  std::error_code open(const Protocol::endpoint& endpoint, int backlog, ListenFlags flags) {
    std::error_code ec;
    acceptor_.emplace(executor_);
    acceptor_->open(endpoint.protocol(), ec);
    if (ec) return ec;
    const bool tcp = endpoint.data()->sa_family != AF_UNIX;
    if (tcp) acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (flags.dualStack || flags.ipv6Only)
      acceptor_->set_option(asio::ip::v6_only(flags.ipv6Only), ec);
    if (options_.reusePort) {
      const int on = 1;
      ::setsockopt(acceptor_->native_handle(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    }
    // Non-blocking for takeQueued()'s accept4 (asio sets it only at its own first accept).
    if (!acceptor_->bind(endpoint, ec) && !acceptor_->listen(backlog, ec) &&
        !acceptor_->non_blocking(true, ec))
      return {};
    return ec;
  }

  // The connections the kernel completed before close() and nobody accepted yet: close()
  // accepts them ("connection" is emitted from close()), where closing the listener would reset
  // them. libuv accepts them before close() runs, since it processes the listener's readiness
  // before a client's; asio may run a client's "connect" first (Node's
  // test-net-socket-reset-send.js closes the server from it).
  std::vector<std::pair<StreamSocket, Protocol::endpoint>> takeQueued() {
    std::vector<std::pair<StreamSocket, Protocol::endpoint>> queued;
    const int listener = acceptor_->native_handle();
    const int protocol = address_.family == "Unix" ? 0 : IPPROTO_TCP;
    for (;;) {
      sockaddr_storage peer{};
      socklen_t size = sizeof peer;
      const int fd = ::accept4(listener, reinterpret_cast<sockaddr*>(&peer), &size,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0 && errno == EINTR) continue;
      if (fd < 0) return queued;
      const Protocol::endpoint endpoint(&peer, size, protocol);
      if (auto socket = adopt(fd, endpoint)) queued.emplace_back(std::move(*socket), endpoint);
    }
  }
  // An accept that completed before close() and ran after it: the connection is the server's,
  // as one close() found queued.
  void acceptedAfterClose(std::error_code ec, StreamSocket socket, const Protocol::endpoint& peer) {
    if (!ec && closing_) accepted(std::move(socket), peer);
    release();
  }

  // Adds mode bits to a Unix socket's path, as libuv's uv_pipe_chmod does after listening.
  static std::error_code addMode(const std::string& path, unsigned mode) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || ::chmod(path.c_str(), st.st_mode | mode) != 0)
      return {errno, std::system_category()};
    return {};
  }

  // The accept loop. Out of descriptors (EMFILE/ENFILE), it waits and tries again instead of
  // spinning; the pending connections wait in the kernel's backlog meanwhile.
  void accept() {
#if EVNET_HAS_IO_URING
    if (ring_ != nullptr) return armRingAccept();
#endif
    ++pendingOps_;
    if (!spare_) spare_.emplace(executor_);
    acceptor_->async_accept(*spare_, peer_, [this](std::error_code ec) {
      --pendingOps_;
      // Moved out, spare_ stays a closed socket of the same service for the next accept:
      // asio's accept that makes the socket looks its service up, under a lock, each time.
      StreamSocket socket(std::move(*spare_));
      if (!acceptor_) return acceptedAfterClose(ec, std::move(socket), peer_);
      ec = systemError(ec);  // asio's own category does not compare equal to std::errc
      if (outOfResources(ec)) return backOff();
      // The next accept first, so that a throwing "connection" listener does not end the loop;
      // it may complete into peer_ and spare_ at once, hence the copy (the socket is out already).
      const Protocol::endpoint peer = peer_;
      accept();
      if (!ec) accepted(std::move(socket), peer);
    });
  }

#if EVNET_HAS_IO_URING
  // With io_uring: one accept at a time, armed again at each completion, so that each
  // connection comes with its peer's address (a multishot accept has none; asking the kernel
  // afterwards fails for a connection reset while it waited). Out of descriptors, it is armed
  // again after backOff()'s wait. It keeps the loop running as asio's accept would.
  struct AcceptOp : UringOp {
    ServerImpl* server = nullptr;
    sockaddr_storage peer{};
    socklen_t size = sizeof(sockaddr_storage);
  };
  std::uint16_t ringTag() const noexcept { return static_cast<std::uint16_t>(listenCount_); }

  void armRingAccept() {
    acceptOp_.size = sizeof acceptOp_.peer;
    ring_->armAccept(acceptor_->native_handle(), acceptOp_, ringTag(),
                     reinterpret_cast<sockaddr*>(&acceptOp_.peer), &acceptOp_.size);
    acceptArmed_ = true;
    ++pendingOps_;
    showWork(executor_);
  }

  void onRingAccept(std::uint16_t tag, int res, unsigned) {
    const bool mine = tag == ringTag() && acceptor_.has_value();
    if (tag == ringTag()) acceptArmed_ = false;
    hideWork(executor_);
    --pendingOps_;
    if (res >= 0) {
      const Protocol::endpoint peer(&acceptOp_.peer, acceptOp_.size,
                                    address_.family == "Unix" ? 0 : IPPROTO_TCP);
      if (!mine && !closing_) {
        ::close(res);
      } else {
        if (mine) accept();  // first, as the asio path: see accept()
        ringAccepted(res, peer);
      }
    } else if (mine) {
      const std::error_code ec(-res, std::system_category());
      if (outOfResources(ec))
        backOff();
      else
        accept();
    }
    if (!mine) release();
  }

  void ringAccepted(int fd, const Protocol::endpoint& peer) { accepted(BareDescriptor{fd}, peer); }
#endif

  // An accept that failed for want of descriptors or memory: retried after a wait.
  static bool outOfResources(std::error_code ec) noexcept {
    if (!ec) return false;  // the common case, without four category comparisons
    return ec == std::errc::too_many_files_open || ec == std::errc::too_many_files_open_in_system ||
           ec == std::errc::not_enough_memory || ec == std::errc::no_buffer_space;
  }

  // A descriptor the kernel accepted, as a socket of this loop; closed if asio refuses it.
  std::optional<StreamSocket> adopt(int fd, const Protocol::endpoint& peer) {
    StreamSocket socket(executor_);
    std::error_code ec;
    socket.assign(peer.protocol(), fd, ec);
    if (!ec) return socket;
    ::close(fd);
    return std::nullopt;
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

  // A connection from asio's accept (a StreamSocket) or the ring's (a BareDescriptor).
  template <class Accepted>
  void accepted(Accepted socket, const Protocol::endpoint& peer) {
    if ((maxConnections != 0 && connectionCount_ >= maxConnections) ||
        (options_.blockList && net::detail::blocksPeer(*options_.blockList, peer.data()))) {
      // The dropped connection's own addresses, as Node reports them (a dual-stack listener's
      // IPv4 client has ::ffff:a.b.c.d as its local address, not "::").
      std::optional<Protocol::endpoint> local;
      if constexpr (std::is_same_v<Accepted, BareDescriptor>) {
        local = localEndpoint(socket.fd);
        ::close(socket.fd);
      } else {
        local = localEndpoint(socket.native_handle());
        std::error_code ignored;
        socket.close(ignored);
      }
      const DropInfo drop{local ? toAddressInfo(*local) : address_, toAddressInfo(peer)};
      this->template emit<"drop">(drop);
      return;
    }
    auto impl = std::allocate_shared<Connection>(CachingAllocator<Connection>{}, executor_, loop_,
                                                 options_);
    impl->adopt(impl, std::move(socket), peer, this, acceptedLocal_ ? &*acceptedLocal_ : nullptr);
    link(*impl);
    if (options_.pauseOnConnect) impl->startPaused();
    if constexpr (Connection::secure) impl->layer().serve(options_);
    const Socket handle(impl);
    try {
      this->template emit<"connection">(handle);
    } catch (...) {
      impl->destroy();  // the exception leaves run(); the connection is closed, not leaked
      throw;
    }
    impl->start();
  }

  void link(Connection& socket) noexcept {
    socket.nextConnection = connections_;
    if (connections_ != nullptr) connections_->prevConnection = &socket;
    connections_ = &socket;
    ++connectionCount_;
  }

  void connectionSecured(Connection& socket) override {
    if constexpr (Connection::secure)
      this->template emit<"secureConnection">(Socket(socket.self()));
  }
  void connectionFailed(Connection& socket, std::error_code ec) override {
    if constexpr (Connection::secure)
      this->template emit<"tlsClientError">(ec, Socket(socket.self()));
  }

  void connectionClosed(Connection& socket) noexcept override {
    (socket.prevConnection != nullptr ? socket.prevConnection->nextConnection : connections_) =
        socket.nextConnection;
    if (socket.nextConnection != nullptr)
      socket.nextConnection->prevConnection = socket.prevConnection;
    socket.prevConnection = socket.nextConnection = nullptr;
    --connectionCount_;
    if (closing_) emitCloseIfDrained();
  }

  // Takes the pending accept off the loop's count in a handler of its own: on a loop made for
  // one thread, an accept that asio completed at once is counted only once the handler that
  // started it ends, and taking it off before could bring the count to zero with that
  // handler's posts still queued (run() would return early).
  void hide() noexcept {
    if (hidden_ || hidePosted_) return;
    try {
      asio::post(executor_, [this] {
        --pendingOps_;
        hidePosted_ = false;
        if (unref_ && acceptor_ && !std::exchange(hidden_, true)) hideWork(executor_);
        release();
      });
      hidePosted_ = true;
      ++pendingOps_;
    } catch (const std::bad_alloc&) {
      hidden_ = true;
      hideWork(executor_);
    }
  }
  void show() noexcept {
    if (std::exchange(hidden_, false)) showWork(executor_);
  }

  void stopAccepting() {
    show();  // the accept completes as aborted, counted again
#if EVNET_HAS_IO_URING
    if (ring_ != nullptr && acceptArmed_) {
      ring_->cancel(acceptOp_, ringTag());
      ring_->submitNow();  // the listener is let go of at close()
      acceptArmed_ = false;
    }
    ++listenCount_;
#endif
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
      if (connectionCount_ != 0) return;  // one accepted after close(): "close" waits for it
      closing_ = false;
      struct AfterClose {
        ServerImpl& server;
        ~AfterClose() { server.release(); }
      } after{*this};
      this->template emit<"close">();
    });
  }

  void release() noexcept {
    if (!acceptor_ && !closing_ && pendingOps_ == 0 && connectionCount_ == 0 && self_) {
      auto last = std::move(self_);
    }
  }

  void onLoopShutdown() noexcept override {
#if EVNET_HAS_IO_URING
    ring_ = nullptr;
#endif
    hidden_ = false;  // the loop is gone: nothing to give back
    for (Connection* s = connections_; s != nullptr; s = s->nextConnection) s->detachOwner();
    connections_ = nullptr;
    connectionCount_ = 0;
    acceptor_.reset();
    spare_.reset();
    retry_.reset();
    if (!unixPath_.empty()) ::unlink(unixPath_.c_str());  // no close() came: no stale path left
    unixPath_.clear();
    // Alive until the listeners, which may hold handles to this server, are dropped.
    const auto keep = weakSelf_.lock();
    self_.reset();
    this->removeAllListeners();
  }

#if EVNET_HAS_STOP_TOKEN
  struct OnStop {
    std::weak_ptr<ServerImpl> server;
    asio::any_io_executor executor;
    void operator()() noexcept {
      try {
        asio::post(executor, [server = server] {
          if (const auto s = server.lock()) s->close({});
        });
      } catch (...) {  // no memory to post: the stop request is lost
      }
    }
  };
#endif

  asio::io_context::executor_type executor_;
  LoopService& loop_;
#if EVNET_HAS_IO_URING
  Ring* ring_ = nullptr;  // the loop's, with the io_uring transport
  AcceptOp acceptOp_;
  unsigned listenCount_ = 0;  // tags the accepts of each listen()
  bool acceptArmed_ = false;
#endif
  Options options_;
#if EVNET_HAS_STOP_TOKEN
  std::optional<std::stop_callback<OnStop>> stop_;
#endif
  std::shared_ptr<ServerImpl> self_;  // alive while listening or closing
  std::optional<Acceptor> acceptor_;
  std::optional<StreamSocket> spare_;  // what the accept in flight accepts into
  std::optional<asio::steady_timer> retry_;
  Protocol::endpoint peer_;
  AddressInfo address_;
  std::optional<Protocol::endpoint> acceptedLocal_;  // every connection's local address, if one
  std::string unixPath_;
  Connection* connections_ = nullptr;
  unsigned connectionCount_ = 0;
  unsigned pendingOps_ = 0;
  bool closing_ = false;
  bool closePosted_ = false;
  bool unref_ = false;       // unref() was called
  bool hidden_ = false;      // the pending accept is hidden from the loop's work count
  bool hidePosted_ = false;  // hide() waits for its handler
};

template <class Traits>
EVNET_DECL ServerImpl<Traits>::ServerImpl(const asio::any_io_executor& executor, Options options)
    : executor_(ioContextOf(executor).get_executor()),
      loop_(LoopService::of(executor)),
      options_(options) {
#if EVNET_HAS_IO_URING
  ring_ = loop_.ring();
  acceptOp_.server = this;
  acceptOp_.complete = [](UringOp* op, std::uint16_t tag, int res, unsigned flags) {
    static_cast<AcceptOp*>(op)->server->onRingAccept(tag, res, flags);
  };
#endif
  loop_.add(*this);
}

template <class Traits>
EVNET_DECL ServerImpl<Traits>::~ServerImpl() {
  if (loopAlive()) loop_.remove(*this);
}

template <class Traits>
EVNET_DECL void ServerImpl<Traits>::listen(std::shared_ptr<ServerImpl> self,
                                           const Protocol::endpoint& endpoint, int backlog,
                                           bool dualStack, std::string unixPath) {
  listen(std::move(self), endpoint, backlog, ListenFlags{.dualStack = dualStack},
         std::move(unixPath));
}

template <class Traits>
EVNET_DECL void ServerImpl<Traits>::listen(std::shared_ptr<ServerImpl> self,
                                           const Protocol::endpoint& endpoint, int backlog,
                                           ListenFlags flags, std::string unixPath) {
  if (acceptor_ && acceptor_->is_open())
    throw std::logic_error("evnet: listen() called on a server that is already listening");
  self_ = std::move(self);
  closing_ = false;
  std::error_code ec = open(endpoint, backlog, flags);
  if (ec && flags.dualStack && ec == std::errc::address_family_not_supported)  // no IPv6 here
    ec = open(
        Protocol::endpoint(asio::ip::tcp::endpoint(asio::ip::tcp::v4(), endpointPort(endpoint))),
        backlog, {});
  if (!ec && flags.unixMode != 0) ec = addMode(unixPath, flags.unixMode);
  ++pendingOps_;
  if (ec) {
    acceptor_.reset();
    asio::post(executor_, [this, ec] {
      --pendingOps_;
      auto keep = std::move(self_);  // no "close" follows a listen error (Node)
      this->template emit<"error">(systemError(ec));
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
    if (acceptor_) this->template emit<"listening">();
  });
  accept();
  if (unref_) hide();
}

template <class Traits>
EVNET_DECL void ServerImpl<Traits>::close(std::function<void(std::error_code)> callback) {
  if (!loopAlive()) return;  // the loop is gone: nothing is open, nothing can run
  const bool running = acceptor_.has_value();
  if (callback) {
    this->template once<"close">([callback = std::move(callback), running] {
      callback(running ? std::error_code() : make_error_code(Errc::serverNotRunning));
    });
  }
  std::vector<std::pair<StreamSocket, Protocol::endpoint>> queued;
  if (running) {
    queued = takeQueued();
    stopAccepting();
  }
#if EVNET_HAS_STOP_TOKEN
  stop_.reset();
#endif
  if (closing_) return;
  closing_ = true;
  if (!self_) self_ = weakSelf_.lock();
  for (auto& [socket, peer] : queued) accepted(std::move(socket), peer);
  emitCloseIfDrained();
}

#if EVNET_HAS_STOP_TOKEN
template <class Traits>
EVNET_DECL void ServerImpl<Traits>::closeOn(std::stop_token signal) {
  stop_.reset();
  if (signal.stop_possible()) stop_.emplace(std::move(signal), OnStop{weakSelf_, executor_});
}
#endif

template <class Traits>
EVNET_DECL void ServerImpl<Traits>::closeAllConnections() {
  // destroy() unlinks nothing now ("close" comes in a later turn), so the walk is safe.
  for (Connection* s = connections_; s != nullptr; s = s->nextConnection) s->destroy();
}

template <class Traits>
EVNET_DECL void ServerImpl<Traits>::listenFailed(std::shared_ptr<ServerImpl> self,
                                                 std::error_code ec) {
  self_ = std::move(self);
  ++pendingOps_;
  asio::post(executor_, [this, ec] {
    --pendingOps_;
    auto keep = std::move(self_);
    this->template emit<"error">(systemError(ec));
  });
}

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_SERVER_IMPL_HPP
