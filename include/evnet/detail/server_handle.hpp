// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_SERVER_HANDLE_HPP
#define EVNET_DETAIL_SERVER_HANDLE_HPP

#include "evnet/detail/address.hpp"
#include "evnet/detail/config.hpp"
#include "evnet/detail/emitter_handle.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/loop.hpp"
#include "evnet/net/address.hpp"
#include "evnet/net/server_options.hpp"

#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>

#include <netinet/in.h>
#include <sys/stat.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace evnet::detail {

// What net::Server and tls::Server have in common: every method and property of Node's
// net.Server, forwarded to the ServerImpl. Handle is the public class.
template <class Handle, class Impl>
class ServerHandle : public EmitterHandle<Handle, Impl> {
 public:
  /// A server with these options, not listening yet, on loop.
  explicit ServerHandle(typename Impl::Options options, LoopRef loop);

  /// Listens on host:port; port 0 picks a free port; host "::" (the default) accepts IPv4 and
  /// IPv6. The callback runs on "listening"; failures such as EADDRINUSE come as "error" (Node:
  /// server.listen). Throws std::logic_error if already listening.
  Handle& listen(unsigned short port, std::string_view host = "::", int backlog = 511,
                 std::function<void()> callback = {});
  /// listen(port, callback), as Node writes it.
  Handle& listen(unsigned short port, std::function<void()> callback) {
    return listen(port, "::", 511, std::move(callback));
  }
  /// listen(port, host, callback).
  Handle& listen(unsigned short port, std::string_view host, std::function<void()> callback) {
    return listen(port, host, 511, std::move(callback));
  }
  /// Listens with Node's listen options: port and host, or path; backlog; ipv6Only;
  /// readableAll and writableAll for a Unix socket; signal, whose stop request closes the
  /// server (Node: server.listen(options[, callback])).
  Handle& listen(const net::ListenOptions& options, std::function<void()> callback = {});
  /// Listens on a Unix domain socket at path, removed again by close() (Node: listen(path)).
  Handle& listenPath(const std::string& path, std::function<void()> callback = {});

  /// Stops accepting at once; "close" and the callback follow when the last connection has
  /// closed; existing connections are left alone. The callback gets Errc::serverNotRunning if
  /// the server was not listening (Node: server.close).
  template <class Callback = std::nullptr_t>
  Handle& close(Callback&& callback = nullptr) {
    if constexpr (std::is_invocable_v<Callback, std::error_code>)
      impl_->close(std::forward<Callback>(callback));
    else if constexpr (std::is_invocable_v<Callback>)
      impl_->close([cb = std::forward<Callback>(callback)](std::error_code) mutable { cb(); });
    else
      impl_->close({});
    return handle();
  }
  /// Destroys every open connection (Node: http.Server's closeAllConnections).
  Handle& closeAllConnections() {
    impl_->closeAllConnections();
    return handle();
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
  Handle& setMaxConnections(unsigned n) noexcept {
    impl_->maxConnections = n;
    return handle();
  }
  /// The limit set by setMaxConnections; 0 = none (Node: server.maxConnections).
  unsigned maxConnections() const noexcept { return impl_->maxConnections; }
  /// Lets the loop's run() return while the server listens, when nothing referenced is left;
  /// its connections count on their own (Node: server.unref).
  Handle& unref() noexcept {
    impl_->unref();
    return handle();
  }
  /// Undoes unref() (Node: server.ref).
  Handle& ref() noexcept {
    impl_->ref();
    return handle();
  }

 protected:
  Handle& handle() noexcept { return static_cast<Handle&>(*this); }

  std::shared_ptr<Impl> impl_;

 private:
  friend class EmitterHandle<Handle, Impl>;
  ListenerId listenerAdded(typename Impl::EventName, ListenerId id) { return id; }

  Handle& listenOn(const asio::ip::tcp::endpoint& endpoint, int backlog, bool dualStack);
  Handle& listenOn(const asio::ip::tcp::endpoint& endpoint, int backlog,
                   typename Impl::ListenFlags flags, std::function<void()> callback);
};

template <class Handle, class Impl>
EVNET_DECL ServerHandle<Handle, Impl>::ServerHandle(typename Impl::Options options, LoopRef loop)
    : impl_(std::make_shared<Impl>(loop.executor(), std::move(options))) {
  impl_->weakSelf_ = impl_;
}

template <class Handle, class Impl>
EVNET_DECL Handle& ServerHandle<Handle, Impl>::listen(unsigned short port, std::string_view host,
                                                      int backlog, std::function<void()> callback) {
  if (callback) impl_->template once<"listening">(std::move(callback));
  std::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {  // a name: listen on its first address
    asio::ip::tcp::resolver resolver(impl_->executor());
    const auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
      impl_->listenFailed(impl_, ec ? ec : make_error_code(std::errc::address_not_available));
      return handle();
    }
    return listenOn(results.begin()->endpoint(), backlog, false);
  }
  return listenOn(asio::ip::tcp::endpoint(address, port), backlog, host == "::");
}

