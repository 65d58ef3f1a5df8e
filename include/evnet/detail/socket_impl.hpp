// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_SOCKET_IMPL_HPP
#define EVNET_DETAIL_SOCKET_IMPL_HPP

#include "evnet/buffer.hpp"
#include "evnet/detail/address.hpp"
#include "evnet/detail/block_cache.hpp"
#include "evnet/detail/config.hpp"
#include "evnet/detail/loop_service.hpp"
#include "evnet/detail/stop_token.hpp"
#include "evnet/detail/system_error.hpp"
#include "evnet/detail/write_queue.hpp"
#include "evnet/error.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/net/auto_select_family.hpp"
#include "evnet/net/block_list.hpp"
#include "evnet/net/connect_options.hpp"
#include "evnet/net/socket_options.hpp"

#include <asio/defer.hpp>
#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
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
#include <vector>

namespace evnet::detail {

using net::SocketOptions;
using net::TcpInfo;

// The events of every socket (Node: net.Socket's); a TLS socket adds its own.
template <class... Extra>
using BasicSocketEmitter = EventEmitter<
    Event<"connect", void()>, Event<"ready", void()>, Event<"data", void(Buffer)>,
    Event<"end", void()>, Event<"finish", void()>, Event<"close", void(bool hadError)>,
    Event<"error", void(std::error_code)>, Event<"timeout", void()>, Event<"drain", void()>,
    Event<"lookup",
          void(std::error_code, std::string_view address, int family, std::string_view host)>,
    Event<"connectionAttempt", void(std::string_view ip, unsigned short port, int family)>,
    Event<"connectionAttemptFailed",
          void(std::string_view ip, unsigned short port, int family, std::error_code)>,
    Event<"connectionAttemptTimeout", void(std::string_view ip, unsigned short port, int family)>,
    Extra...>;

// Received bytes that wait for a "data" listener or for resume(), handed out from the front
// in pieces: what is left after a piece stays where it is, so that a listener pausing after
// every piece does not make the rest be copied again each time.
class HeldBytes {
 public:
  bool empty() const noexcept { return from_ == bytes_.size(); }
  void append(const char* data, std::size_t n) {
    if (from_ != 0 && empty()) clear();
    bytes_.append(data, n);
  }
  std::string_view front(std::size_t max) const noexcept {
    return std::string_view(bytes_).substr(from_, max);
  }
  void consume(std::size_t n) noexcept {
    from_ += n;
    if (empty()) clear();
  }
  void clear() noexcept {
    bytes_ = std::string();  // its memory too: what a paused socket held may be large
    from_ = 0;
  }

 private:
  std::string bytes_;
  std::size_t from_ = 0;
};

// The layer between a socket's descriptor and its Node state machine: plain TCP passes the
// bytes through. A layer with `secure` (TLS, see evnet/tls/detail/tls_layer.hpp) decrypts what
// is read, encrypts what is written, and holds the socket's end until its handshake is done.
struct PlainLayer {
  static constexpr bool secure = false;
  using Emitter = BasicSocketEmitter<>;
};

// A connection the io_uring ring accepted: its descriptor alone, which asio has not seen.
struct BareDescriptor {
  int fd;
};

// Told when one of its connections has closed (a server counting its connections), and when a
// secure one has finished its handshake or failed it.
template <class Socket>
class ConnectionOwner {
 public:
  virtual void connectionClosed(Socket& socket) noexcept = 0;
  virtual void connectionSecured(Socket&) {}
  virtual void connectionFailed(Socket&, std::error_code) {}

 protected:
  ~ConnectionOwner() = default;
};

// One connection. Its data path reads top to bottom: wait for readability → read into the
// loop's buffer → emit "data" → writes queue up → one gather write per turn (or per few turns,
// see scheduleFlush) → on EAGAIN wait for writability. The object keeps itself alive (self_)
// until "close" is emitted and every asio operation that refers to it has completed.
template <class Layer>
class SocketImpl final : public Layer::Emitter, public LoopMember {
 public:
  using Owner = ConnectionOwner<SocketImpl>;
  static constexpr bool secure = Layer::secure;

  SocketImpl(const asio::any_io_executor& executor, const SocketOptions& options)
      : SocketImpl(ioContextOf(executor).get_executor(), LoopService::of(executor), options) {}
  // With the executor's LoopService already at hand (a server's accepted sockets): finding it
  // takes asio's service registry lock.
  SocketImpl(const asio::io_context::executor_type& executor, LoopService& loop,
             const SocketOptions& options);
  SocketImpl(const SocketImpl&) = delete;
  SocketImpl& operator=(const SocketImpl&) = delete;
  ~SocketImpl();

  // --- opening ---------------------------------------------------------------------------

  // An accepted connection (the server calls this before emitting "connection"). `local` is
  // its address when the server knows it (a listener bound to one address), saving a
  // getsockname(); null to ask the kernel.
  void adopt(std::shared_ptr<SocketImpl> self, StreamSocket socket, const Protocol::endpoint& peer,
             Owner* owner, const Protocol::endpoint* local = nullptr);
  // One the io_uring ring accepted. The ring does its reads and writes, so it is not registered
  // with asio's reactor, where it would cost two epoll_ctl: one at assign(), one at close()
  // (asio cannot know that an assigned descriptor is not a dup()).
  void adopt(std::shared_ptr<SocketImpl> self, BareDescriptor descriptor,
             const Protocol::endpoint& peer, Owner* owner,
             const Protocol::endpoint* local = nullptr);

  void connect(std::shared_ptr<SocketImpl> self, std::string host, unsigned short port);
  void connectPath(std::shared_ptr<SocketImpl> self, const std::string& path);

  // Node's socket.connect(options): resolves the host (Node: 'lookup'), then tries its
  // addresses as Node 20 does (see attempt()). Throws std::invalid_argument for a family other
  // than 0, 4 and 6 or a localAddress that is not an IP address, as Node throws.
  void connect(std::shared_ptr<SocketImpl> self, net::ConnectOptions options);

  // Node: socket.autoSelectFamilyAttemptedAddresses, "address:port" for each address tried.
  const std::vector<std::string>& attemptedAddresses() const noexcept {
    static const std::vector<std::string> none;
    return connector_ ? connector_->attempted : none;
  }

  // A socket made unconnected (Node: new net.Socket()) until its first connect(): a write fails
  // with ERR_SOCKET_CLOSED, as in Node.
  void makeUnconnected() noexcept;
  bool unconnected() const noexcept { return unconnected_; }
  // Before destroy() of a socket that never connected: it lives until its "close".
  void holdUntilClosed(const std::shared_ptr<SocketImpl>& self);

  // Makes a closed socket new again for connect() (Node: socket.connect after "close",
  // test-net-reconnect.js): the byte counters, addresses and stream states start over; the
  // idle timeout carries over. Operations of the old connection still in asio's queues belong
  // to an older generation and complete as no-ops.
  void reopen();

  // --- reading ----------------------------------------------------------------------------

  // Waits for data with a read into the socket's small slot, or its large buffer while its
  // messages are long. A pending read costs asio no system call to re-arm, where a readability
  // wait costs an epoll_ctl each time. The operation's memory comes from the loop's pool. Armed
  // only once the kernel queue was found empty.
  void armRead() {
    if (readArmed_ || readPaused() || readableEnded_ || destroyed_ || connecting_) return;
#if EVNET_HAS_IO_URING
    if (ring_ != nullptr) return armRingRead();
#endif
    readArmed_ = true;
    ++pendingOps_;
    socket_->async_receive(
        asio::buffer(readSpace().data(), readSpace().size()),
        ReadHandler{this, generation_, PoolAllocator<void>(loop_.operationPool())});
    if (unref_) [[unlikely]]
      hideReadSoon();
  }

  // The read's completion handler. Its memory comes from the loop's pool through its own
  // allocator_type, not asio::bind_allocator: asio 1.22 tracks work for each operation whose
  // handler specializes associated_executor (as the binder does) on an I/O object of
  // io_context's executor type, and that work would keep run() going for an unref()'d socket.
  struct ReadHandler {
    using allocator_type = PoolAllocator<void>;
    SocketImpl* socket;
    unsigned generation;
    allocator_type allocator;
    allocator_type get_allocator() const noexcept { return allocator; }
    void operator()(std::error_code ec, std::size_t n) const {
      if (socket->readHidden_) [[unlikely]]
        socket->showRead();
      if (socket->current(generation)) socket->onRead(ec, n);
    }
  };

