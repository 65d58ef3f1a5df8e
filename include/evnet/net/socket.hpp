// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_SOCKET_HPP
#define EVNET_NET_SOCKET_HPP

#include "evnet/buffer.hpp"
#include "evnet/detail/emitter_handle.hpp"
#include "evnet/detail/loop_service.hpp"
#include "evnet/error.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/loop.hpp"

#include <asio/async_result.hpp>
#include <asio/bind_allocator.hpp>
#include <asio/defer.hpp>
#include <asio/error.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

namespace evnet::net {

/// An address as Node's server.address() and socket properties give it: "IPv4", "IPv6", or
/// "Unix" with the path in address (Node returns the bare path string for those).
struct AddressInfo {
  std::string address;
  std::string family;
  unsigned short port = 0;

  friend bool operator==(const AddressInfo&, const AddressInfo&) = default;
};

/// The kernel's view of a TCP connection (Linux TCP_INFO; Node has no equivalent).
struct TcpInfo {
  std::uint32_t rttUs = 0;         // smoothed round-trip time
  std::uint32_t rttVarUs = 0;      // its variation
  std::uint32_t retransmits = 0;   // retransmissions of the current segment
  std::uint32_t totalRetrans = 0;  // retransmitted segments over the connection's life
  std::uint32_t sndCwnd = 0;       // congestion window, in segments
  std::uint32_t sndMss = 0;        // sender maximum segment size
  std::uint32_t unacked = 0;       // segments sent and not yet acknowledged
  std::uint32_t lost = 0;          // segments considered lost
};

/// Options of a socket, given to net::connect / createConnection or inherited from a server
/// (Node: the options of new net.Socket and net.createServer).
struct SocketOptions {
  bool allowHalfOpen = false;  // false: after "end", end our side too once writes flush
  bool noDelay = true;         // disable Nagle's algorithm (evnet's default, see README)
  bool keepAlive = false;      // enable TCP keep-alive probes
  unsigned keepAliveInitialDelayMs = 0;
  std::size_t highWaterMark = 16 * 1024;  // write() returns false at this many queued bytes
};

class Socket;

namespace detail {

using evnet::detail::Deferred;
using evnet::detail::IdleEntry;
using evnet::detail::LoopMember;
using evnet::detail::LoopService;
using evnet::detail::PoolAllocator;
using Protocol = asio::generic::stream_protocol;

using SocketEmitter =
    EventEmitter<Event<"connect", void()>, Event<"ready", void()>, Event<"data", void(Buffer)>,
                 Event<"end", void()>, Event<"finish", void()>, Event<"close", void(bool hadError)>,
                 Event<"error", void(std::error_code)>, Event<"timeout", void()>,
                 Event<"drain", void()>,
                 Event<"lookup", void(std::error_code, std::string_view address, int family,
                                      std::string_view host)>>;

// Dotted decimal; inet_ntop goes through sprintf, which costs more than accepting a connection.
inline std::string formatIPv4(const in_addr& address) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&address.s_addr);
  std::string text;
  text.reserve(INET_ADDRSTRLEN - 1);
  for (int i = 0; i < 4; ++i) {
    if (i != 0) text += '.';
    const unsigned byte = bytes[i];
    if (byte >= 100) text += static_cast<char>('0' + byte / 100);
    if (byte >= 10) text += static_cast<char>('0' + byte / 10 % 10);
    text += static_cast<char>('0' + byte % 10);
  }
  return text;
}

inline AddressInfo toAddressInfo(const sockaddr* sa, std::size_t size) {
  AddressInfo info;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    info = {formatIPv4(in->sin_addr), "IPv4", ntohs(in->sin_port)};
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    info = {text, "IPv6", ntohs(in6->sin6_port)};
  } else if (sa->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    const std::size_t max =
        size > offsetof(sockaddr_un, sun_path) ? size - offsetof(sockaddr_un, sun_path) : 0;
    info = {std::string(un->sun_path, ::strnlen(un->sun_path, max)), "Unix", 0};
  }
  return info;
}
inline AddressInfo toAddressInfo(const Protocol::endpoint& endpoint) {
  return toAddressInfo(endpoint.data(), endpoint.size());
}

// A socket's address as the kernel gave it, turned into an AddressInfo only when first asked
// for: most servers never read it, and its strings would cost more than the rest of accepting
// a connection. 40 bytes where an AddressInfo takes 72.
class LazyAddress {
 public:
  void set(const Protocol::endpoint& endpoint) {
    reset();
    const sockaddr* sa = endpoint.data();
    if ((sa->sa_family == AF_INET || sa->sa_family == AF_INET6) && endpoint.size() <= sizeof raw_) {
      std::memcpy(&raw_, sa, endpoint.size());
      size_ = static_cast<std::uint8_t>(endpoint.size());
    } else {
      info_ = std::make_unique<AddressInfo>(toAddressInfo(endpoint));  // a path: no formatting
    }
  }
  void reset() noexcept {
    info_.reset();
    size_ = 0;
  }
  bool known() const noexcept { return size_ != 0 || info_ != nullptr; }
  const AddressInfo& get() const {
    if (!info_) {
      static const AddressInfo none;
      if (size_ == 0) return none;
      info_ = std::make_unique<AddressInfo>(
          toAddressInfo(reinterpret_cast<const sockaddr*>(&raw_), size_));
    }
    return *info_;
  }

 private:
  union {
    sockaddr_in v4;
    sockaddr_in6 v6;
  } raw_{};
  std::uint8_t size_ = 0;
  mutable std::unique_ptr<AddressInfo> info_;
};

