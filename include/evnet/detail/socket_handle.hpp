// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_SOCKET_HANDLE_HPP
#define EVNET_DETAIL_SOCKET_HANDLE_HPP

#include "evnet/buffer.hpp"
#include "evnet/detail/emitter_handle.hpp"
#include "evnet/detail/loop_service.hpp"
#include "evnet/detail/write_queue.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/net/address.hpp"
#include "evnet/net/connect_options.hpp"
#include "evnet/net/socket_options.hpp"

#include <asio/async_result.hpp>
#include <asio/post.hpp>

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
#include <typeinfo>
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

  /// Reads the next chunk through an asio completion token, e.g. co_await
  /// socket.read(asio::use_awaitable): the bytes as a std::string, an empty optional at the end
  /// of the stream (or once the socket closed without an error), or the socket's error. The
  /// socket is paused between reads, so a peer that sends faster than the reader reads feels
  /// backpressure as with pause() (Node: for await (const chunk of socket)). One read at a time.
  template <class CompletionToken>
  auto read(CompletionToken&& token) {
    using Signature = void(std::error_code, std::optional<std::string>);
    return asio::async_initiate<CompletionToken, Signature>(
        [](auto handler, std::shared_ptr<Impl> impl) {
          using Handler = decltype(handler);
          struct Read {
            explicit Read(Handler h) : handler(std::move(h)) {}
            Handler handler;
            std::shared_ptr<Impl> impl;
            ListenerId ids[4] = {};
            bool done = false;
            static void finish(const std::shared_ptr<Read>& read, std::error_code ec,
                               std::optional<std::string> chunk) {
              if (std::exchange(read->done, true)) return;
              const auto impl = std::move(read->impl);
              impl->off("data", read->ids[0]);
              impl->off("end", read->ids[1]);
              impl->off("error", read->ids[2]);
              impl->off("close", read->ids[3]);
              asio::post(impl->executor(), [read, ec, chunk = std::move(chunk)]() mutable {
                std::move(read->handler)(ec, std::move(chunk));
              });
            }
          };
          auto read = std::make_shared<Read>(std::move(handler));
          read->impl = impl;
          if (impl->readableEnded() || impl->closed()) return Read::finish(read, {}, std::nullopt);
          read->ids[0] = impl->template once<"data">([read](Buffer chunk) {
            read->impl->pause();
            Read::finish(read, {}, std::string(chunk));
          });
          read->ids[1] =
              impl->template once<"end">([read] { Read::finish(read, {}, std::nullopt); });
          read->ids[2] = impl->template once<"error">(
              [read](std::error_code ec) { Read::finish(read, ec, std::nullopt); });
          read->ids[3] =
              impl->template once<"close">([read](bool) { Read::finish(read, {}, std::nullopt); });
          impl->resume();
        },
        token, impl_);
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
    if (impl_->unconnected()) impl_->holdUntilClosed(impl_);
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
  /// Connects a socket made unconnected (Node: new net.Socket()), or a closed socket again, to
  /// host:port (Node: socket.connect, also after "close"). Called from a "close" listener it
  /// keeps every listener; later, they are gone (see README). Throws std::logic_error unless
  /// the socket is unconnected or has emitted "close".
  Handle& connect(unsigned short port, std::string host = "localhost",
                  std::function<void()> connectListener = {}) {
    impl_->reopen();
    if (connectListener) handle().once("connect", std::move(connectListener));
    impl_->connect(impl_, std::move(host), port);
    return handle();
  }
  /// Connects with Node's connect options: host and port or path, localAddress, localPort,
  /// family, timeout, lookup, autoSelectFamily, blockList, signal; the SocketOptions part is
  /// not used, the socket keeps its own (Node: socket.connect(options[, connectListener])).
  /// Throws std::invalid_argument for a family other than 0, 4, 6 or a localAddress that is not
  /// an IP address, and std::logic_error as connect(port) does.
  Handle& connect(net::ConnectOptions options, std::function<void()> connectListener = {}) {
    impl_->reopen();
    if (connectListener) handle().once("connect", std::move(connectListener));
    impl_->connect(impl_, std::move(options));
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
    const ListenerId data =
        handle().on("data", [src = std::weak_ptr(impl_), dest](Buffer chunk) mutable {
          if (!dest.write(chunk))
            if (auto s = src.lock()) s->pause();
        });
    const ListenerId drain = dest.on("drain", [src = std::weak_ptr(impl_)] {
      if (auto s = src.lock()) s->resume();
    });
    const ListenerId end = handle().on("end", [dest]() mutable { dest.end(); });
    auto& pipes = impl_->loop().pipes();
    const void* key = impl_.get();
    auto entry = std::make_shared<LoopService::Pipe>();
    entry->leadsTo = [dest](const void* other, const std::type_info& type) {
      return type == typeid(Destination) && *static_cast<const Destination*>(other) == dest;
    };
    entry->undo = [src = std::weak_ptr(impl_), dest, data, drain, end]() mutable {
      dest.off("drain", drain);
      if (const auto s = src.lock()) {
        s->off("data", data);
        s->off("end", end);
      }
    };
    pipes.emplace(key, entry);
    handle().once("close", [&pipes, key, entry = std::weak_ptr(entry)](bool) {
      for (auto [at, last] = pipes.equal_range(key); at != last; ++at)
        if (at->second == entry.lock()) return static_cast<void>(pipes.erase(at));
    });
    return handle();
  }
  /// Stops forwarding to dest (every destination when called with none); with no pipe left the
  /// socket pauses (Node: readable.unpipe).
  template <class Destination>
  Handle& unpipe(const Destination& dest) {
    unpipeWhere(
        [&dest](const LoopService::Pipe& p) { return p.leadsTo(&dest, typeid(Destination)); });
    return handle();
  }
  Handle& unpipe() {
    unpipeWhere([](const LoopService::Pipe&) { return true; });
    return handle();
  }
  /// Holds writes until as many uncork() calls, or end() (Node: writable.cork).
  Handle& cork() noexcept {
    impl_->cork();
    return handle();
  }
  /// Releases what cork() held: a plain socket on epoll hands it to the kernel now, as Node
  /// does; callbacks and "drain" come from the loop (Node: writable.uncork).
  Handle& uncork() {
    impl_->uncork();
    return handle();
  }
  /// How many cork() calls are not undone yet (Node: writable.writableCorked).
  unsigned writableCorked() const noexcept { return impl_->corked(); }

  /// Lets the loop's run() return while this socket is open, when nothing referenced is left
  /// (Node: socket.unref). A socket resolving its host still counts, as Node's lookup does.
  Handle& unref() {
    impl_->unref();
    return handle();
  }
  /// Undoes unref(): the open socket keeps the loop running again (Node: socket.ref).
  Handle& ref() noexcept {
    impl_->ref();
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
  /// The same (Node: socket.bufferSize, deprecated there in favour of writableLength).
  std::size_t bufferSize() const noexcept { return impl_->writableLength(); }
  /// The idle timeout set by setTimeout or connect's timeout option, in ms; 0: none (Node:
  /// socket.timeout, undefined then).
  unsigned timeout() const noexcept { return impl_->timeoutMs(); }
  /// "IPv4", "IPv6", or empty before connect (Node: socket.localFamily).
  const std::string& localFamily() const { return impl_->local().family; }
  /// Whether end() was called (Node: writable.writableEnded).
  bool writableEnded() const noexcept { return impl_->writableEnded() && !impl_->unconnected(); }
  /// Whether the FIN is out: "finish" was emitted (Node: writable.writableFinished).
  bool writableFinished() const noexcept { return impl_->finished(); }
  /// Whether the peer's end arrived: "end" was emitted (Node: readable.readableEnded).
  bool readableEnded() const noexcept { return impl_->readableEnded(); }
  /// Every "address:port" tried by Happy Eyeballs, in order; empty when there was only one
  /// address to try (Node: socket.autoSelectFamilyAttemptedAddresses, undefined then).
  const std::vector<std::string>& autoSelectFamilyAttemptedAddresses() const noexcept {
    return impl_->attemptedAddresses();
  }
  /// "opening", "open", "readOnly", "writeOnly" or "closed" (Node: socket.readyState).
  std::string_view readyState() const noexcept { return impl_->readyState(); }
  /// pending: not connected, before connect and again after close (Node: socket.pending);
  /// connecting: a connect is under way (Node: socket.connecting).
  bool pending() const noexcept {
    return impl_->connecting() || impl_->destroyed() || impl_->unconnected();
  }
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
  template <class Match>
  void unpipeWhere(Match match) {
    auto& pipes = impl_->loop().pipes();
    bool left = false;
    if (pipes.count(impl_.get()) == 0) return;  // Node: no pipe, nothing changes
    for (auto [at, last] = pipes.equal_range(impl_.get()); at != last;) {
      if (!match(*at->second)) {
        left = true;
        ++at;
        continue;
      }
      const auto entry = at->second;
      at = pipes.erase(at);
      entry->undo();
    }
    if (!left) impl_->pause();
  }

  friend class EmitterHandle<Handle, Impl>;
  ListenerId listenerAdded(typename Impl::EventName name, ListenerId id) {
    if (name.index() == typename Impl::EventName("data").index()) impl_->dataListenerAdded();
    return id;
  }
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_SOCKET_HANDLE_HPP