  // A message that leaves room in the read space is delivered from it. A full slot means more
  // is waiting: it is read into the loop's buffer after the slot's bytes, and the next reads go
  // to a large buffer (one system call for a pipelined batch, not two), kept until messages are
  // short again. A full large buffer is delivered, and reading continues into the loop's buffer.
  void onRead(std::error_code ec, std::size_t n) {
    readArmed_ = false;
    if (ec == asio::error::eof) return endBehindHeld();  // a read armed before pause()
    if (ec) return destroy(ec);
    if constexpr (!Layer::secure) bytesRead_ += n;  // a secure socket counts plaintext
    touch();
    const std::span<char> space = readSpace();
    if (readPaused()) return received(space.data(), n);  // read before pause() took effect
    if (n < space.size()) {
      received(space.data(), n);
      if (n >= slot_.size())
        shortReads_ = 0;
      else if (shortReads_ < kShortReadsToShrink && ++shortReads_ == kShortReadsToShrink)
        large_.reset();
      return armReadLater();
    }
    shortReads_ = 0;
    if (large_) {
      received(space.data(), n);
      return readNow();
    }
    large_ = std::make_unique<char[]>(kLargeReadSize);
    readNow(n);
  }
  std::span<char> readSpace() noexcept {
    if (large_) return {large_.get(), kLargeReadSize};
    return slot_;
  }

  // Waits for the peer's next message once this one was handled: by default once the loop has
  // run the other completions that are ready now (readDeferred). The peer's next message is
  // often in by then, where a read armed at once would fail with EAGAIN, a system call per
  // message more. But a peer that did not answer within the turn kSlowAfter times in a row is
  // waited for at once: deferring would cost the loop a poll (asio polls its reactor before it
  // runs posted handlers), and the read would fail all the same. Such a socket still joins a
  // deferral that another socket started, whose poll is paid, and tries one every kProbeEvery
  // messages: a peer that became fast is seen again.
  void armReadLater() {
    if (rearm_.queued) return;
    if (misses_ >= kSlowAfter && !loop_.laterPending() && ++sinceProbe_ < kProbeEvery)
      return armRead();
    sinceProbe_ = 0;
    ++pendingOps_;
    loop_.later(rearm_);
  }

  // The deferred read: the socket's own non-blocking read, not asio's speculative one, which
  // does not tell whether it found data. When it finds none, asio's read waits (and tries once
  // more first): the price of knowing, paid once per change of pace.
  void readDeferred() {
    if (readArmed_ || readPaused() || readableEnded_ || destroyed_ || connecting_) return;
#if EVNET_HAS_IO_URING
    if (ring_ != nullptr) return waitForRead();
#endif
    const std::span<char> space = readSpace();
    for (;;) {
      const ssize_t n = ::recv(fd(), space.data(), space.size(), 0);
      if (n > 0) {
        misses_ = 0;
        return onRead({}, static_cast<std::size_t>(n));
      }
      if (n == 0) return endBehindHeld();
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return destroy(lastError());
      if (misses_ < kSlowAfter) ++misses_;
      return waitForRead();
    }
  }
  void waitForRead() {
    try {
      armRead();
    } catch (const std::bad_alloc&) {  // no memory for asio's operation: this socket fails
      destroy(std::make_error_code(std::errc::not_enough_memory));
    }
  }

  // Reads what the kernel has into the loop's buffer, after `carried` bytes from the slot, and
  // emits it. One buffer (64 KiB) per turn: a peer that sends without pause is read again only
  // after every other ready socket had its turn, so it cannot starve them.
  void readNow(std::size_t carried = 0) {
    const std::span<char> buffer = loop_.readBuffer();
    if (carried != 0) std::memcpy(buffer.data(), slot_.data(), carried);
    const int fd = this->fd();
    for (;;) {
      if (readPaused() || readableEnded_ || destroyed_) return;
      const ssize_t n = ::recv(fd, buffer.data() + carried, buffer.size() - carried, 0);
      if (n > 0) {
        if constexpr (!Layer::secure) bytesRead_ += static_cast<std::uint64_t>(n);
        touch();
        const std::size_t total = carried + static_cast<std::size_t>(n);
        received(buffer.data(), total);
        if (total < buffer.size()) return armReadLater();
        return postRead();
      }
      if (n < 0 && errno == EINTR) continue;
      if (carried != 0) received(buffer.data(), std::exchange(carried, 0));
      if (destroyed_) return;
      if (n == 0) return endBehindHeld();  // the listener may have paused at the carried bytes
      if (errno == EAGAIN || errno == EWOULDBLOCK) return armRead();
      return destroy(lastError());
    }
  }

#if EVNET_HAS_IO_URING
  // --- reading with io_uring -------------------------------------------------------------
  // One multishot receive per connection into the loop's shared buffers, armed until the end
  // of the stream, an error, or pause(). Its completions are dispatched by the ring once per
  // turn; each buffer goes back to the kernel once "data" was emitted from it. The operation
  // keeps the loop running as asio's read would (unref() hides it the same way).
  struct RecvOp : UringOp {
    SocketImpl* socket = nullptr;
  };

  std::uint16_t ringTag() const noexcept { return static_cast<std::uint16_t>(generation_); }

  void armRingRead() {
    recvOp_.complete = [](UringOp* op, std::uint16_t tag, int res, unsigned flags) {
      static_cast<RecvOp*>(op)->socket->onRingRead(tag, res, flags);
    };
    ring_->armRecv(fd(), recvOp_, ringTag());
    readArmed_ = true;
    readCancelling_ = false;
    ++pendingOps_;
    showWork(executor_);
    if (unref_) [[unlikely]]
      hideRead();
  }

  void cancelRingRead() {
    if (!readArmed_ || readCancelling_) return;
    readCancelling_ = true;
    ring_->cancel(recvOp_, ringTag());
  }

  void onRingRead(std::uint16_t tag, int res, unsigned flags) {
    struct GiveBack {  // the buffer, whatever a listener does
      Ring& ring;
      unsigned flags;
      ~GiveBack() { ring.giveBack(flags); }
    } giveBack{*ring_, flags};
    const bool mine = tag == ringTag();
    if ((flags & IORING_CQE_F_MORE) != 0) {
      if (mine && !destroyed_) ringReceived(res, flags);
      return;
    }
    if (mine) readArmed_ = false;
    if (readHidden_) [[unlikely]]
      showRead();
    hideWork(executor_);
    --pendingOps_;
    if (!mine || destroyed_) return release();
    if (res > 0) {
      ringReceived(res, flags);
    } else if (res == 0) {
      return endBehindHeld();
    } else if (res != -ENOBUFS && res != -ECANCELED) {  // no buffer free: read again
      return destroy(std::error_code(-res, std::system_category()));
    }
    if (std::exchange(readThrottled_, false)) return postRead();  // its next turn
    armRead();  // a receive the kernel ended early, after ENOBUFS, or after resume()
  }

  void ringReceived(int res, unsigned flags) {
    const auto n = static_cast<std::size_t>(res);
    if constexpr (!Layer::secure) bytesRead_ += n;
    touch();
    received(ring_->buffer(flags, res).data(), n);
    if (destroyed_) return;
    if (readPaused()) return cancelRingRead();  // pause() inside the listener
    // As with epoll, a socket gets at most one read buffer's worth (64 KiB) per turn, so that a
    // peer sending without pause cannot take every buffer of the ring from the others: past
    // that its receive is cancelled, and armed again in a later turn (postRead).
    if (ring_->turns() != readTurn_) {
      readTurn_ = ring_->turns();
      turnBytes_ = 0;
    }
    turnBytes_ += static_cast<std::uint32_t>(n);  // at most one ring buffer
    if (turnBytes_ >= LoopService::kReadBufferSize) {
      readThrottled_ = true;
      cancelRingRead();
    }
  }
#endif

  // Bytes from the kernel. Plain ones are the data; a secure layer decrypts them and passes
  // the plaintext on to plaintext(), calling it once per record.
  void received(char* data, std::size_t n) {
    if constexpr (Layer::secure)
      layer_.received(*this, data, n);
    else
      plaintext(data, n);
  }
  // The data: emitted, or kept for resume() while paused, and behind bytes kept before (an
  // io_uring receive completes between resume() and its postRead()).
  void plaintext(const char* data, std::size_t n);

