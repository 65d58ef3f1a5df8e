// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_SOCKET_HANDLE_HPP
#define EVNET_DETAIL_SOCKET_HANDLE_HPP

#include "evnet/buffer.hpp"
#include "evnet/detail/emitter_handle.hpp"
#include "evnet/detail/write_queue.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/net/address.hpp"
#include "evnet/net/socket_options.hpp"

#include <asio/async_result.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace evnet::detail {

using net::AddressInfo;
using net::TcpInfo;

// What net::Socket and tls::Socket have in common: every method and property of Node's
// net.Socket, forwarded to the connection's SocketImpl. Handle is the public class.
template <class Handle, class Impl>
class SocketHandle : public EmitterHandle<Handle, Impl> {
 public:
  SocketHandle() = default;
  /// A handle to the connection impl (what connect() and a server make).
  explicit SocketHandle(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  /// Queues bytes for sending; true while the queue is below highWaterMark, false asks the
  /// caller to wait for "drain" (the bytes are queued either way). The callback runs once the
  /// bytes were handed to the kernel, or with an error (Node: socket.write).
  bool write(std::string_view bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(bytes, std::move(callback));
  }
  /// write(), taking ownership of the buffer instead of copying it.
  bool write(std::string&& bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(WriteQueue::Owned(std::move(bytes)), std::move(callback));
  }
  bool write(std::vector<char>&& bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(WriteQueue::Owned(std::move(bytes)), std::move(callback));
  }
  bool write(std::vector<unsigned char>&& bytes,
             std::function<void(std::error_code)> callback = {}) {
    return impl_->write(WriteQueue::Owned(std::move(bytes)), std::move(callback));
  }
  bool write(std::vector<std::byte>&& bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(WriteQueue::Owned(std::move(bytes)), std::move(callback));
  }
  bool write(std::span<const std::byte> bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                        std::move(callback));
  }
  bool write(Buffer bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(std::string_view(bytes), std::move(callback));
  }
  bool write(const char* text, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(std::string_view(text), std::move(callback));
  }
  /// write() that completes through an asio completion token, e.g. co_await
  /// socket.write(bytes, asio::use_awaitable) (Node: the promise of a write).
  template <class CompletionToken>
  requires(!std::is_invocable_v<CompletionToken, std::error_code>) auto write(
      std::string_view bytes, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code)>(
        [this, bytes](auto handler) {
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          impl_->write(bytes, [shared](std::error_code ec) { std::move (*shared)(ec); });
        },
        token);
  }

  /// Half-closes: sends FIN once queued writes are out; "finish" then (Node: socket.end).
  Handle& end() {
    impl_->end();
    return handle();
  }
  /// Ends; callback runs on "finish" (Node: socket.end(callback)).
  Handle& end(std::function<void()> callback) {
    impl_->end(std::move(callback));
    return handle();
  }
  /// Writes bytes, then ends; callback runs on "finish".
  template <class Bytes>
  requires(!std::is_invocable_v<Bytes>) Handle& end(Bytes&& bytes,
                                                    std::function<void()> callback = {}) {
    write(std::forward<Bytes>(bytes));
    impl_->end(std::move(callback));
    return handle();
  }
  /// Closes at once, dropping queued writes; "error" (if err) and "close" follow (Node:
  /// socket.destroy).
  Handle& destroy(std::error_code err = {}) {
    impl_->destroy(err);
    return handle();
  }
  /// Ends, then destroys once the FIN is out (Node: socket.destroySoon).
  Handle& destroySoon() {
    impl_->destroySoon();
    return handle();
  }
  /// Closes with a TCP RST (Node: socket.resetAndDestroy).
  Handle& resetAndDestroy() {
    impl_->resetAndDestroy();
    return handle();
  }
  /// Connects a closed socket again, to host:port (Node: socket.connect after "close"). Called
  /// from a "close" listener it keeps every listener; later, they are gone (see README). Throws
  /// std::logic_error unless the socket has emitted "close".
  Handle& connect(unsigned short port, std::string host = "localhost",
                  std::function<void()> connectListener = {}) {
    impl_->reopen();
    if (connectListener) handle().once("connect", std::move(connectListener));
    impl_->connect(impl_, std::move(host), port);
    return handle();
  }
  /// connect() to a Unix domain socket at path (Node: socket.connect(path)).
  Handle& connectPath(const std::string& path, std::function<void()> connectListener = {}) {
    impl_->reopen();
    if (connectListener) handle().once("connect", std::move(connectListener));
    impl_->connectPath(impl_, path);
    return handle();
  }
  /// Stops reading from the kernel, so the peer feels backpressure (Node: socket.pause).
  Handle& pause() {
    impl_->pause();
    return handle();
  }
  /// Reads again after pause() (Node: socket.resume).
  Handle& resume() {
    impl_->resume();
    return handle();
  }
  /// Emits "timeout" after ms without reads or writes; the socket stays open; 0 disables (Node:
  /// socket.setTimeout). Re-arming on activity costs no system call.
  Handle& setTimeout(unsigned ms, std::function<void()> callback = {}) {
    if (callback) impl_->template once<"timeout">(std::move(callback));
    impl_->setTimeout(ms);
    return handle();
  }
  /// Disables (true) or enables Nagle's algorithm (Node: socket.setNoDelay).
  Handle& setNoDelay(bool noDelay = true) {
    impl_->setNoDelay(noDelay);
    return handle();
  }
  /// Enables TCP keep-alive, first probe after initialDelayMs (Node: socket.setKeepAlive).
  Handle& setKeepAlive(bool enable = false, unsigned initialDelayMs = 0) {
    impl_->setKeepAlive(enable, initialDelayMs);
    return handle();
  }
  /// Forwards this socket's data to dest with backpressure: pauses while dest's write returns
  /// false, resumes on its "drain", ends dest on "end" (Node: readable.pipe).
  template <class Destination>
  Handle& pipe(Destination dest) {
    handle().on("data", [src = std::weak_ptr(impl_), dest](Buffer chunk) mutable {
      if (!dest.write(chunk))
        if (auto s = src.lock()) s->pause();
    });
    dest.on("drain", [src = std::weak_ptr(impl_)] {
      if (auto s = src.lock()) s->resume();
    });
    handle().on("end", [dest]() mutable { dest.end(); });
    return handle();
  }

  /// The kernel's TCP_INFO for this connection; empty for Unix sockets or when closed.
  std::optional<TcpInfo> tcpInfo() const { return impl_->tcpInfo(); }

  /// The peer's address, captured at connect and readable after close (Node:
  /// socket.remoteAddress and friends). Turned into text on first use.
  const std::string& remoteAddress() const { return impl_->remote().address; }
  /// "IPv4", "IPv6" or "Unix" (Node: socket.remoteFamily).
  const std::string& remoteFamily() const { return impl_->remote().family; }
  /// Node: socket.remotePort.
  unsigned short remotePort() const { return impl_->remote().port; }
  /// This end's address, captured at connect (Node: socket.localAddress, localPort).
  const std::string& localAddress() const { return impl_->local().address; }
  /// Node: socket.localPort.
  unsigned short localPort() const { return impl_->local().port; }
  /// Node: socket.address().
  const AddressInfo& address() const { return impl_->local(); }
  /// Bytes received, and bytes given to write()/end() including those still queued (Node:
  /// socket.bytesRead, bytesWritten). A TLS socket counts plaintext.
  std::uint64_t bytesRead() const noexcept { return impl_->bytesRead(); }
  /// Node: socket.bytesWritten.
  std::uint64_t bytesWritten() const noexcept { return impl_->bytesWritten(); }
  /// Bytes queued and not yet handed to the kernel (Node: writable.writableLength).
  std::size_t writableLength() const noexcept { return impl_->writableLength(); }
  /// "opening", "open", "readOnly", "writeOnly" or "closed" (Node: socket.readyState).
  std::string_view readyState() const noexcept { return impl_->readyState(); }
  /// pending: not connected, before connect and again after close (Node: socket.pending);
  /// connecting: a connect is under way (Node: socket.connecting).
  bool pending() const noexcept { return impl_->connecting() || impl_->destroyed(); }
  /// Node: socket.connecting.
  bool connecting() const noexcept { return impl_->connecting(); }
  /// True once destroyed or closed (Node: socket.destroyed).
  bool destroyed() const noexcept { return impl_->destroyed(); }
  /// Whether reading is paused (Node: readable.isPaused()).
  bool isPaused() const noexcept { return impl_->paused(); }

  /// Whether the handle refers to a connection (a default-constructed one does not).
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  friend bool operator==(const Handle& a, const Handle& b) noexcept { return a.impl_ == b.impl_; }

 protected:
  Handle& handle() noexcept { return static_cast<Handle&>(*this); }

  std::shared_ptr<Impl> impl_;

 private:
  friend class EmitterHandle<Handle, Impl>;
  ListenerId listenerAdded(std::string_view name, ListenerId id) {
    if (name == "data") impl_->dataListenerAdded();
    return id;
  }
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_SOCKET_HANDLE_HPP
