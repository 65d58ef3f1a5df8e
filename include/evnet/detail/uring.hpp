// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_URING_HPP
#define EVNET_DETAIL_URING_HPP

// The io_uring transport's ring (Linux, liburing): built when EVNET_HAS_IO_URING is 1, which the
// CMake target sets when liburing was found (option EVNET_IO_URING).

#include <asio/buffer.hpp>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>

#include <liburing.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <utility>

namespace evnet::detail {

// An operation of a socket or server in the ring. Each completion calls complete() with the
// tag given when it was armed (the owner's generation: completions of an older connection are
// told apart) and the completion's result and flags.
struct UringOp {
  void (*complete)(UringOp* op, std::uint16_t tag, int res, unsigned flags) = nullptr;
};

// One io_uring instance per loop, beside asio's reactor: asio waits for the ring's eventfd, and
// the ring is entered once per loop turn, to submit what the turn prepared and to reap what
// completed. Reads are multishot receives into a ring of provided buffers that every socket of
// the loop shares (an idle socket holds none); a server has one accept armed. Set up with
// SINGLE_ISSUER and COOP_TASKRUN (Linux 6.0): completions are worked in on the loop's thread
// when it next leaves the kernel (asio's epoll_wait, a send, entering the ring), not by an
// interrupt from another CPU; a loop asleep in epoll_wait is woken for them (EINTR). Not
// DEFER_TASKRUN, which works them in only when the thread enters the ring: with it, the eventfd
// told of a multishot receive's data 13-30 ms late on Linux 6.18.44 (one request per 16 ms at echo
// c=1; a loop that waits in io_uring_enter, as benchmarks/uring_echo_server does, is not affected).
// The ring starts disabled and is enabled by the first turn that enters it: the thread that runs
// the loop becomes its only submitter, even when the sockets were made on another thread before
// run().
class Ring {
 public:
  static constexpr unsigned kEntries = 4096;
  static constexpr unsigned kCompletionEntries = 32768;
  // 2 MiB of receive buffers per loop. The kernel takes them in turn, so a busy loop has
  // touched them all; an idle connection holds none. 32 KiB each: with 8 KiB, a stream of
  // large chunks cost a completion, a "data" and a send per 8 KiB, and ran at 0.65x raw asio.
  // 64 of them: a turn serves 64 receives before one finds none free and is armed again.
  static constexpr unsigned kBufferCount = 64;  // a power of two
  static constexpr unsigned kBufferSize = 32 * 1024;
  static constexpr unsigned short kBufferGroup = 0;

  // Throws std::system_error with the kernel's reason when io_uring cannot be set up (an old
  // kernel, or a sandbox that forbids it).
  explicit Ring(const asio::io_context::executor_type& executor)
      : executor_(executor), wake_(executor) {
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
                   IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
                   IORING_SETUP_R_DISABLED;
    params.cq_entries = kCompletionEntries;
    if (const int r = io_uring_queue_init_params(kEntries, &ring_, &params); r < 0)
      throw std::system_error(-r, std::system_category(), "evnet: io_uring_setup");
    try {
      setUpBuffers();
      const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (fd < 0) throw std::system_error(errno, std::system_category(), "evnet: eventfd");
      wake_.assign(fd);
      if (const int r = io_uring_register_eventfd(&ring_, fd); r < 0)
        throw std::system_error(-r, std::system_category(), "evnet: io_uring_register_eventfd");
    } catch (...) {
      tearDown();
      throw;
    }
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() { tearDown(); }

  // A multishot receive on fd into the provided buffers.
  void armRecv(int fd, UringOp& op, std::uint16_t tag) {
    io_uring_sqe* sqe = next();
    io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, userData(op, tag));
  }