  // Emits "data"; writes made by the listeners go out together right after, in one call. With
  // no "data" listener the bytes are kept and reading pauses until one is added (Node: a
  // stream flows only once it has a 'data' listener), so nothing is lost.
  void deliver(Buffer chunk) {
    if (!emitData(chunk) && !destroyed_) {
      unheard_.append(chunk.data(), chunk.size());
      paused_ = true;
    }
  }
  // Whether a "data" listener heard the chunk.
  bool emitData(Buffer chunk) {
    inDispatch_ = true;
    bool heard = false;
    try {
      heard = this->template emit<"data">(chunk);
    } catch (...) {
      inDispatch_ = false;
      destroy();  // a throwing listener: the exception leaves run(), the socket is released
      throw;
    }
    inDispatch_ = false;
    if (!queue_.empty()) flush();
    return heard;
  }

  // The peer's FIN. A secure socket ends there too when its handshake is done, with or without
  // the peer's close_notify, as Node's does.
  void peerEnded() {
    if constexpr (Layer::secure) {
      if (!layer_.established()) return layer_.endedBeforeSecure(*this);
    }
    onEnd();
  }

  // The end of the stream: "end", then our own end unless allowHalfOpen.
  void onEnd();

  // The peer's end, read while the socket is paused or data before it waits for a "data"
  // listener (a read armed before pause(), an io_uring receive, a TLS close_notify in the same
  // read): the end waits too (postRead), as in Node, where 'end' follows the data (Node emits an
  // end with nothing before it while paused: see the README on pause()).
  void endBehindHeld() {
    if (readableEnded_) return;  // a TLS close_notify ended it: the FIN behind it says no more
    if (readPaused() || !unheard_.empty()) {  // a handshake reads on, and must see the end
      endHeld_ = true;
      return;
    }
    peerEnded();
  }

  // Stops emitting "data" (Node: socket.pause()). An io_uring receive is cancelled: what it
  // already read is kept for resume().
  void pause() noexcept;

  void resume();

  void dataListenerAdded();

  // Reads in a later turn: after resume(), or when a read burst filled the buffer each time.
  // Held data is delivered then even while a read is armed (an io_uring receive whose
  // cancellation by pause() has not completed yet): what that read brings queues behind it.
  void postRead() {
    if (readPosted_ || (readArmed_ && unheard_.empty())) return;
    readPosted_ = true;
    ++pendingOps_;
    asio::post(executor_, [this, gen = generation_] {
      if (!current(gen)) return;
      readPosted_ = false;
      if (!unheard_.empty() && !paused_) deliverHeld();
      if (endHeld_ && !paused_ && unheard_.empty() && !destroyed_) {
        endHeld_ = false;
        return peerEnded();
      }
#if EVNET_HAS_IO_URING
      if (ring_ != nullptr) return armRead();
#endif
      // A read armed since (a read burst ended in EAGAIN) may hold newer bytes already: reading
      // beside it would deliver them out of order.
      if (!readArmed_) readNow();
    });
  }

  // The data kept while paused, in pieces of one read buffer (64 KiB) at most, as it was read:
  // a listener that pauses again stops the rest (pipe() keeps its destination's queue within
  // highWaterMark and one read), which waits for the next resume().
  void deliverHeld() {
    while (!unheard_.empty() && !paused_ && !destroyed_) {
      const std::string_view piece = unheard_.front(LoopService::kReadBufferSize);
      if (!emitData(Buffer(piece))) {
        paused_ = true;  // no one heard it: kept for the next "data" listener
        break;
      }
      if (!destroyed_) unheard_.consume(piece.size());
    }
  }

  // Emits an event of the connection's life. A listener that throws destroys the socket (as a
  // throwing "data" listener does) and the exception leaves run(): a socket is never left
  // half-way through a change of state, e.g. ended on one side only.
  template <FixedString Name, class... Args>
  void emitOrDestroy(const Args&... args) {
    try {
      this->template emit<Name>(args...);
    } catch (...) {
      destroy();
      throw;
    }
  }

  // --- writing ----------------------------------------------------------------------------

  // The callback by reference: the public write() made it, and moving it on costs per message.
  bool write(std::string_view bytes, std::function<void(std::error_code)>&& callback);
  bool write(WriteQueue::Owned&& bytes, std::function<void(std::error_code)>&& callback);

  void end(std::function<void()> callback = {});

  // Holds writes in the queue until as many uncork() calls (Node: writable.cork). It costs the
  // write path nothing: a corked socket looks to flush() as one waiting to be writable. Should
  // it really be waiting at cork() time, the queue goes out once the kernel takes more.
  void cork() noexcept {
    if (corked_++ == 0 && !writeArmed_) corkHolds_ = writeArmed_ = true;
  }
  // Node: writable.uncork. A plain socket on epoll hands the held writes to the kernel now, as
  // Node does, unless a "data" listener runs (its writes go out at its end); a TLS socket and
  // the ring send at the end of the turn, as they send every write made outside a listener.
  // Callbacks, "drain", "finish" and a failed send's "error" come later, from a flush of their
  // own, so that uncork() calls back no one (in Node they wait for the next tick).
  void uncork();
  unsigned corked() const noexcept { return corked_; }

  // Buffers per system call: Linux's IOV_MAX, so that many small owned buffers (a subscriber's
  // messages) go out in one call.
  static constexpr int kMaxGather = 1024;
  static constexpr std::size_t kRingDirect = 8 * 1024;

  // Sends the queue with as few system calls as the kernel allows. With io_uring, in one send
  // operation submitted at the turn's end; `now` (a large write), or kRingDirect bytes queued,
  // sends what the kernel takes at once, as epoll does, and leaves the rest to the ring: a
  // system call is cheap next to so many bytes, and the queue stays below highWaterMark when
  // the kernel takes it all (an echo of large chunks would otherwise see write() return false
  // for every second chunk, while the first waits for the turn's end). A lone write (see
  // Ring::sendDirectly) goes at once too: one client's request and its answer, as at c=1.
  void flush(bool now = false);

 private:
  // A failure destroys the socket, or with `failLater` waits in sendFailed_ for flush().
  void sendPlain(bool failLater = false) {
    const int fd = this->fd();
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
        bytesSent_ += static_cast<std::uint64_t>(n);
        touch();
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
#if EVNET_HAS_IO_URING
        if (ring_ != nullptr) return ringSend();  // the ring waits for room
#endif
        armWrite();
        break;
      } else if (errno != EINTR) {
        if (failLater) {
          sendFailed_ = lastError();
          return;
        }
        return destroy(lastError());
      }
    }
  }