inline std::error_code lastError() noexcept { return {errno, std::system_category()}; }

// asio 1.22 reports system errors in its own category, whose codes do not compare equal to
// std::errc conditions; evnet reports every system error in std::system_category, as
// lastError() does, so that `ec == std::errc::connection_refused` holds whatever the source.
inline std::error_code systemError(std::error_code ec) noexcept {
  if (ec.category() == asio::system_category()) return {ec.value(), std::system_category()};
  return ec;
}

// Bytes waiting to be written: evnet's own copies (small writes coalesce into one buffer that
// is kept for reuse) and buffers moved in by the caller, sent in order with gather writes.
class WriteQueue {
 public:
  using Owned = std::variant<std::string, std::vector<char>, std::vector<unsigned char>,
                             std::vector<std::byte>>;

  bool empty() const noexcept { return head_ == chunks_.size(); }

  // Empty writes queue nothing: an empty chunk would make flush() send zero bytes forever.
  void copy(const char* data, std::size_t size) {
    if (size == 0) return;
    if (empty() && !chunks_.empty())
      head_ = chunks_.size() - 1;  // an empty queue holds only the kept copy buffer: reuse it
    else if (empty() || !chunks_.back().copy)
      chunks_.push_back(Chunk{std::string(), true});
    std::get<std::string>(chunks_.back().bytes).append(data, size);
  }
  void own(Owned&& bytes) {
    if (std::visit([](const auto& b) { return b.empty(); }, bytes)) return;
    chunks_.push_back(Chunk{std::move(bytes), false});
  }

  // Fills iov with the unsent bytes, at most max entries; returns how many.
  int gather(iovec* iov, int max) const noexcept {
    int n = 0;
    for (std::size_t i = head_; i < chunks_.size() && n < max; ++i) {
      const std::span<const char> bytes = chunks_[i].view();
      const std::size_t skip = i == head_ ? offset_ : 0;
      iov[n++] = {const_cast<char*>(bytes.data() + skip), bytes.size() - skip};
    }
    return n;
  }

  void consume(std::size_t n) noexcept {
    while (n > 0) {
      const std::size_t left = chunks_[head_].view().size() - offset_;
      if (n < left) {
        offset_ += n;
        return;
      }
      n -= left;
      offset_ = 0;
      ++head_;
    }
    if (empty()) reset();
  }

  void clear() noexcept {
    chunks_.clear();
    head_ = offset_ = 0;
  }

 private:
  struct Chunk {
    Owned bytes;
    bool copy;
    std::span<const char> view() const noexcept {
      if (const auto* text = std::get_if<std::string>(&bytes)) return {text->data(), text->size()};
      return std::visit(
          [](const auto& b) {
            return std::span<const char>(reinterpret_cast<const char*>(b.data()), b.size());
          },
          bytes);
    }
  };

  // Everything is sent: keep one copy buffer (unless it grew large) so the steady state of a
  // connection does not allocate.
  void reset() noexcept {
    static constexpr std::size_t kKeep = 64 * 1024;
    const bool keep =
        chunks_.back().copy && std::get<std::string>(chunks_.back().bytes).capacity() <= kKeep;
    if (keep) {
      if (chunks_.size() > 1) {
        std::swap(chunks_.front(), chunks_.back());
        chunks_.resize(1);
      }
      std::get<std::string>(chunks_.front().bytes).clear();
      head_ = 1;
    } else {
      chunks_.clear();
      head_ = 0;
    }
    offset_ = 0;
  }

  std::vector<Chunk> chunks_;
  std::size_t head_ = 0;    // first chunk with unsent bytes
  std::size_t offset_ = 0;  // bytes of chunks_[head_] already sent
};

// Told when one of its connections has closed (a server counting its connections).
class ConnectionOwner {
 public:
  virtual void connectionClosed(class SocketImpl& socket) noexcept = 0;

 protected:
  ~ConnectionOwner() = default;
};

// One connection. Its data path reads top to bottom: wait for readability → read into the
// loop's buffer → emit "data" → writes queue up → one gather write per turn → on EAGAIN wait for
// writability. The object keeps itself alive (self_) until "close" is emitted and every asio
// operation that refers to it has completed.
class SocketImpl final : public SocketEmitter, public LoopMember {
 public:
  SocketImpl(const asio::any_io_executor& executor, const SocketOptions& options)
      : SocketImpl(executor, LoopService::of(executor), options) {}
  // With the executor's LoopService already at hand (a server's accepted sockets): finding it
  // takes asio's service registry lock.
  SocketImpl(const asio::any_io_executor& executor, LoopService& loop, const SocketOptions& options)
      : executor_(executor), loop_(loop), options_(options) {
    idle_.owner = this;
    rearm_.owner = this;
    rearm_.run = [](Deferred* entry) noexcept {
      auto* socket = static_cast<SocketImpl*>(entry->owner);
      --socket->pendingOps_;
      if (socket->destroyed_) return socket->release();
      try {
        socket->armRead();
      } catch (const std::bad_alloc&) {  // no memory for asio's operation: this socket fails
        socket->destroy(std::make_error_code(std::errc::not_enough_memory));
      }
    };
    idle_.onTimeout = [](IdleEntry* entry) {
      static_cast<SocketImpl*>(entry->owner)->emitOrDestroy<"timeout">();
    };
    loop_.add(*this);
  }
  SocketImpl(const SocketImpl&) = delete;
  SocketImpl& operator=(const SocketImpl&) = delete;
  ~SocketImpl() {
    if (!loopAlive()) return;  // a handle outlived the loop: nothing of the loop is left
    loop_.unenroll(idle_);
    loop_.remove(*this);
  }