  // A send of `message`'s buffers (which, with its iovecs, stay valid until the completion):
  // one buffer goes as a send, which spares the kernel copying in the header and the iovecs.
  void armSend(int fd, UringOp& op, std::uint16_t tag, const msghdr& message) {
    io_uring_sqe* sqe = next();
    if (message.msg_iovlen == 1)
      io_uring_prep_send(sqe, fd, message.msg_iov[0].iov_base, message.msg_iov[0].iov_len,
                         MSG_NOSIGNAL);
    else
      io_uring_prep_sendmsg(sqe, fd, &message, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, userData(op, tag));
  }

  // An accept on a listening fd, with the peer's address; its result is a new descriptor
  // (non-blocking, close-on-exec).
  void armAccept(int fd, UringOp& op, std::uint16_t tag, sockaddr* peer, socklen_t* size) {
    io_uring_sqe* sqe = next();
    io_uring_prep_accept(sqe, fd, peer, size, SOCK_NONBLOCK | SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, userData(op, tag));
  }

  // Cancels an armed operation; its last completion comes with -ECANCELED (or whatever it had
  // already). Submitted at the turn's end with the rest, or by submitNow().
  void cancel(UringOp& op, std::uint16_t tag) {
    io_uring_sqe* sqe = next();
    io_uring_prep_cancel64(sqe, userData(op, tag), 0);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, 0);
  }

  // Submits what was prepared, now, when called on the loop's thread: after cancelling a
  // closed socket's operations, so that the kernel lets go of its file at once and close()
  // sends the FIN or RST then, not a turn later. (Its "close" may still come after I/O that
  // the same turn reaps, such as the peer connecting again: as in Node, where new connections
  // are accepted in the poll phase, before the close callbacks.)
  void submitNow() noexcept {
    if (enabled_ && pthread_equal(owner_, pthread_self()) != 0 && io_uring_sq_ready(&ring_) != 0)
      enter();
  }

  // The received bytes of a completion that carries a buffer; giveBack(flags) returns the
  // buffer to the kernel once they were used.
  std::span<char> buffer(unsigned flags, int res) const noexcept {
    const unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
    return {buffers_ + std::size_t{id} * kBufferSize, static_cast<std::size_t>(res)};
  }
  void giveBack(unsigned flags) noexcept {
    if ((flags & IORING_CQE_F_BUFFER) == 0) return;
    const auto id = static_cast<unsigned short>(flags >> IORING_CQE_BUFFER_SHIFT);
    io_uring_buf_ring_add(bufferRing_, buffers_ + std::size_t{id} * kBufferSize, kBufferSize, id,
                          io_uring_buf_ring_mask(kBufferCount), 0);
    io_uring_buf_ring_advance(bufferRing_, 1);
  }

  // Counts the ring's turns (a socket's read budget is per turn).
  std::uint32_t turns() const noexcept { return turns_; }

  // Whether a write should go out now with a send() of its own rather than in the ring: the
  // first write of a turn that woke the sleeping loop for a single completion (one client's
  // request: the ring would cost a second enter and a completion for one send). Every other
  // write waits for the turn's end, to be sent together with the turn's other operations.
  bool sendDirectly() noexcept {
    if (!woken_ || batch_ != 1 || directSent_) return false;
    directSent_ = true;
    return true;
  }

  // The loop is being destroyed: nothing is dispatched any more (the owners are gone).
  void shutdown() noexcept { shutdown_ = true; }

 private:
  static std::uint64_t userData(UringOp& op, std::uint16_t tag) noexcept {
    return reinterpret_cast<std::uintptr_t>(&op) | (std::uint64_t{tag} << 48);
  }