#if EVNET_HAS_IO_URING
  // With io_uring, the queue goes out in one send operation at a time, submitted with the
  // turn's other operations; its completion consumes what the kernel took and flushes again.
  // While it is in flight the socket counts as waiting to be writable (writeArmed_), and the
  // queued bytes stay where they are (WriteQueue never moves them). Its state (600 bytes) is
  // made for a burst of sends and freed once none is in flight, into a per-thread BlockCache: an
  // idle connection holds none (it cost an echo server's idle connections 1.1 KiB each), and a
  // send allocates nothing once the loop is warm.
  static constexpr int kRingGather = 32;
  // A TLS socket's send takes the layer's records along (see sendSecure).
  struct Records {
    std::string bytes;
    std::size_t sent = 0;
  };
  struct NoRecords {};
  struct RingSend : UringOp {
    SocketImpl* socket = nullptr;
    msghdr message{};
    std::array<iovec, kRingGather> iov;   // filled by gather() for each send, not before
    std::unique_ptr<WriteQueue> retired;  // destroy() while in flight: the bytes it sends
    std::unique_ptr<RingSend> older;      // the socket's other retired sends
    [[no_unique_address]] std::conditional_t<Layer::secure, Records, NoRecords> records;

    static void* operator new(std::size_t) { return BlockCache<sizeof(RingSend)>::allocate(); }
    static void operator delete(void* block) noexcept {
      BlockCache<sizeof(RingSend)>::deallocate(block);
    }
  };

  RingSend& ringSendState() {
    if (!ringSend_) {
      ringSend_.reset(new RingSend);  // not make_unique: its value-initialization zeroes iov
      ringSend_->socket = this;
      ringSend_->complete = [](UringOp* op, std::uint16_t, int res, unsigned) {
        auto* send = static_cast<RingSend*>(op);
        SocketImpl& socket = *send->socket;
        if (send->retired) return socket.retiredSent(*send);
        socket.ringSent(res);
      };
    }
    return *ringSend_;
  }

  void ringSend() {
    RingSend& send = ringSendState();
    send.message.msg_iov = send.iov.data();
    send.message.msg_iovlen = static_cast<std::size_t>(queue_.gather(send.iov.data(), kRingGather));
    armRingSend(send);
  }
  void armRingSend(RingSend& send) {
    ring_->armSend(fd(), send, ringTag(), send.message);
    writeArmed_ = true;
    sending_ = true;
    ++pendingOps_;
    showWork(executor_);
  }

  // Sends the layer's records through the ring, made first from the queue if there are none;
  // the send owns them until the kernel took them all. False: the socket waits for it.
  template <class = void>
  bool ringSendSecure() {
    if (layer_.output().empty() && !encryptQueued()) {
      bytesSent_ += layer_.takeSentPlaintext();
      return !destroyed_;
    }
    RingSend& send = ringSendState();
    send.records.bytes = layer_.takeOutput(send.records.sent);
    armRecords(send);
    return false;
  }
  template <class = void>
  void armRecords(RingSend& send) {
    Records& records = send.records;
    send.iov[0] = {records.bytes.data() + records.sent, records.bytes.size() - records.sent};
    send.message.msg_iov = send.iov.data();
    send.message.msg_iovlen = 1;
    armRingSend(send);
  }
  // The kernel took n bytes of the records: true once it took them all.
  template <class = void>
  bool recordsSent(std::size_t n) {
    Records& records = ringSend_->records;
    records.sent += n;
    if (records.sent < records.bytes.size()) {
      armRecords(*ringSend_);
      return false;
    }
    Layer::recycle(records.bytes);
    records.sent = 0;
    bytesSent_ += layer_.takeSentPlaintext();
    return true;
  }

  void ringSent(int res) {
    hideWork(executor_);
    --pendingOps_;
    if (!sending_ || destroyed_) return release();
    sending_ = false;
    writeArmed_ = false;
    if (res < 0) return destroy(std::error_code(-res, std::system_category()));
    if constexpr (Layer::secure) {
      touch();
      if (!recordsSent(static_cast<std::size_t>(res))) return;  // the rest is on its way
      flush();
      if (!sending_) ringSend_.reset();
      return;
    }
    const auto n = static_cast<std::size_t>(res);
    queue_.consume(n);
    writableLength_ -= n;
    bytesSent_ += n;
    touch();
    flush();
    if (!sending_) ringSend_.reset();
  }

  // destroy() with a send in flight: the send keeps its state and the queued bytes until the
  // kernel has let go of them (in retired_, which the socket frees if the loop goes first).
  void retireRingSend() {
    std::unique_ptr<RingSend> send = std::move(ringSend_);
    send->retired = std::make_unique<WriteQueue>(std::move(queue_));  // leaves queue_ empty
    sending_ = false;
    send->older = std::move(retired_);
    retired_ = std::move(send);
  }
  void retiredSent(RingSend& send) {
    hideWork(executor_);
    --pendingOps_;
    std::unique_ptr<RingSend>* link = &retired_;
    while (link->get() != &send) link = &(*link)->older;
    *link = std::move(send.older);  // frees send
    release();
  }