  // --- opening ---------------------------------------------------------------------------

  // An accepted connection (the server calls this before emitting "connection"). `local` is
  // its address when the server knows it (a listener bound to one address), saving a
  // getsockname(); null to ask the kernel.
  void adopt(std::shared_ptr<SocketImpl> self, Protocol::socket socket,
             const Protocol::endpoint& peer, ConnectionOwner* owner,
             const Protocol::endpoint* local = nullptr) {
    self_ = std::move(self);
    owner_ = owner;
    socket_.emplace(std::move(socket));
    family_ = peer.data()->sa_family;
    remote_.set(peer);
    if (local != nullptr) local_.set(*local);
    opened();
  }

  void connect(std::shared_ptr<SocketImpl> self, std::string host, unsigned short port) {
    self_ = std::move(self);
    connecting_ = true;
    std::error_code ec;
    const asio::ip::address address = asio::ip::make_address(host, ec);
    if (!ec) return connectTo({asio::ip::tcp::endpoint(address, port)}, 0);
    resolver_.emplace(executor_);
    ++pendingOps_;
    resolver_->async_resolve(
        host, std::to_string(port),
        [this, host, gen = generation_](std::error_code error,
                                        asio::ip::tcp::resolver::results_type results) {
          if (!current(gen)) return;
          std::vector<asio::ip::tcp::endpoint> endpoints;
          for (const auto& entry : results) endpoints.push_back(entry.endpoint());
          const std::string address =
              endpoints.empty() ? std::string() : endpoints.front().address().to_string();
          const int family = endpoints.empty() ? 0 : endpoints.front().address().is_v6() ? 6 : 4;
          error = systemError(error);
          emitOrDestroy<"lookup">(error, address, family, host);
          if (error) return destroy(error);
          connectTo(std::move(endpoints), 0);
        });
  }

  void connectPath(std::shared_ptr<SocketImpl> self, const std::string& path) {
    self_ = std::move(self);
    connecting_ = true;
    const asio::local::stream_protocol::endpoint local(path);
    startConnect(Protocol::endpoint(local.data(), local.size(), 0), [this](auto ec) {
      if (ec) destroy(ec);
    });
  }

  // Makes a closed socket new again for connect() (Node: socket.connect after "close",
  // test-net-reconnect.js): the byte counters, addresses and stream states start over; the
  // idle timeout carries over. Operations of the old connection still in asio's queues belong
  // to an older generation and complete as no-ops.
  void reopen() {
    if (!closeEmitted_ || !loopAlive())
      throw std::logic_error("evnet: connect() on a socket that is not closed");
    ++generation_;
    readArmed_ = readPosted_ = flushPosted_ = writeArmed_ = needDrain_ = false;
    paused_ = readableEnded_ = writableEnded_ = finished_ = false;
    destroyed_ = hadError_ = closeEmitted_ = false;
    bytesRead_ = bytesWritten_ = totalQueued_ = 0;
    unheard_.clear();
    remote_.reset();
    local_.reset();
    family_ = AF_UNSPEC;
    if (timeoutMs_ != 0) loop_.enroll(idle_, timeoutMs_, executor_);
  }

  // --- reading ----------------------------------------------------------------------------

  // Waits for data with a read into the socket's small slot, or its large buffer while its
  // messages are long. A pending read costs asio no system call to re-arm, where a readability
  // wait costs an epoll_ctl each time. The operation's memory comes from the loop's pool. Armed
  // only once the kernel queue was found empty.
  void armRead() {
    if (readArmed_ || paused_ || readableEnded_ || destroyed_ || connecting_) return;
    readArmed_ = true;
    ++pendingOps_;
    socket_->async_receive(
        asio::buffer(readSpace().data(), readSpace().size()),
        asio::bind_allocator(PoolAllocator<void>(loop_.operationPool()),
                             [this, gen = generation_](std::error_code ec, std::size_t n) {
                               if (current(gen)) onRead(ec, n);
                             }));
  }

  // A message that leaves room in the read space is delivered from it. A full slot means more
  // is waiting: it is read into the loop's buffer after the slot's bytes, and the next reads go
  // to a large buffer (one system call for a pipelined batch, not two), kept until messages are
  // short again. A full large buffer is delivered, and reading continues into the loop's buffer.
  void onRead(std::error_code ec, std::size_t n) {
    readArmed_ = false;
    if (ec == asio::error::eof) return onEnd();
    if (ec) return destroy(ec);
    bytesRead_ += n;
    touch();
    const std::span<char> space = readSpace();
    if (paused_) {  // read before pause() took effect: kept for resume()
      unheard_.append(space.data(), n);
      return;
    }
    if (n < space.size()) {
      deliver(Buffer(space.data(), n));
      shortReads_ = n < slot_.size() ? shortReads_ + 1 : 0;
      if (shortReads_ == kShortReadsToShrink) large_.reset();
      return armReadLater();
    }
    shortReads_ = 0;
    if (large_) {
      deliver(Buffer(space.data(), n));
      return readNow();
    }
    large_ = std::make_unique<char[]>(kLargeReadSize);
    readNow(n);
  }
  std::span<char> readSpace() noexcept {
    if (large_) return {large_.get(), kLargeReadSize};
    return slot_;
  }