  void setUpBuffers() {
    const std::size_t ringBytes = kBufferCount * sizeof(io_uring_buf);
    void* ring =
        ::mmap(nullptr, ringBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (ring == MAP_FAILED) throw std::system_error(errno, std::system_category(), "evnet: mmap");
    bufferRing_ = static_cast<io_uring_buf_ring*>(ring);
    void* buffers = ::mmap(nullptr, std::size_t{kBufferCount} * kBufferSize, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buffers == MAP_FAILED)
      throw std::system_error(errno, std::system_category(), "evnet: mmap");
    buffers_ = static_cast<char*>(buffers);
    // Registered by hand: liburing 2.3 (Debian 12) has no io_uring_setup_buf_ring.
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(bufferRing_);
    reg.ring_entries = kBufferCount;
    reg.bgid = kBufferGroup;
    if (const int r = io_uring_register_buf_ring(&ring_, &reg, 0); r < 0)
      throw std::system_error(-r, std::system_category(), "evnet: io_uring_register_buf_ring");
    io_uring_buf_ring_init(bufferRing_);
    for (unsigned id = 0; id < kBufferCount; ++id)
      io_uring_buf_ring_add(bufferRing_, buffers_ + std::size_t{id} * kBufferSize, kBufferSize,
                            static_cast<unsigned short>(id), io_uring_buf_ring_mask(kBufferCount),
                            static_cast<int>(id));
    io_uring_buf_ring_advance(bufferRing_, static_cast<int>(kBufferCount));
  }

  void tearDown() noexcept {
    if (wake_.is_open()) {
      std::error_code ignored;
      wake_.close(ignored);
    }
    if (ring_.ring_fd >= 0) io_uring_queue_exit(&ring_);
    ring_.ring_fd = -1;
    if (buffers_ != nullptr) ::munmap(buffers_, std::size_t{kBufferCount} * kBufferSize);
    if (bufferRing_ != nullptr) ::munmap(bufferRing_, kBufferCount * sizeof(io_uring_buf));
    buffers_ = nullptr;
    bufferRing_ = nullptr;
  }

  // A submission queue entry; the turn's end enters the ring. A full queue is submitted first
  // when this is the loop's thread.
  io_uring_sqe* next() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr && enabled_ && pthread_equal(owner_, pthread_self()) != 0) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    if (sqe == nullptr)
      throw std::system_error(std::make_error_code(std::errc::device_or_resource_busy),
                              "evnet: io_uring submission queue full");
    scheduleTurn();
    return sqe;
  }

  // Once per loop turn: after the handlers that are ready now, enter the ring.
  void scheduleTurn() {
    if (turnPosted_) return;
    turnPosted_ = true;
    asio::post(executor_, [this] {
      turnPosted_ = false;
      woken_ = false;
      turn();
    });
  }

  // Enters the ring (submitting and working in completions, no waiting), then dispatches every
  // completion. The eventfd is off meanwhile, so that the completions this turn reaps do not
  // wake the loop again. A listener that throws leaves run(); the completions after it are
  // dispatched in a later turn.
  void turn() {
    if (shutdown_) return;
    ++turns_;
    if (!enabled_) enable();
    if (!waiting_) wait();
    struct Resume {
      Ring& ring;
      bool done = false;
      ~Resume() {
        io_uring_cq_eventfd_toggle(&ring.ring_, true);
        if (!done) ring.scheduleTurn();
      }
    } resume{*this};
    io_uring_cq_eventfd_toggle(&ring_, false);
    for (int round = 0; round < 4; ++round) {
      if (io_uring_sq_ready(&ring_) != 0 || taskWorkPending()) enter();
      if (io_uring_cq_ready(&ring_) == 0) break;
      dispatch();
    }
    io_uring_cq_eventfd_toggle(&ring_, true);
    // Another CPU (an io-wq worker) posts a completion, then reads whether the eventfd is on;
    // this thread turns the eventfd on, then reads the queue. Without a full fence between the
    // store and the load (x86 reorders them) both can miss the other, and the loop would sleep
    // with the completion unreaped.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // Work that came while the eventfd was off, or more than four rounds' worth.
    resume.done =
        io_uring_cq_ready(&ring_) == 0 && !taskWorkPending() && io_uring_sq_ready(&ring_) == 0;
  }

  bool taskWorkPending() const noexcept {
    return (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) != 0;
  }

  void enter() noexcept {
    for (;;) {
      const int r = io_uring_submit_and_get_events(&ring_);
      if (r != -EINTR) return;
    }
  }

  // Dispatches the completions in the queue now, without entering the kernel (liburing's
  // io_uring_peek_cqe enters it while task work is pending: under a flood of receives it would
  // never return).
  void dispatch() {
    const unsigned ready = io_uring_cq_ready(&ring_);
    struct Batch {  // sendDirectly() while the completions run
      Ring& ring;
      Batch(Ring& r, unsigned n) : ring(r) {
        ring.batch_ = n;
        ring.directSent_ = false;
      }
      ~Batch() {
        ring.batch_ = 0;
        ring.directSent_ = false;
      }
    } batch{*this, ready};
    for (unsigned n = ready; n != 0 && !shutdown_; --n) {
      const io_uring_cqe& cqe = ring_.cq.cqes[*ring_.cq.khead & ring_.cq.ring_mask];
      const std::uint64_t data = cqe.user_data;
      const int res = cqe.res;
      const unsigned flags = cqe.flags;
      io_uring_cq_advance(&ring_, 1);
      if (data == 0) continue;  // a cancel's own completion
      auto* op = reinterpret_cast<UringOp*>(static_cast<std::uintptr_t>(data & ((1ULL << 48) - 1)));
      op->complete(op, static_cast<std::uint16_t>(data >> 48), res, flags);
    }
  }

  void enable() {
    // liburing 2.3 declares io_uring_enable_rings but does not export it.
    if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) <
        0)
      throw std::system_error(errno, std::system_category(), "evnet: io_uring enable");
    io_uring_register_ring_fd(&ring_);  // saves a file lookup per enter; optional
    owner_ = pthread_self();
    enabled_ = true;
  }

  // The eventfd wakes the loop for completions that came while it slept. Its counter is read
  // (asio's read: a wait would re-register the descriptor with epoll each time, and with the
  // counter left set, wake the loop at once, again and again). The read does not keep the loop
  // running (the operations in the ring do, each counted by its owner), so it is taken off
  // asio's work count — unless asio's first, speculative read found the counter set: on a loop
  // made for one thread (evnet's default loop is), asio then queues the completion in this
  // thread's private queue, counted only when the running handler ends, and taking it off the
  // count now could bring the count to zero in this handler (an accept completing next, taken
  // off before it is armed again): asio would stop the loop with a server still listening. The
  // completion then runs in this turn of the loop anyway.
  void wait() {
    waiting_ = true;
    wakeCount_ = 0;  // an eventfd read never gives 0
    wake_.async_read_some(asio::buffer(&wakeCount_, sizeof wakeCount_),
                          [this](std::error_code ec, std::size_t) {
                            if (!std::exchange(readAtOnce_, false)) executor_.on_work_started();
                            waiting_ = false;
                            if (ec || shutdown_) return;
                            woken_ = true;
                            turn();
                          });
    if (wakeCount_ != 0)
      readAtOnce_ = true;
    else
      executor_.on_work_finished();
  }

  asio::io_context::executor_type executor_;  // not type-erased: posted to once per turn
  io_uring ring_{};
  asio::posix::stream_descriptor wake_;
  io_uring_buf_ring* bufferRing_ = nullptr;
  char* buffers_ = nullptr;
  std::uint32_t turns_ = 0;
  unsigned batch_ = 0;           // completions of the dispatch that runs, 0 outside one
  bool directSent_ = false;      // sendDirectly() said yes in this dispatch
  std::uint64_t wakeCount_ = 0;  // the eventfd's counter, read by wait()
  pthread_t owner_{};
  bool enabled_ = false;
  bool waiting_ = false;
  bool readAtOnce_ = false;  // wait()'s read completed at once: still on asio's count
  bool turnPosted_ = false;
  bool woken_ = false;  // this turn began when the eventfd woke the loop
  bool shutdown_ = false;
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_URING_HPP