#endif

  // Sends the layer's records, encrypting queued writes as the kernel takes the records before
  // them (so that at most one batch waits encrypted); false if the socket failed or waits to be
  // writable. The plaintext counts as written once its records are out. A template, so that an
  // explicit instantiation of a plain socket (<evnet/impl/src.hpp>) leaves it out.
  //
  // With io_uring, the records go out as the plain queue does (see flush): a send operation at
  // the turn's end takes them along, unless many bytes are queued or the write is a lone one;
  // one that the kernel cannot take at once goes to the ring, which waits for room.
  template <class = void>
  bool sendSecure(bool now = false) {
#if EVNET_HAS_IO_URING
    if (ring_ != nullptr && !now && writableLength_ < kRingDirect && !ring_->sendDirectly())
      return ringSendSecure();
#else
    (void)now;
#endif
    const int fd = this->fd();
    for (;;) {
      for (std::span<const char> out = layer_.output(); !out.empty(); out = layer_.output()) {
        const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
        if (n >= 0) {
          layer_.sent(static_cast<std::size_t>(n));
          touch();
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
#if EVNET_HAS_IO_URING
          if (ring_ != nullptr) return ringSendSecure();
#endif
          armWrite();
          return false;
        } else if (errno != EINTR) {
          destroy(lastError());
          return false;
        }
      }
      bytesSent_ += layer_.takeSentPlaintext();
      if (!encryptQueued()) return !destroyed_;
    }
  }

  // Encrypts a batch of the queue into the layer's records; false if there was nothing to
  // encrypt yet (or the socket failed).
  template <class = void>
  bool encryptQueued() {
    if (queue_.empty() || !layer_.established()) return false;
    std::array<iovec, 64> iov;
    const std::size_t taken = layer_.encrypt(*this, iov.data(), queue_.gather(iov.data(), 64));
    if (destroyed_) return false;
    queue_.consume(taken);
    writableLength_ -= taken;
    return true;
  }

 public:
  // --- closing ----------------------------------------------------------------------------

  // Closes now, dropping queued writes; "error" (if err) then "close" follow in a later turn.
  void destroy(std::error_code err = {});

  // Ends our side, then destroys once the FIN is out (Node: destroySoon).
  void destroySoon();

  // Closes with a TCP RST instead of a FIN (Node: resetAndDestroy).
  void resetAndDestroy();

  // --- ref / unref ------------------------------------------------------------------------

  // Node's socket.unref(): an open socket no longer keeps its loop running. What keeps it
  // running is the read waiting for the peer; while unreferenced, that one is hidden from the
  // loop's work count (see hideWork). Connecting and writes the kernel has not taken yet still
  // count, as Node's connect and write requests do.
  void unref() noexcept {
    unref_ = true;
    if (readArmed_) hideReadSoon();
  }
  void ref() noexcept {
    unref_ = false;
    if (readHidden_) showRead();
  }
  bool hasRef() const noexcept { return !unref_; }

  // --- options and state ------------------------------------------------------------------

  void setTimeout(unsigned ms);
  void setNoDelay(bool enable);
  void setKeepAlive(bool enable, unsigned initialDelayMs);
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
    if (unconnected_ && !destroyed_) return "open";  // as Node says of a new net.Socket()
    if (destroyed_ || !isOpen()) return "closed";
    if (readableEnded_ && writableEnded_) return "closed";
    if (readableEnded_) return "writeOnly";
    if (writableEnded_) return "readOnly";
    return "open";
  }

  const AddressInfo& remote() const { return remote_.get(); }
  const AddressInfo& local() const { return local_.get(); }
  std::uint64_t bytesRead() const noexcept { return bytesRead_; }
  // Every byte handed to write() or end(), queued ones included, as Node counts.
  std::uint64_t bytesWritten() const noexcept { return totalQueued_; }
  std::size_t writableLength() const noexcept { return writableLength_; }
  unsigned timeoutMs() const noexcept { return timeoutMs_; }
  bool writableEnded() const noexcept { return writableEnded_; }
  bool finished() const noexcept { return finished_; }
  bool readableEnded() const noexcept { return readableEnded_; }
  bool connecting() const noexcept { return connecting_; }
  bool destroyed() const noexcept { return destroyed_; }
  bool closed() const noexcept { return closeEmitted_; }
  bool paused() const noexcept { return paused_; }
  const asio::io_context::executor_type& executor() const noexcept { return executor_; }
  LoopService& loop() const noexcept { return loop_; }
  Layer& layer() noexcept { return layer_; }
  const Layer& layer() const noexcept { return layer_; }
  Owner* owner() const noexcept { return owner_; }
  const std::shared_ptr<SocketImpl>& self() const noexcept { return self_; }

  // Starts reading and applies options; called once the connection exists.
  void start();
  void startPaused();
  void detachOwner() noexcept { owner_ = nullptr; }

 private:
  void adopted(std::shared_ptr<SocketImpl> self, const Protocol::endpoint& peer, Owner* owner,
               const Protocol::endpoint* local);
  void opened() {
    if (socket_) {  // a bare descriptor was accepted non-blocking
      std::error_code ignored;
      socket_->non_blocking(true, ignored);
    }
    if (!local_.known()) {
      if (const auto local = localEndpoint(fd())) local_.set(*local);
    }
    if (isTcp()) {
      if (options_.noDelay) setNoDelay(true);
      if (options_.keepAlive) setKeepAlive(true, options_.keepAliveInitialDelayMs);
    }
  }

  // The addresses of the host, resolved: Node 20's lookupAndConnect. With autoSelectFamily (and
  // neither family nor localAddress), every address is tried, families alternating from the
  // first address's (Happy Eyeballs, as Node's lookupAndConnectMultiple); otherwise the first.
  void resolved(std::error_code error, std::vector<asio::ip::tcp::endpoint> endpoints) {
    Connector& c = *connector_;
    if (!error && endpoints.empty())
      error = asio::error::make_error_code(asio::error::host_not_found);
    error = systemError(error);
    const bool multiple = c.options.autoSelectFamily.value_or(net::getDefaultAutoSelectFamily()) &&
                          c.options.family == 0 && c.options.localAddress.empty();
    if (error || !multiple) {
      const asio::ip::tcp::endpoint first =
          endpoints.empty() ? asio::ip::tcp::endpoint() : endpoints.front();
      emitOrDestroy<"lookup">(error, error ? std::string() : first.address().to_string(),
                              error ? 0 : familyOf(first), c.options.host);
      if (error) return destroy(error);
      if (destroyed_) return;
      c.addresses.push_back(first);
      return attempt();
    }
    std::array<std::vector<asio::ip::tcp::endpoint>, 2> byFamily;  // [0]: the first's family
    const bool firstV6 = endpoints.front().address().is_v6();
    for (const asio::ip::tcp::endpoint& endpoint : endpoints) {
      emitOrDestroy<"lookup">(error, endpoint.address().to_string(), familyOf(endpoint),
                              c.options.host);
      if (destroyed_) return;
      auto& same = byFamily[endpoint.address().is_v6() == firstV6 ? 0 : 1];
      if (std::find(same.begin(), same.end(), endpoint) == same.end()) same.push_back(endpoint);
    }
    for (std::size_t i = 0; i < std::max(byFamily[0].size(), byFamily[1].size()); ++i)
      for (const auto& family : byFamily)
        if (i < family.size()) c.addresses.push_back(family[i]);
    c.multiple = c.addresses.size() > 1;
    attempt();
  }

  // Tries the next address (Node 20's internalConnect and internalConnectMultiple): events
  // connectionAttempt, then connectionAttemptFailed or, after autoSelectFamilyAttemptTimeout
  // with more addresses left, connectionAttemptTimeout, and the next address. Once all have
  // failed, the socket is destroyed with the first error (Node: an AggregateError whose code is
  // the first error's).
  void attempt() {
    Connector& c = *connector_;
    if (c.current == c.addresses.size())
      return destroy(c.errors.empty() ? make_error_code(Errc::socketConnectionTimeout)
                                      : c.errors.front());
    const std::size_t index = c.current++;
    const asio::ip::tcp::endpoint target = c.addresses[index];
    const std::string ip = target.address().to_string();
    const int family = familyOf(target);
    if (c.multiple) c.attempted.push_back(ip + ":" + std::to_string(target.port()));
    if (c.options.blockList && net::detail::blocksPeer(*c.options.blockList, target.data())) {
      if (!c.multiple) return destroy(make_error_code(Errc::ipBlocked));
      return attemptFailed(index, make_error_code(Errc::ipBlocked));
    }
    std::optional<Protocol::endpoint> bindTo;
    if (!c.options.localAddress.empty() || c.options.localPort != 0) {
      const asio::ip::address local =
          !c.options.localAddress.empty() ? asio::ip::make_address(c.options.localAddress)
          : target.address().is_v6()      ? asio::ip::address(asio::ip::address_v6::any())
                                          : asio::ip::address(asio::ip::address_v4::any());
      const asio::ip::tcp::endpoint endpoint(local, c.options.localPort);
      bindTo.emplace(endpoint.data(), endpoint.size(), IPPROTO_TCP);
    }
    emitOrDestroy<"connectionAttempt">(ip, target.port(), family);
    if (destroyed_) return;
    startConnect(Protocol::endpoint(target.data(), target.size(), IPPROTO_TCP),
                 bindTo ? &*bindTo : nullptr,
                 [this, index](std::error_code ec) { attemptFailed(index, ec); });
    if (destroyed_ || c.current != index + 1 || !c.multiple || c.current == c.addresses.size())
      return;
    ++pendingOps_;
    c.attemptTimer.expires_after(c.options.autoSelectFamilyAttemptTimeout.value_or(
        net::getDefaultAutoSelectFamilyAttemptTimeout()));
    c.attemptTimer.async_wait([this, gen = generation_, index](std::error_code ec) {
      if (!current(gen) || ec || !connecting_ || connector_->current != index + 1) return;
      connector_->errors.push_back(std::make_error_code(std::errc::timed_out));
      std::error_code ignored;
      socket_->close(ignored);  // its connect completes as aborted, and is ignored
      const asio::ip::tcp::endpoint target = connector_->addresses[index];
      emitOrDestroy<"connectionAttemptTimeout">(target.address().to_string(), target.port(),
                                                familyOf(target));
      if (!destroyed_) attempt();
    });
  }

  void attemptFailed(std::size_t index, std::error_code ec) {
    Connector& c = *connector_;
    if (c.current != index + 1) return;  // an attempt that had timed out
    c.errors.push_back(ec);
    const asio::ip::tcp::endpoint target = c.addresses[index];
    emitOrDestroy<"connectionAttemptFailed">(target.address().to_string(), target.port(),
                                             familyOf(target), ec);
    if (!destroyed_) attempt();
  }

  static int familyOf(const asio::ip::tcp::endpoint& endpoint) noexcept {
    return endpoint.address().is_v6() ? 6 : 4;
  }

  template <class OnFailure>
  void startConnect(const Protocol::endpoint& target, const Protocol::endpoint* bindTo,
                    OnFailure onFailure) {
    socket_.emplace(executor_);
    family_ = target.data()->sa_family;
    std::error_code ec;
    socket_->open(target.protocol(), ec);
    if (!ec && bindTo != nullptr) {
      socket_->set_option(asio::socket_base::reuse_address(true), ec);  // as libuv binds
      socket_->bind(*bindTo, ec);
    }
    if (ec) return onFailure(systemError(ec));
    ++pendingOps_;
    socket_->async_connect(target, [this, target, onFailure = std::move(onFailure),
                                    gen = generation_](std::error_code error) mutable {
      if (!current(gen)) return;
      if (error) return onFailure(systemError(error));
      connecting_ = false;
      if (connector_) connector_->attemptTimer.cancel();
      remote_.set(target);
      opened();
      emitOrDestroy<"connect">();
      emitOrDestroy<"ready">();  // as Node: also when a "connect" listener destroyed the socket
      if (destroyed_) return;
      if constexpr (Layer::secure) layer_.connect(*this);  // the handshake's first flight
      if (destroyed_) return;
      flush();  // writes made while connecting; also finishes if end() was called
      if (!readPaused()) postRead();  // a secure socket reads its handshake regardless
    });
  }

  // Node's errors for a write that cannot be, in Node's order: once the peer ended and
  // allowHalfOpen is false, EPIPE ("This socket has been ended by the other party", also after
  // close: Node's writeAfterFIN); after our own end, ERR_STREAM_WRITE_AFTER_END; after destroy,
  // ERR_STREAM_DESTROYED.
  bool writable(const std::function<void(std::error_code)>& callback) {
    if (!destroyed_ && !writableEnded_) return true;
    // Never connected (Node: ERR_SOCKET_CLOSED): the socket stays as it is.
    const bool unconnected = unconnected_ && !destroyed_;
    const std::error_code ec = unconnected ? make_error_code(Errc::socketClosed)
                               : readableEnded_ && !options_.allowHalfOpen
                                   ? std::make_error_code(std::errc::broken_pipe)
                               : writableEnded_ ? make_error_code(Errc::writeAfterEnd)
                                                : make_error_code(Errc::socketDestroyed);
    if (callback && loopAlive()) asio::post(executor_, [callback, ec] { callback(ec); });
    if (!destroyed_ && !unconnected) destroy(ec);  // Node: a write after end destroys the socket
    return false;
  }

  bool queued(std::size_t size, std::function<void(std::error_code)>&& callback) {
    writableLength_ += size;
    totalQueued_ += size;
    if (callback) {
      if (!callbacks_) callbacks_ = std::make_unique<WriteCallbacks>();
      callbacks_->push_back({totalQueued_, std::move(callback)});
    }
    if (writableLength_ >= options_.highWaterMark && !inDispatch_)
      flush(true);  // a large write: give the kernel its chance now
    else
      scheduleFlush();
    const bool below = writableLength_ < options_.highWaterMark;
    if (!below) needDrain_ = true;
    return below;
  }

  // Writes made outside a "data" listener go out at the end of the current turn, together. A
  // socket that other sockets' listeners write to turn after turn (a subscriber of a busy
  // channel) waits while each turn brings it more, up to kMaxFlushHolds turns or the high-water
  // mark: one system call then carries the pushes of several turns, and its reader wakes once
  // for them, as redis-server writes a client's output once per loop iteration.
  void scheduleFlush() {
    if (inDispatch_ || flushPosted_ || connecting_ || writeArmed_ || destroyed_) return;
    flushPosted_ = true;
    postFlush(totalQueued_, 0);
  }

  void postFlush(std::uint64_t queuedBefore, unsigned holds) {
    ++pendingOps_;
    asio::defer(executor_, [this, gen = generation_, queuedBefore, holds] {
      if (!current(gen)) return;
      if (totalQueued_ != queuedBefore && holds < kMaxFlushHolds && !queue_.empty() &&
          !writableEnded_ && !writeArmed_)
        return postFlush(totalQueued_, holds + 1);
      flushPosted_ = false;
      flush();
    });
  }

  // Waits for room to write through asio's reactor: on epoll only (the ring waits on io_uring,
  // where an accepted socket has no asio socket).
  void armWrite() {
    writeArmed_ = true;
    ++pendingOps_;
    socket_->async_wait(StreamSocket::wait_write, [this, gen = generation_](std::error_code ec) {
      if (!current(gen)) return;
      writeArmed_ = false;
      if (ec) return destroy(ec);
      flush();
    });
  }

  void completeWrites(std::error_code ec) {
    // A callback may destroy the socket, which takes callbacks_ away.
    while (callbacks_ && !callbacks_->empty() && (ec || callbacks_->front().first <= bytesSent_)) {
      auto callback = std::move(callbacks_->front().second);
      callbacks_->erase(callbacks_->begin());
      callback(ec);
    }
  }

  // The writable side is done: the peer gets its end of stream. When the peer had ended too,
  // destroy() follows at once and its close() sends the FIN; a shutdown() first would be a
  // system call per connection for nothing (nothing unread remains after the peer's FIN, so
  // close() does not reset the connection).
  void finish() {
    if constexpr (Layer::secure) {  // close_notify first, after the handshake
      if (!layer_.established() || !layer_.shutdown(*this) || writeArmed_ || !sendSecure()) return;
    }
    finished_ = true;
    if (isOpen() && !readableEnded_) ::shutdown(fd(), SHUT_WR);
    emitOrDestroy<"finish">();
    if (readableEnded_ && !destroyed_) destroy();
  }

  void closeDescriptor() noexcept {
#if EVNET_HAS_IO_URING
    if (ring_ != nullptr && loopAlive()) {
      try {
        if (sending_) ring_->cancel(*ringSend_, ringTag());
        cancelRingRead();
        ring_->submitNow();  // the ring lets go of the socket: close() sends the FIN or RST now
      } catch (const std::system_error&) {
      }
    }
#endif
    if (connector_) {
      connector_->resolver.cancel();
      connector_->attemptTimer.cancel();
    }
    if (socket_ && socket_->is_open()) {
      std::error_code ignored;
      socket_->close(ignored);  // pending waits complete with operation_aborted
    }
    if (bareFd_ >= 0) ::close(std::exchange(bareFd_, -1));
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
        if (Owner* owner = std::exchange(socket.owner_, nullptr)) owner->connectionClosed(socket);
        if (!socket.closeEmitted_) return;  // reconnected
        socket.removeAllListeners();
        socket.release();
      }
    } after{*this};
    if (err && this->listenerCount("error") > 0) this->template emit<"error">(err);
    this->template emit<"close">(hadError_);
  }

  // destroy()'s "close", from rearm_. Out of line: inlined, it made the re-arm that runs for
  // every message 16 instructions dearer (callgrind, echo c=50).
  [[gnu::noinline]] void emitQueuedClose() {
    closeQueued_ = false;
    emitClose(closeError_);
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

  void hideRead() noexcept {
    if (std::exchange(readHidden_, true)) return;
    hideWork(executor_);
  }
  // hideRead() in a handler of its own: on a loop made for one thread, a read that asio
  // completed at once is counted only once the handler that started it ends, and taking it off
  // before could bring the count to zero with that handler's posts still queued (run() would
  // return early). The ring's receives are counted at once.
  void hideReadSoon() noexcept {
    if (readHidden_ || hidePosted_) return;
#if EVNET_HAS_IO_URING
    if (ring_ != nullptr) return hideRead();
#endif
    try {
      asio::post(executor_, [this, gen = generation_] {
        hidePosted_ = false;
        if (current(gen) && unref_ && readArmed_) hideRead();
      });
      hidePosted_ = true;
      ++pendingOps_;
    } catch (const std::bad_alloc&) {
      hideRead();
    }
  }
  void showRead() noexcept {
    readHidden_ = false;
    showWork(executor_);
  }

  void onLoopShutdown() noexcept override {
#if EVNET_HAS_IO_URING
    ring_ = nullptr;  // the ring goes with the loop, cancelling what it has
#endif
    destroyed_ = true;
    closeEmitted_ = true;
    loop_.unenroll(idle_);
    if constexpr (Layer::secure) layer_.destroyed(*this);
    closeDescriptor();
    socket_.reset();
    connector_.reset();
    if (Owner* owner = std::exchange(owner_, nullptr)) owner->connectionClosed(*this);
    auto last = std::move(self_);
    // No "close" and no write callback can run now: drop them here, since they may hold handles
    // to this socket. (Locals go in reverse order: `last`, which may free *this, goes last.)
    const auto callbacks = std::move(callbacks_);
    queue_.clear();
    unheard_.clear();
    this->removeAllListeners();
  }

  // Activity: restarts the idle period; after a "timeout" it starts a new one (Node refreshes
  // the timer on activity, so "timeout" fires again after the next idle period).
  void touch() {
    if (idle_.list != nullptr) return loop_.touch(idle_);
    if (timeoutMs_ != 0 && !destroyed_) loop_.enroll(idle_, timeoutMs_);
  }
  int fd() const noexcept { return socket_ ? socket_->native_handle() : bareFd_; }
  bool isOpen() const noexcept { return fd() >= 0; }
  // Reading stops while paused, but a secure socket reads its handshake regardless.
  bool readPaused() const noexcept {
    if constexpr (Layer::secure) return paused_ && layer_.established();
    return paused_;
  }
  bool isTcp() const noexcept { return (family_ == AF_INET || family_ == AF_INET6) && isOpen(); }

  // The loop's own executor, not asio::any_io_executor: no type erasure on the hot paths (work
  // counting, posts), and 48 bytes less per connection.
  asio::io_context::executor_type executor_;
  LoopService& loop_;
#if EVNET_HAS_IO_URING
  Ring* ring_ = nullptr;  // the loop's, with the io_uring transport
  RecvOp recvOp_;
  std::unique_ptr<RingSend> ringSend_;
  std::unique_ptr<RingSend> retired_;
#endif
  SocketOptions options_;
  std::shared_ptr<SocketImpl> self_;
  mutable std::optional<StreamSocket> socket_;  // mutable: asio's native_handle()
  int bareFd_ = -1;                             // instead of socket_: see adopt()
  // A client's connect: its resolver, the addresses to try (Happy Eyeballs) and the attempt
  // timer, the stop token's callback. Kept after connecting for attemptedAddresses(); accepted
  // sockets have none.
#if EVNET_HAS_STOP_TOKEN
  struct OnStop {
    std::weak_ptr<SocketImpl> socket;
    asio::any_io_executor executor;
    unsigned generation;
    void operator()() noexcept {  // on the thread that asked to stop: the rest on the loop
      try {
        asio::post(executor, [socket = socket, generation = generation] {
          const auto s = socket.lock();
          if (s && s->generation_ == generation) s->destroy(make_error_code(Errc::aborted));
        });
      } catch (...) {  // no memory to post: the stop request is lost, as a signal may be
      }
    }
  };
#endif
  struct Connector {
    Connector(const asio::any_io_executor& executor, net::ConnectOptions&& options)
        : resolver(executor), attemptTimer(executor), options(std::move(options)) {}
    asio::ip::tcp::resolver resolver;
    asio::steady_timer attemptTimer;
    net::ConnectOptions options;
    std::vector<asio::ip::tcp::endpoint> addresses;
    std::size_t current = 0;  // the next address to try
    bool multiple = false;    // Happy Eyeballs: several addresses, each with its timeout
    std::vector<std::string> attempted;
    std::vector<std::error_code> errors;
#if EVNET_HAS_STOP_TOKEN
    std::optional<std::stop_callback<OnStop>> stop;
#endif
  };
  std::unique_ptr<Connector> connector_;
  Owner* owner_ = nullptr;

 public:
  SocketImpl* prevConnection = nullptr;  // the owning server's list of its connections
  SocketImpl* nextConnection = nullptr;

 private:
  WriteQueue queue_;
  // write()'s callbacks, each with the count of bytes written that it waits for; on the heap,
  // since most sockets have none.
  using WriteCallbacks =
      std::vector<std::pair<std::uint64_t, std::function<void(std::error_code)>>>;
  std::unique_ptr<WriteCallbacks> callbacks_;
  HeldBytes unheard_;              // data that arrived while nobody listened, or while paused
  std::array<char, 256> slot_;     // where a waiting read lands; a short message stays here
  std::unique_ptr<char[]> large_;  // instead of slot_ while messages fill it
  static constexpr std::size_t kLargeReadSize = 16 * 1024;
  static constexpr std::uint8_t kShortReadsToShrink = 16;  // reads that would fit slot_ in a row
  static constexpr std::uint8_t kSlowAfter = 3;            // see armReadLater
  static constexpr std::uint8_t kProbeEvery = 32;
  static constexpr unsigned kMaxFlushHolds = 16;  // see scheduleFlush
  std::size_t writableLength_ = 0;
  std::uint64_t totalQueued_ = 0;  // bytes given to write(): bytesWritten()
  std::uint64_t bytesRead_ = 0;
  std::uint64_t bytesSent_ = 0;  // of those, taken by the kernel (encrypted, for TLS)
  LazyAddress remote_;
  LazyAddress local_;
  [[no_unique_address]] Layer layer_;
  IdleEntry idle_;
  Deferred rearm_;  // armReadLater()'s place in the loop's list, and destroy()'s "close"
  std::error_code closeError_;   // what destroy() reports with "close"
  std::uint32_t turnBytes_ = 0;  // io_uring: received in readTurn_
  unsigned timeoutMs_ = 0;
  unsigned pendingOps_ = 0;
  std::uint8_t shortReads_ = 0;  // up to kShortReadsToShrink
  std::uint8_t misses_ = 0;      // deferred reads in a row that found nothing
  std::uint8_t sinceProbe_ = 0;  // reads armed at once since the last deferred one
  std::uint32_t readTurn_ = 0;   // io_uring: the ring's turn of turnBytes_
  unsigned corked_ = 0;          // cork() calls not undone by uncork()
  unsigned generation_ = 0;      // counts connect()s: completions of older ones are ignored
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
  bool closeQueued_ = false;     // "close" waits in rearm_
  bool unconnected_ = false;     // made by new Socket(options), not connected yet
  bool corkHolds_ = false;       // writeArmed_ stands for cork(), not for a wait
  std::error_code sendFailed_;   // of a send in uncork(), for the next flush()
  bool unref_ = false;           // unref() was called: the socket does not keep the loop running
  bool readHidden_ = false;      // the armed read is hidden from the loop's work count
  bool hidePosted_ = false;      // hideReadSoon() waits for its handler
  bool readCancelling_ = false;  // io_uring: the armed receive is being cancelled
  bool sending_ = false;         // io_uring: a send is in flight
  bool readThrottled_ = false;   // io_uring: its receive was cancelled for the turn's budget
  bool endHeld_ = false;         // the peer's end, read while data waits (postRead)
};