  // armRead() once the loop has run the other completions that are ready now. After a message
  // was answered, the peer's next one is often in by then, and asio's first, speculative read
  // finds it; re-armed at once, that read fails with EAGAIN: a system call per message more.
  void armReadLater() {
    if (rearm_.queued) return;
    ++pendingOps_;
    loop_.later(rearm_, executor_);
  }

  // Reads what the kernel has into the loop's buffer, after `carried` bytes from the slot, and
  // emits it. A few full reads per turn at most, so one busy peer does not starve the others.
  void readNow(std::size_t carried = 0) {
    const std::span<char> buffer = loop_.readBuffer();
    if (carried != 0) std::memcpy(buffer.data(), slot_.data(), carried);
    const int fd = socket_->native_handle();
    for (int burst = 0; burst < 16; ++burst) {
      if (paused_ || readableEnded_ || destroyed_) return;
      const ssize_t n = ::recv(fd, buffer.data() + carried, buffer.size() - carried, 0);
      if (n > 0) {
        bytesRead_ += static_cast<std::uint64_t>(n);
        touch();
        const std::size_t total = carried + static_cast<std::size_t>(n);
        carried = 0;
        deliver(Buffer(buffer.data(), total));
        if (total < buffer.size()) return armReadLater();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (carried != 0) deliver(Buffer(buffer.data(), std::exchange(carried, 0)));
      if (destroyed_) return;
      if (n == 0) return onEnd();
      if (errno == EAGAIN || errno == EWOULDBLOCK) return armRead();
      return destroy(lastError());
    }
    postRead();
  }

  // Emits "data"; writes made by the listeners go out together right after, in one call. With
  // no "data" listener the bytes are kept and reading pauses until one is added (Node: a
  // stream flows only once it has a 'data' listener), so nothing is lost.
  void deliver(Buffer chunk) {
    inDispatch_ = true;
    bool heard = false;
    try {
      heard = emit<"data">(chunk);
    } catch (...) {
      inDispatch_ = false;
      destroy();  // a throwing listener: the exception leaves run(), the socket is released
      throw;
    }
    inDispatch_ = false;
    if (!heard && !destroyed_) {
      unheard_.append(chunk.data(), chunk.size());
      paused_ = true;
    }
    if (!queue_.empty()) flush();
  }

  void onEnd() {
    readableEnded_ = true;
    emitOrDestroy<"end">();
    if (destroyed_) return;
    if (!options_.allowHalfOpen) end();
    if (finished_) destroy();
  }

  void pause() noexcept { paused_ = true; }

  void resume() {
    if (!paused_ || destroyed_) return;
    paused_ = false;
    if (!connecting_) postRead();
  }

  void dataListenerAdded() {
    if (!unheard_.empty()) resume();
  }

  // Reads in a later turn: after resume(), or when a read burst filled the buffer each time.
  void postRead() {
    if (readPosted_ || readArmed_) return;
    readPosted_ = true;
    ++pendingOps_;
    asio::post(executor_, [this, gen = generation_] {
      if (!current(gen)) return;
      readPosted_ = false;
      if (!unheard_.empty() && !paused_) {
        std::string held = std::exchange(unheard_, {});
        deliver(Buffer(held));
      }
      readNow();
    });
  }

  // Emits an event of the connection's life. A listener that throws destroys the socket (as a
  // throwing "data" listener does) and the exception leaves run(): a socket is never left
  // half-way through a change of state, e.g. ended on one side only.
  template <FixedString Name, class... Args>
  void emitOrDestroy(const Args&... args) {
    try {
      emit<Name>(args...);
    } catch (...) {
      destroy();
      throw;
    }
  }

  // --- writing ----------------------------------------------------------------------------

  // The callback by reference: the public write() made it, and moving it on costs per message.
  bool write(std::string_view bytes, std::function<void(std::error_code)>&& callback) {
    if (!writable(callback)) return false;
    queue_.copy(bytes.data(), bytes.size());
    return queued(bytes.size(), std::move(callback));
  }
  bool write(WriteQueue::Owned&& bytes, std::function<void(std::error_code)>&& callback) {
    if (!writable(callback)) return false;
    const std::size_t size = std::visit([](const auto& b) { return b.size(); }, bytes);
    queue_.own(std::move(bytes));
    return queued(size, std::move(callback));
  }

  void end(std::function<void()> callback = {}) {
    if (callback) once<"finish">(std::move(callback));
    if (writableEnded_ || destroyed_) return;
    writableEnded_ = true;
    if (!connecting_ && queue_.empty() && !writeArmed_) return finish();
    scheduleFlush();
  }

  // Buffers per system call: Linux's IOV_MAX, so that many small owned buffers (a subscriber's
  // messages) go out in one call.
  static constexpr int kMaxGather = 1024;

  // Sends the queue with as few system calls as the kernel allows.
  void flush() {
    if (destroyed_ || connecting_ || writeArmed_) return;
    const int fd = socket_->native_handle();
    while (!queue_.empty()) {
      // One buffer goes with send(): the kernel's sendmsg first copies in the message header and
      // the iovec array, which costs more than the send of a short message itself.
      std::array<iovec, kMaxGather> iov;
      const int count = queue_.gather(iov.data(), kMaxGather);
      ssize_t n = 0;
      if (count == 1) {
        n = ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
      } else {
        msghdr message{};
        message.msg_iov = iov.data();
        message.msg_iovlen = static_cast<std::size_t>(count);
        n = ::sendmsg(fd, &message, MSG_NOSIGNAL);
      }
      if (n >= 0) {
        queue_.consume(static_cast<std::size_t>(n));
        writableLength_ -= static_cast<std::size_t>(n);
        bytesWritten_ += static_cast<std::uint64_t>(n);
        touch();
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        armWrite();
        break;
      } else if (errno != EINTR) {
        return destroy(lastError());
      }
    }
    completeWrites({});
    if (!queue_.empty() || destroyed_) return;
    if (needDrain_) {
      needDrain_ = false;
      emitOrDestroy<"drain">();
    }
    if (writableEnded_ && !finished_ && queue_.empty() && !destroyed_) finish();
  }

  // --- closing ----------------------------------------------------------------------------

  // Closes now, dropping queued writes; "error" (if err) then "close" follow in a later turn.
  void destroy(std::error_code err = {}) {
    if (destroyed_) return;
    destroyed_ = true;
    hadError_ = static_cast<bool>(err);
    err = systemError(err);
    loop_.unenroll(idle_);
    connecting_ = false;  // readyState "closed", not "opening", after a failed connect
    closeDescriptor();
    queue_.clear();
    writableLength_ = 0;
    completeWrites(make_error_code(Errc::socketDestroyed));
    ++pendingOps_;
    asio::post(executor_, [this, err] {
      --pendingOps_;
      emitClose(err);
    });
  }

  // Ends our side, then destroys once the FIN is out (Node: destroySoon).
  void destroySoon() {
    if (writableEnded_ && finished_) return destroy();
    once<"finish">([this] { destroy(); });
    end();
  }

  // Closes with a TCP RST instead of a FIN (Node: resetAndDestroy).
  void resetAndDestroy() {
    if (socket_ && socket_->is_open()) {
      const linger option{1, 0};
      ::setsockopt(socket_->native_handle(), SOL_SOCKET, SO_LINGER, &option, sizeof option);
    }
    destroy();
  }

  // --- options and state ------------------------------------------------------------------

  void setTimeout(unsigned ms) {
    timeoutMs_ = ms;
    if (ms == 0 || destroyed_) return loop_.unenroll(idle_);
    loop_.enroll(idle_, ms, executor_);
  }
  void setNoDelay(bool enable) {
    options_.noDelay = enable;
    const int on = enable ? 1 : 0;
    if (isTcp()) ::setsockopt(fd(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  void setKeepAlive(bool enable, unsigned initialDelayMs) {
    options_.keepAlive = enable;
    options_.keepAliveInitialDelayMs = initialDelayMs;
    if (!isTcp()) return;
    int on = enable ? 1 : 0;
    ::setsockopt(fd(), SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    if (enable && initialDelayMs >= 1000) {
      int seconds = static_cast<int>(initialDelayMs / 1000);
      ::setsockopt(fd(), IPPROTO_TCP, TCP_KEEPIDLE, &seconds, sizeof seconds);
    }
  }
  std::optional<TcpInfo> tcpInfo() const {
    if (!isTcp()) return std::nullopt;
    tcp_info raw{};
    socklen_t size = sizeof raw;
    if (::getsockopt(fd(), IPPROTO_TCP, TCP_INFO, &raw, &size) != 0) return std::nullopt;
    return TcpInfo{raw.tcpi_rtt,           raw.tcpi_rttvar,   raw.tcpi_retransmits,
                   raw.tcpi_total_retrans, raw.tcpi_snd_cwnd, raw.tcpi_snd_mss,
                   raw.tcpi_unacked,       raw.tcpi_lost};
  }

  std::string_view readyState() const noexcept {
    if (connecting_) return "opening";
    if (destroyed_ || !socket_) return "closed";
    if (readableEnded_ && writableEnded_) return "closed";
    if (readableEnded_) return "writeOnly";
    if (writableEnded_) return "readOnly";
    return "open";
  }

  const AddressInfo& remote() const { return remote_.get(); }
  const AddressInfo& local() const { return local_.get(); }
  std::uint64_t bytesRead() const noexcept { return bytesRead_; }
  std::uint64_t bytesWritten() const noexcept { return bytesWritten_; }
  std::size_t writableLength() const noexcept { return writableLength_; }
  bool connecting() const noexcept { return connecting_; }
  bool destroyed() const noexcept { return destroyed_; }
  bool paused() const noexcept { return paused_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }

  // Starts reading and applies options; called once the connection exists.
  void start() {
    if (!paused_) armRead();
  }
  void startPaused() { paused_ = true; }
  void detachOwner() noexcept { owner_ = nullptr; }

 private:
  void opened() {
    std::error_code ec;
    socket_->non_blocking(true, ec);
    if (!local_.known()) {
      const auto local = socket_->local_endpoint(ec);
      if (!ec) local_.set(local);
    }
    if (isTcp()) {
      if (options_.noDelay) setNoDelay(true);
      if (options_.keepAlive) setKeepAlive(true, options_.keepAliveInitialDelayMs);
    }
  }

  void connectTo(std::vector<asio::ip::tcp::endpoint> endpoints, std::size_t index) {
    const asio::ip::tcp::endpoint target = endpoints[index];
    startConnect(Protocol::endpoint(target.data(), target.size(), IPPROTO_TCP),
                 [this, endpoints = std::move(endpoints), index](std::error_code ec) mutable {
                   if (!ec) return;
                   if (index + 1 < endpoints.size())
                     return connectTo(std::move(endpoints), index + 1);
                   destroy(ec);
                 });
  }

  template <class OnFailure>
  void startConnect(const Protocol::endpoint& target, OnFailure onFailure) {
    socket_.emplace(executor_);
    family_ = target.data()->sa_family;
    std::error_code ec;
    socket_->open(target.protocol(), ec);
    if (ec) return onFailure(ec);
    ++pendingOps_;
    socket_->async_connect(target, [this, target, onFailure = std::move(onFailure),
                                    gen = generation_](std::error_code error) mutable {
      if (!current(gen)) return;
      if (error) return onFailure(error);
      connecting_ = false;
      remote_.set(target);
      opened();
      emitOrDestroy<"connect">();
      emitOrDestroy<"ready">();  // as Node: also when a "connect" listener destroyed the socket
      if (destroyed_) return;
      flush();  // writes made while connecting; also finishes if end() was called
      if (!paused_) postRead();
    });
  }

  bool writable(const std::function<void(std::error_code)>& callback) {
    if (!destroyed_ && !writableEnded_) return true;
    const std::error_code ec =
        make_error_code(destroyed_ ? Errc::socketDestroyed : Errc::writeAfterEnd);
    if (callback && loopAlive()) asio::post(executor_, [callback, ec] { callback(ec); });
    if (!destroyed_) destroy(ec);  // Node: write after end is an error that destroys the socket
    return false;
  }

  bool queued(std::size_t size, std::function<void(std::error_code)>&& callback) {
    writableLength_ += size;
    totalQueued_ += size;
    if (callback) callbacks_.push_back({totalQueued_, std::move(callback)});
    if (writableLength_ >= options_.highWaterMark && !inDispatch_)
      flush();  // a large write: give the kernel its chance now
    else
      scheduleFlush();
    const bool below = writableLength_ < options_.highWaterMark;
    if (!below) needDrain_ = true;
    return below;
  }

  // Writes made outside a "data" listener go out at the end of the current turn, together.
  void scheduleFlush() {
    if (inDispatch_ || flushPosted_ || connecting_ || writeArmed_ || destroyed_) return;
    flushPosted_ = true;
    ++pendingOps_;
    asio::defer(executor_, [this, gen = generation_] {
      if (!current(gen)) return;
      flushPosted_ = false;
      flush();
    });
  }

  void armWrite() {
    writeArmed_ = true;
    ++pendingOps_;
    socket_->async_wait(Protocol::socket::wait_write,
                        [this, gen = generation_](std::error_code ec) {
                          if (!current(gen)) return;
                          writeArmed_ = false;
                          if (ec) return destroy(ec);
                          flush();
                        });
  }

  void completeWrites(std::error_code ec) {
    while (!callbacks_.empty() && (ec || callbacks_.front().first <= bytesWritten_)) {
      auto callback = std::move(callbacks_.front().second);
      callbacks_.erase(callbacks_.begin());
      callback(ec);
    }
  }

  // The writable side is done: the peer gets its end of stream. When the peer had ended too,
  // destroy() follows at once and its close() sends the FIN; a shutdown() first would be a
  // system call per connection for nothing (nothing unread remains after the peer's FIN, so
  // close() does not reset the connection).
  void finish() {
    finished_ = true;
    if (socket_ && socket_->is_open() && !readableEnded_) ::shutdown(fd(), SHUT_WR);
    emitOrDestroy<"finish">();
    if (readableEnded_ && !destroyed_) destroy();
  }

  void closeDescriptor() noexcept {
    if (resolver_) resolver_->cancel();
    if (socket_ && socket_->is_open()) {
      std::error_code ignored;
      socket_->close(ignored);  // pending waits complete with operation_aborted
    }
  }

  // "error" (when err and someone listens: an unhandled socket error does not throw, unlike
  // Node; "close" reports it with hadError), then "close", then the listeners are dropped —
  // unless a "close" listener connected the socket again.
  void emitClose(std::error_code err) {
    if (closeEmitted_) return;
    closeEmitted_ = true;
    struct AfterClose {
      SocketImpl& socket;
      ~AfterClose() {
        if (ConnectionOwner* owner = std::exchange(socket.owner_, nullptr))
          owner->connectionClosed(socket);
        if (!socket.closeEmitted_) return;  // reconnected
        socket.removeAllListeners();
        socket.release();
      }
    } after{*this};
    if (err && listenerCount("error") > 0) emit<"error">(err);
    emit<"close">(hadError_);
  }

  // An asio operation completed: true if it belongs to the live connection; otherwise it is a
  // leftover of a closed one, and the last of those lets the socket go.
  bool current(unsigned gen) noexcept {
    --pendingOps_;
    if (gen == generation_ && !destroyed_) return true;
    release();
    return false;
  }

  // Lets go of the self reference once "close" was emitted and no operation refers to us.
  void release() noexcept {
    if (closeEmitted_ && pendingOps_ == 0 && self_) {
      auto last = std::move(self_);  // may destroy *this when `last` goes out of scope
    }
  }

  void onLoopShutdown() noexcept override {
    destroyed_ = true;
    closeEmitted_ = true;
    loop_.unenroll(idle_);
    closeDescriptor();
    socket_.reset();
    resolver_.reset();
    if (ConnectionOwner* owner = std::exchange(owner_, nullptr)) owner->connectionClosed(*this);
    auto last = std::move(self_);
    // No "close" and no write callback can run now: drop them here, since they may hold handles
    // to this socket. (Locals go in reverse order: `last`, which may free *this, goes last.)
    const auto callbacks = std::move(callbacks_);
    queue_.clear();
    unheard_.clear();
    removeAllListeners();
  }

  // Activity: restarts the idle period; after a "timeout" it starts a new one (Node refreshes
  // the timer on activity, so "timeout" fires again after the next idle period).
  void touch() {
    if (idle_.list != nullptr) return loop_.touch(idle_);
    if (timeoutMs_ != 0 && !destroyed_) loop_.enroll(idle_, timeoutMs_, executor_);
  }
  int fd() const noexcept { return socket_ ? socket_->native_handle() : -1; }
  bool isTcp() const noexcept {
    return (family_ == AF_INET || family_ == AF_INET6) && socket_ && socket_->is_open();
  }

  asio::any_io_executor executor_;
  LoopService& loop_;
  SocketOptions options_;
  std::shared_ptr<SocketImpl> self_;
  mutable std::optional<Protocol::socket> socket_;  // mutable: asio's native_handle()
  std::optional<asio::ip::tcp::resolver> resolver_;
  ConnectionOwner* owner_ = nullptr;

 public:
  SocketImpl* prevConnection = nullptr;  // the owning server's list of its connections
  SocketImpl* nextConnection = nullptr;

 private:
  WriteQueue queue_;
  std::vector<std::pair<std::uint64_t, std::function<void(std::error_code)>>> callbacks_;
  std::string unheard_;            // data that arrived while nobody listened, or while paused
  std::array<char, 256> slot_{};   // where a waiting read lands; a short message stays here
  std::unique_ptr<char[]> large_;  // instead of slot_ while messages fill it
  static constexpr std::size_t kLargeReadSize = 16 * 1024;
  static constexpr unsigned kShortReadsToShrink = 16;  // reads that would fit slot_ in a row
  unsigned shortReads_ = 0;
  std::size_t writableLength_ = 0;
  std::uint64_t totalQueued_ = 0;
  std::uint64_t bytesRead_ = 0;
  std::uint64_t bytesWritten_ = 0;
  LazyAddress remote_;
  LazyAddress local_;
  IdleEntry idle_;
  Deferred rearm_;  // armReadLater()'s place in the loop's list
  unsigned timeoutMs_ = 0;
  unsigned pendingOps_ = 0;
  unsigned generation_ = 0;  // counts connect()s: completions of older ones are ignored
  int family_ = AF_UNSPEC;

  bool connecting_ = false;
  bool readArmed_ = false;
  bool readPosted_ = false;
  bool paused_ = false;
  bool readableEnded_ = false;  // the peer's FIN arrived
  bool writableEnded_ = false;  // end() was called
  bool finished_ = false;       // our FIN is out
  bool inDispatch_ = false;     // inside emit("data"): writes wait for its end
  bool flushPosted_ = false;
  bool writeArmed_ = false;
  bool needDrain_ = false;
  bool destroyed_ = false;
  bool hadError_ = false;
  bool closeEmitted_ = false;
};

}  // namespace detail

/// A TCP or Unix domain connection: a cheap, copyable handle to an EventEmitter with the events
/// connect, ready, data(Buffer), end, finish, close(bool hadError), error(std::error_code),
/// timeout, drain and lookup (Node: net.Socket). The connection lives until "close" whether or
/// not handles remain; after "close" its listeners are dropped, so a listener may capture its
/// own socket. A handle used after close is safe: writes fail with Errc::socketDestroyed.
class Socket : public evnet::detail::EmitterHandle<Socket, detail::SocketImpl> {
 public:
  /// A handle to no socket; only assignment and comparison are valid on it.
  Socket() = default;
  explicit Socket(std::shared_ptr<detail::SocketImpl> impl) : impl_(std::move(impl)) {}

  /// Queues bytes for sending; true while the queue is below highWaterMark, false asks the
  /// caller to wait for "drain" (the bytes are queued either way). The callback runs once the
  /// bytes were handed to the kernel, or with an error (Node: socket.write).
  bool write(std::string_view bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(bytes, std::move(callback));
  }
  /// write(), taking ownership of the buffer instead of copying it.
  bool write(std::string&& bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(detail::WriteQueue::Owned(std::move(bytes)), std::move(callback));
  }
  bool write(std::vector<char>&& bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(detail::WriteQueue::Owned(std::move(bytes)), std::move(callback));
  }
  bool write(std::vector<unsigned char>&& bytes,
             std::function<void(std::error_code)> callback = {}) {
    return impl_->write(detail::WriteQueue::Owned(std::move(bytes)), std::move(callback));
  }
  bool write(std::vector<std::byte>&& bytes, std::function<void(std::error_code)> callback = {}) {
    return impl_->write(detail::WriteQueue::Owned(std::move(bytes)), std::move(callback));
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
  Socket& end() {
    impl_->end();
    return *this;
  }
  /// Writes bytes, then ends; callback runs on "finish".
  template <class Bytes>
  Socket& end(Bytes&& bytes, std::function<void()> callback = {}) {
    write(std::forward<Bytes>(bytes));
    impl_->end(std::move(callback));
    return *this;
  }
  /// Closes at once, dropping queued writes; "error" (if err) and "close" follow (Node:
  /// socket.destroy).
  Socket& destroy(std::error_code err = {}) {
    impl_->destroy(err);
    return *this;
  }
  /// Ends, then destroys once the FIN is out (Node: socket.destroySoon).
  Socket& destroySoon() {
    impl_->destroySoon();
    return *this;
  }
  /// Closes with a TCP RST (Node: socket.resetAndDestroy).
  Socket& resetAndDestroy() {
    impl_->resetAndDestroy();
    return *this;
  }
  /// Connects a closed socket again, to host:port (Node: socket.connect after "close"). Called
  /// from a "close" listener it keeps every listener; later, they are gone (see README). Throws
  /// std::logic_error unless the socket has emitted "close".
  Socket& connect(unsigned short port, std::string host = "localhost",
                  std::function<void()> connectListener = {}) {
    impl_->reopen();
    if (connectListener) once("connect", std::move(connectListener));
    impl_->connect(impl_, std::move(host), port);
    return *this;
  }
  /// connect() to a Unix domain socket at path (Node: socket.connect(path)).
  Socket& connectPath(const std::string& path, std::function<void()> connectListener = {}) {
    impl_->reopen();
    if (connectListener) once("connect", std::move(connectListener));
    impl_->connectPath(impl_, path);
    return *this;
  }
  /// Stops reading from the kernel, so the peer feels backpressure (Node: socket.pause).
  Socket& pause() {
    impl_->pause();
    return *this;
  }
  /// Reads again after pause() (Node: socket.resume).
  Socket& resume() {
    impl_->resume();
    return *this;
  }
  /// Emits "timeout" after ms without reads or writes; the socket stays open; 0 disables (Node:
  /// socket.setTimeout). Re-arming on activity costs no system call.
  Socket& setTimeout(unsigned ms, std::function<void()> callback = {}) {
    if (callback) impl_->once<"timeout">(std::move(callback));
    impl_->setTimeout(ms);
    return *this;
  }
  /// Disables (true) or enables Nagle's algorithm (Node: socket.setNoDelay).
  Socket& setNoDelay(bool noDelay = true) {
    impl_->setNoDelay(noDelay);
    return *this;
  }
  /// Enables TCP keep-alive, first probe after initialDelayMs (Node: socket.setKeepAlive).
  Socket& setKeepAlive(bool enable = false, unsigned initialDelayMs = 0) {
    impl_->setKeepAlive(enable, initialDelayMs);
    return *this;
  }
  /// Forwards this socket's data to dest with backpressure: pauses while dest's write returns
  /// false, resumes on its "drain", ends dest on "end" (Node: readable.pipe).
  Socket& pipe(Socket dest) {
    on("data", [src = std::weak_ptr(impl_), dest](Buffer chunk) mutable {
      if (!dest.write(chunk))
        if (auto s = src.lock()) s->pause();
    });
    dest.on("drain", [src = std::weak_ptr(impl_)] {
      if (auto s = src.lock()) s->resume();
    });
    on("end", [dest]() mutable { dest.end(); });
    return *this;
  }

  /// The kernel's TCP_INFO for this connection; empty for Unix sockets or when closed.
  std::optional<TcpInfo> tcpInfo() const { return impl_->tcpInfo(); }

  /// The peer's address, captured at connect and readable after close (Node:
  /// socket.remoteAddress and friends). Turned into text on first use.
  const std::string& remoteAddress() const { return impl_->remote().address; }
  const std::string& remoteFamily() const { return impl_->remote().family; }
  unsigned short remotePort() const { return impl_->remote().port; }
  /// This end's address, captured at connect (Node: socket.localAddress, localPort).
  const std::string& localAddress() const { return impl_->local().address; }
  unsigned short localPort() const { return impl_->local().port; }
  /// Node: socket.address().
  const AddressInfo& address() const { return impl_->local(); }
  /// Bytes received and sent (Node: socket.bytesRead, bytesWritten).
  std::uint64_t bytesRead() const noexcept { return impl_->bytesRead(); }
  std::uint64_t bytesWritten() const noexcept { return impl_->bytesWritten(); }
  /// Bytes queued and not yet handed to the kernel (Node: writable.writableLength).
  std::size_t writableLength() const noexcept { return impl_->writableLength(); }
  /// "opening", "open", "readOnly", "writeOnly" or "closed" (Node: socket.readyState).
  std::string_view readyState() const noexcept { return impl_->readyState(); }
  /// pending: not connected, before connect and again after close (Node: socket.pending);
  /// connecting: a connect is under way (Node: socket.connecting).
  bool pending() const noexcept { return impl_->connecting() || impl_->destroyed(); }
  bool connecting() const noexcept { return impl_->connecting(); }
  /// True once destroyed or closed (Node: socket.destroyed).
  bool destroyed() const noexcept { return impl_->destroyed(); }
  /// Whether reading is paused (Node: readable.isPaused()).
  bool isPaused() const noexcept { return impl_->paused(); }

  explicit operator bool() const noexcept { return impl_ != nullptr; }
  friend bool operator==(const Socket& a, const Socket& b) noexcept { return a.impl_ == b.impl_; }

 private:
  friend class evnet::detail::EmitterHandle<Socket, detail::SocketImpl>;
  ListenerId listenerAdded(std::string_view name, ListenerId id) {
    if (name == "data") impl_->dataListenerAdded();
    return id;
  }

  std::shared_ptr<detail::SocketImpl> impl_;
};

/// Connects to host:port; the socket emits "connect" when connected, "error" then "close" if it
/// cannot; writes made meanwhile are queued (Node: net.connect / net.createConnection).
inline Socket connect(unsigned short port, std::string host = "localhost",
                      std::function<void()> connectListener = {}, SocketOptions options = {},
                      LoopRef loop = {}) {
  auto impl = std::make_shared<detail::SocketImpl>(loop.executor(), options);
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
  auto impl = std::make_shared<detail::SocketImpl>(loop.executor(), options);
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