template <class Handle, class Impl>
EVNET_DECL Handle& ServerHandle<Handle, Impl>::listen(const net::ListenOptions& options,
                                                      std::function<void()> callback) {
#if EVNET_HAS_STOP_TOKEN
  impl_->closeOn(options.signal);
#endif
  if (!options.path.empty()) {
    if (callback) impl_->template once<"listening">(std::move(callback));
    const asio::local::stream_protocol::endpoint local(options.path);
    const unsigned mode = (options.readableAll ? S_IRUSR | S_IRGRP | S_IROTH : 0u) |
                          (options.writableAll ? S_IWUSR | S_IWGRP | S_IWOTH : 0u);
    impl_->listen(impl_, Protocol::endpoint(local.data(), local.size(), 0), options.backlog,
                  {.dualStack = false, .ipv6Only = false, .unixMode = mode}, options.path);
    return handle();
  }
  const std::string_view host =
      options.host.empty() ? std::string_view("::") : std::string_view(options.host);
  std::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (!ec && address.is_v6() && address.to_v6().is_unspecified())  // Node: "::" is dual-stack
    return listenOn(asio::ip::tcp::endpoint(address, options.port), options.backlog,
                    {.dualStack = !options.ipv6Only, .ipv6Only = options.ipv6Only, .unixMode = 0},
                    std::move(callback));
  return listen(options.port, host, options.backlog, std::move(callback));
}

template <class Handle, class Impl>
EVNET_DECL Handle& ServerHandle<Handle, Impl>::listenPath(const std::string& path,
                                                          std::function<void()> callback) {
  if (callback) impl_->template once<"listening">(std::move(callback));
  const asio::local::stream_protocol::endpoint local(path);
  impl_->listen(impl_, Protocol::endpoint(local.data(), local.size(), 0), 511, false, path);
  return handle();
}

template <class Handle, class Impl>
EVNET_DECL Handle& ServerHandle<Handle, Impl>::listenOn(const asio::ip::tcp::endpoint& endpoint,
                                                        int backlog, bool dualStack) {
  impl_->listen(impl_, Protocol::endpoint(endpoint.data(), endpoint.size(), IPPROTO_TCP), backlog,
                dualStack, {});
  return handle();
}

template <class Handle, class Impl>
EVNET_DECL Handle& ServerHandle<Handle, Impl>::listenOn(const asio::ip::tcp::endpoint& endpoint,
                                                        int backlog,
                                                        typename Impl::ListenFlags flags,
                                                        std::function<void()> callback) {
  if (callback) impl_->template once<"listening">(std::move(callback));
  impl_->listen(impl_, Protocol::endpoint(endpoint.data(), endpoint.size(), IPPROTO_TCP), backlog,
                flags, {});
  return handle();
}

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_SERVER_HANDLE_HPP