template <class Layer>
EVNET_DECL SocketImpl<Layer>::SocketImpl(const asio::io_context::executor_type& executor,
                                         LoopService& loop, const SocketOptions& options)
    : executor_(executor), loop_(loop), options_(options) {
#if EVNET_HAS_IO_URING
  // A TLS socket receives from the ring too, and its records go out as plain bytes do (see
  // sendSecure).
  ring_ = loop.ring();
  recvOp_.socket = this;
#endif
  idle_.owner = this;
  rearm_.owner = this;
  rearm_.run = [](Deferred* entry) {
    auto* socket = static_cast<SocketImpl*>(entry->owner);
    --socket->pendingOps_;
    if (socket->closeQueued_) [[unlikely]]
      return socket->emitQueuedClose();
    if (socket->destroyed_) return socket->release();
    socket->readDeferred();
  };
  idle_.onTimeout = [](IdleEntry* entry) {
    static_cast<SocketImpl*>(entry->owner)->emitOrDestroy<"timeout">();
  };
  loop_.add(*this);
}

template <class Layer>
EVNET_DECL SocketImpl<Layer>::~SocketImpl() {
  if (bareFd_ >= 0) ::close(bareFd_);  // as StreamSocket's destructor would
  if (!loopAlive()) return;            // a handle outlived the loop: nothing of the loop is left
  loop_.unenroll(idle_);
  loop_.remove(*this);
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::adopt(std::shared_ptr<SocketImpl> self, StreamSocket socket,
                                         const Protocol::endpoint& peer, Owner* owner,
                                         const Protocol::endpoint* local) {
  socket_.emplace(std::move(socket));
  adopted(std::move(self), peer, owner, local);
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::adopt(std::shared_ptr<SocketImpl> self,
                                         BareDescriptor descriptor, const Protocol::endpoint& peer,
                                         Owner* owner, const Protocol::endpoint* local) {
  bareFd_ = descriptor.fd;
  adopted(std::move(self), peer, owner, local);
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::adopted(std::shared_ptr<SocketImpl> self,
                                           const Protocol::endpoint& peer, Owner* owner,
                                           const Protocol::endpoint* local) {
  self_ = std::move(self);
  owner_ = owner;
  family_ = peer.data()->sa_family;
  remote_.set(peer);
  if (local != nullptr) local_.set(*local);
  opened();
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::connect(std::shared_ptr<SocketImpl> self, std::string host,
                                           unsigned short port) {
  net::ConnectOptions options;
  options.host = std::move(host);
  options.port = port;
  connect(std::move(self), std::move(options));
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::connectPath(std::shared_ptr<SocketImpl> self,
                                               const std::string& path) {
  net::ConnectOptions options;
  options.path = path;
  connect(std::move(self), std::move(options));
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::connect(std::shared_ptr<SocketImpl> self,
                                           net::ConnectOptions options) {
  if (options.family != 0 && options.family != 4 && options.family != 6)
    throw std::invalid_argument(
        "evnet: The property 'options.family' must be one of: 0, 4, 6. "
        "Received " +
        std::to_string(options.family));
  std::error_code ec;
  if (!options.localAddress.empty() && (asio::ip::make_address(options.localAddress, ec), ec))
    throw std::invalid_argument("evnet: Invalid IP address: " + options.localAddress);
  self_ = std::move(self);
  connecting_ = true;
  unconnected_ = false;
  writableEnded_ = false;
  if (options.timeout != 0) setTimeout(options.timeout);
  connector_ = std::make_unique<Connector>(executor_, std::move(options));
  Connector& c = *connector_;
#if EVNET_HAS_STOP_TOKEN
  if (c.options.signal.stop_possible())
    c.stop.emplace(c.options.signal, OnStop{self_, executor_, generation_});
#endif
  if (!c.options.path.empty()) {
    const asio::local::stream_protocol::endpoint local(c.options.path);
    return startConnect(Protocol::endpoint(local.data(), local.size(), 0), nullptr,
                        [this](auto error) { destroy(error); });
  }
  const asio::ip::address address = asio::ip::make_address(c.options.host, ec);
  if (!ec) {  // an IP address: no lookup (Node: test-net-dns-lookup-skip.js), and the
    c.addresses.emplace_back(address, c.options.port);  // attempt in a later turn, as Node's
    ++pendingOps_;
    asio::post(executor_, [this, gen = generation_] {
      if (current(gen)) attempt();
    });
    return;
  }
  ++pendingOps_;
  auto done = [this, gen = generation_, called = std::make_shared<bool>(false)](
                  std::error_code error, std::vector<asio::ip::tcp::endpoint> endpoints) {
    if (std::exchange(*called, true) || !current(gen)) return;
    resolved(systemError(error), std::move(endpoints));
  };
  if (c.options.lookup) {
    return c.options.lookup(
        c.options.host, c.options.family,
        [done, port = c.options.port](std::error_code error,
                                      std::vector<net::LookupAddress> addresses) mutable {
          std::vector<asio::ip::tcp::endpoint> endpoints;
          for (const net::LookupAddress& entry : addresses) {
            std::error_code invalid;
            const asio::ip::address ip = asio::ip::make_address(entry.address, invalid);
            if (!invalid) endpoints.emplace_back(ip, port);
          }
          done(error, std::move(endpoints));
        });
  }
  auto onResolve = [done](std::error_code error,
                          asio::ip::tcp::resolver::results_type results) mutable {
    std::vector<asio::ip::tcp::endpoint> endpoints;
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    done(error, std::move(endpoints));
  };
  const std::string service = std::to_string(c.options.port);
  if (c.options.family == 0)
    c.resolver.async_resolve(c.options.host, service, std::move(onResolve));
  else
    c.resolver.async_resolve(c.options.family == 4 ? asio::ip::tcp::v4() : asio::ip::tcp::v6(),
                             c.options.host, service, std::move(onResolve));
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::makeUnconnected() noexcept {
  unconnected_ = writableEnded_ = true;
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::holdUntilClosed(const std::shared_ptr<SocketImpl>& self) {
  if (!self_ && !closeEmitted_) self_ = self;
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::reopen() {
  if (unconnected_ && !destroyed_) return;  // its first connect
  if (!closeEmitted_ || !loopAlive())
    throw std::logic_error("evnet: connect() on a socket that is not closed");
  connector_.reset();
  ++generation_;
  readArmed_ = readPosted_ = flushPosted_ = writeArmed_ = needDrain_ = corkHolds_ = false;
  corked_ = 0;
  sendFailed_.clear();
  paused_ = readableEnded_ = writableEnded_ = finished_ = endHeld_ = false;
  destroyed_ = hadError_ = closeEmitted_ = false;
  bytesRead_ = bytesSent_ = totalQueued_ = 0;
  unheard_.clear();
  remote_.reset();
  local_.reset();
  family_ = AF_UNSPEC;
  if constexpr (Layer::secure) layer_.reset();
  if (timeoutMs_ != 0) loop_.enroll(idle_, timeoutMs_);
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::plaintext(const char* data, std::size_t n) {
  if constexpr (Layer::secure) bytesRead_ += n;
  if (paused_ || !unheard_.empty()) [[unlikely]]
    unheard_.append(data, n);
  else
    deliver(Buffer(data, n));
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::onEnd() {
  readableEnded_ = true;
  emitOrDestroy<"end">();
  if (destroyed_) return;
  if (!options_.allowHalfOpen) end();
  if (finished_) destroy();
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::pause() noexcept {
  paused_ = true;
#if EVNET_HAS_IO_URING
  if (ring_ != nullptr && readArmed_ && readPaused()) {
    try {
      cancelRingRead();
    } catch (const std::system_error&) {  // a full submission queue: cancelled at its data
    }
  }
#endif
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::resume() {
  if (!paused_ || destroyed_) return;
  paused_ = false;
  if (!connecting_) postRead();
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::dataListenerAdded() {
  if (!unheard_.empty()) resume();
}

template <class Layer>
EVNET_DECL bool SocketImpl<Layer>::write(std::string_view bytes,
                                         std::function<void(std::error_code)>&& callback) {
  if (!writable(callback)) return false;
  queue_.copy(bytes.data(), bytes.size());
  return queued(bytes.size(), std::move(callback));
}

template <class Layer>
EVNET_DECL bool SocketImpl<Layer>::write(WriteQueue::Owned&& bytes,
                                         std::function<void(std::error_code)>&& callback) {
  if (!writable(callback)) return false;
  const std::size_t size = std::visit([](const auto& b) { return b.size(); }, bytes);
  queue_.own(std::move(bytes));
  return queued(size, std::move(callback));
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::end(std::function<void()> callback) {
  if (callback) this->template once<"finish">(std::move(callback));
  if (writableEnded_ || destroyed_) return;
  if (corked_ != 0) {  // Node: end() uncorks; the queue goes at the end of the turn, its
    corked_ = 0;       // callbacks before "finish"
    if (std::exchange(corkHolds_, false)) writeArmed_ = false;
  }
  writableEnded_ = true;
  if (!connecting_ && queue_.empty() && !writeArmed_ && !flushPosted_) return finish();
  scheduleFlush();
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::uncork() {
  if (corked_ == 0 || --corked_ != 0 || !corkHolds_) return;
  corkHolds_ = writeArmed_ = false;
  if constexpr (!Layer::secure) {
#if EVNET_HAS_IO_URING
    const bool ring = ring_ != nullptr;
#else
    const bool ring = false;
#endif
    if (!ring && !inDispatch_ && !flushPosted_ && !connecting_ && !destroyed_) sendPlain(true);
  }
  if (!queue_.empty() || (writableEnded_ && !finished_) || needDrain_ ||
      (callbacks_ && !callbacks_->empty()))
    scheduleFlush();
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::flush(bool now) {
  if (destroyed_ || connecting_ || writeArmed_) return;
  if (sendFailed_) [[unlikely]]
    return destroy(std::exchange(sendFailed_, {}));
  if constexpr (Layer::secure) {
    const bool sent = sendSecure(now);
    completeWrites({});
    if (!sent) return;
  } else {
#if EVNET_HAS_IO_URING
    if (ring_ != nullptr && !now && !queue_.empty() && writableLength_ < kRingDirect &&
        !ring_->sendDirectly())
      return ringSend();
#endif
    sendPlain();
    completeWrites({});
  }
  if (!queue_.empty() || destroyed_) return;
  if (needDrain_) {
    needDrain_ = false;
    emitOrDestroy<"drain">();
  }
  if (writableEnded_ && !finished_ && queue_.empty() && !destroyed_) finish();
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::destroy(std::error_code err) {
  if (destroyed_) return;
  destroyed_ = true;
  hadError_ = static_cast<bool>(err);
  err = systemError(err);
  loop_.unenroll(idle_);
  if constexpr (Layer::secure) layer_.destroyed(*this);
  const bool wasConnecting = std::exchange(connecting_, false);  // "closed", not "opening"
  closeDescriptor();
#if EVNET_HAS_IO_URING
  if (sending_) retireRingSend();
#endif
  queue_.clear();
  writableLength_ = 0;
  completeWrites(
      make_error_code(wasConnecting ? Errc::socketClosedBeforeConnection : Errc::socketDestroyed));
  // "close" comes from the loop's list of deferred work (one post for all its entries), in
  // the entry that re-arms reads: a closed socket reads no more.
  closeError_ = err;
  closeQueued_ = true;
  if (rearm_.queued) return;
  ++pendingOps_;
  loop_.later(rearm_);
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::destroySoon() {
  if (writableEnded_ && finished_) return destroy();
  this->template once<"finish">([this] { destroy(); });
  end();
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::resetAndDestroy() {
  if (isOpen()) {
    const linger option{1, 0};
    ::setsockopt(fd(), SOL_SOCKET, SO_LINGER, &option, sizeof option);
  }
  destroy();
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::setTimeout(unsigned ms) {
  timeoutMs_ = ms;
  if (ms == 0 || destroyed_) return loop_.unenroll(idle_);
  loop_.enroll(idle_, ms);
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::setNoDelay(bool enable) {
  options_.noDelay = enable;
  const int on = enable ? 1 : 0;
  if (isTcp()) ::setsockopt(fd(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::setKeepAlive(bool enable, unsigned initialDelayMs) {
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

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::start() {
  if constexpr (Layer::secure) layer_.accept(*this);
  if (!readPaused()) armRead();
}

template <class Layer>
EVNET_DECL void SocketImpl<Layer>::startPaused() {
  paused_ = true;
}

#ifdef EVNET_SEPARATE_COMPILATION
extern template class SocketImpl<PlainLayer>;  // compiled by <evnet/impl/src.hpp>
#endif

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_SOCKET_IMPL_HPP
