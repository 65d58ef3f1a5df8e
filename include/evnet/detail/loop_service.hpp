// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_LOOP_SERVICE_HPP
#define EVNET_DETAIL_LOOP_SERVICE_HPP

#include "evnet/detail/config.hpp"
#include "evnet/transport.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/query.hpp>
#include <asio/steady_timer.hpp>

#include <time.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <span>
#include <typeinfo>
#include <unordered_map>
#include <utility>

#if !defined(EVNET_HAS_IO_URING)
#define EVNET_HAS_IO_URING 0
#endif
#if EVNET_HAS_IO_URING
#include "evnet/detail/uring.hpp"
#endif

namespace evnet::detail {

// Node's ref()/unref() on asio's work count. A loop (an io_context) runs while operations are
// pending; an unreferenced handle must not keep it running, so while it is unreferenced and has
// an operation pending it takes one unit off the count (hideWork), and gives it back
// (showWork) before that operation's handler ends, or when ref() is called. A count that drops
// to zero this way stops the loop: run() returns, as Node's process exits.
inline asio::io_context& ioContextOf(const asio::any_io_executor& executor) noexcept {
  return static_cast<asio::io_context&>(asio::query(executor, asio::execution::context));
}
inline void hideWork(const asio::any_io_executor& executor) noexcept {
  ioContextOf(executor).get_executor().on_work_finished();
}
inline void showWork(const asio::any_io_executor& executor) noexcept {
  ioContextOf(executor).get_executor().on_work_started();
}
// The same without asio's type erasure, for what keeps its loop's own executor (sockets).
// Not inlined: the count's end stops the loop, code that grew every read's armRead() past
// what the compiler inlines into it (asio's start_op: 35 instructions more per message).
[[gnu::noinline]] inline void hideWork(const asio::io_context::executor_type& executor) noexcept {
  executor.on_work_finished();
}
inline void showWork(const asio::io_context::executor_type& executor) noexcept {
  executor.on_work_started();
}

// An object that must let go of its asio objects when its loop is destroyed while it is still
// alive (a socket or server that user handles keep).
class LoopMember {
 public:
  LoopMember() = default;
  LoopMember(const LoopMember&) = delete;
  LoopMember& operator=(const LoopMember&) = delete;
  virtual void onLoopShutdown() noexcept = 0;

 protected:
  ~LoopMember() = default;
  // False once the loop was destroyed: its service and executor must not be used any more.
  bool loopAlive() const noexcept { return !loopGone_; }

 private:
  friend class LoopService;
  LoopMember* prevMember_ = nullptr;
  LoopMember* nextMember_ = nullptr;
  bool linked_ = false;
  bool loopGone_ = false;
};

// A socket's place in its loop's idle-timer list (one list per timeout duration, ordered by
// last activity, as Node's timer lists): activity moves it to the tail, without a system call
// or an allocation, and one asio timer per list wakes for the head only.
struct IdleEntry {
  IdleEntry* prev = nullptr;
  IdleEntry* next = nullptr;
  struct IdleList* list = nullptr;
  std::int64_t lastActive = 0;  // ms, coarse monotonic clock
  void (*onTimeout)(IdleEntry*) = nullptr;
  void* owner = nullptr;  // what onTimeout acts on
};

// Memory for the operations that sockets keep in asio's queues (a waiting read), recycled within
// the loop: asio's own cache keeps two blocks per thread, so a loop that re-arms many reads in
// one turn would otherwise call malloc and free for each. Blocks are kept up to kMaxFree; the
// pool lives as long as the loop's services, so operations destroyed at shutdown can return
// their memory. One thread runs a loop, so no locking.
class OperationPool {
 public:
  static constexpr std::size_t kBlockSize = 256;
  static constexpr std::size_t kMaxFree = 4096;

  OperationPool() = default;
  OperationPool(const OperationPool&) = delete;
  OperationPool& operator=(const OperationPool&) = delete;
  ~OperationPool() {
    while (free_ != nullptr) ::operator delete(std::exchange(free_, free_->next));
  }

  void* allocate(std::size_t size) {
    if (size > kBlockSize) return ::operator new(size);
    if (free_ == nullptr) return ::operator new(kBlockSize);
    --freeCount_;
    return std::exchange(free_, free_->next);
  }
  void deallocate(void* block, std::size_t size) noexcept {
    if (size > kBlockSize || freeCount_ == kMaxFree) return ::operator delete(block);
    free_ = ::new (block) Node{free_};
    ++freeCount_;
  }

 private:
  struct Node {
    Node* next;
  };
  Node* free_ = nullptr;
  std::size_t freeCount_ = 0;
};

// The allocator asio uses for an operation whose handler names it (a socket's read).
template <class T>
struct PoolAllocator {
  using value_type = T;
  explicit PoolAllocator(OperationPool& pool) noexcept : pool(&pool) {}
  template <class U>
  PoolAllocator(const PoolAllocator<U>& other) noexcept : pool(other.pool) {}  // NOLINT: rebind
  T* allocate(std::size_t n) { return static_cast<T*>(pool->allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { pool->deallocate(p, n * sizeof(T)); }
  friend bool operator==(const PoolAllocator& a, const PoolAllocator& b) noexcept {
    return a.pool == b.pool;
  }
  OperationPool* pool;
};

// Work put off until the handlers that are ready now have run (see LoopService::later).
struct Deferred {
  Deferred* next = nullptr;
  void (*run)(Deferred*) = nullptr;  // may throw (a "close" listener): see runDeferred
  void* owner = nullptr;             // what run acts on
  bool queued = false;
};

struct IdleList {
  IdleList(const asio::io_context::executor_type& executor, std::int64_t ms, bool referenced)
      : ms(ms), timer(executor), referenced(referenced) {}
  std::int64_t ms;
  IdleEntry* head = nullptr;
  IdleEntry* tail = nullptr;
  asio::steady_timer timer;
  bool armed = false;
  bool referenced;  // false: its timer alone does not keep the loop running (hideWork)
};

// Per-loop state shared by every evnet socket of an io_context: the read buffer that sockets
// read into when the kernel says they are readable (so an idle socket holds none), the idle
// timer lists, and the list of live sockets and servers to release when the loop is destroyed.
class LoopService final : public asio::execution_context::service {
 public:
  using key_type = LoopService;
  static inline asio::execution_context::id id;

  explicit LoopService(asio::execution_context& context);

  static LoopService& of(const asio::any_io_executor& executor) {
    return asio::use_service<LoopService>(asio::query(executor, asio::execution::context));
  }

  // The transport asked for: by setTransport(), else by the environment variable
  // EVNET_TRANSPORT (epoll or io_uring), else automatic. Fixed by the loop's first socket or
  // server.
  void requestTransport(Transport transport);
  // The transport in use, chosen now if it was not yet. io_uring asked for explicitly and not
  // available throws std::system_error with the reason.
  Transport transport() {
    if (!transportChosen_) chooseTransport();
    return ring_ != nullptr ? Transport::ioUring : Transport::epoll;
  }
#if EVNET_HAS_IO_URING
  // The loop's ring, or null with the epoll transport.
  Ring* ring() {
    if (!transportChosen_) chooseTransport();
    return ring_.get();
  }
#endif

  static constexpr std::size_t kReadBufferSize = 64 * 1024;
  std::span<char> readBuffer() {
    if (!readBuffer_) readBuffer_ = std::make_unique<char[]>(kReadBufferSize);
    return {readBuffer_.get(), kReadBufferSize};
  }

  OperationPool& operationPool() noexcept { return operationPool_; }

  // The pipes of the loop's sockets, by source (for unpipe): what undoes each, and whether its
  // destination is a given one. A pipe leaves at unpipe() or at its source's "close".
  struct Pipe {
    std::function<bool(const void* destination, const std::type_info& type)> leadsTo;
    std::function<void()> undo;
  };
  std::unordered_multimap<const void*, std::shared_ptr<Pipe>>& pipes() noexcept { return pipes_; }

  void add(LoopMember& member) noexcept {
    member.nextMember_ = members_;
    if (members_ != nullptr) members_->prevMember_ = &member;
    members_ = &member;
    member.linked_ = true;
  }
  void remove(LoopMember& member) noexcept {
    if (!member.linked_) return;
    (member.prevMember_ != nullptr ? member.prevMember_->nextMember_ : members_) =
        member.nextMember_;
    if (member.nextMember_ != nullptr) member.nextMember_->prevMember_ = member.prevMember_;
    member.prevMember_ = member.nextMember_ = nullptr;
    member.linked_ = false;
  }

  static std::int64_t nowMs() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
  }

  // Joins the list of entries timed out after ms of inactivity. An unreferenced list's timer
  // does not keep the loop running (for housekeeping, not for what a user asked for).
  void enroll(IdleEntry& entry, std::int64_t ms, bool referenced = true);

  // Activity: the entry goes to the tail of its list. The hot path of every read and write.
  void touch(IdleEntry& entry) noexcept {
    IdleList& list = *entry.list;
    entry.lastActive = nowMs();
    if (list.tail == &entry) return;
    unlink(list, entry);
    link(list, entry);
  }

  // Runs entry once the completions that are ready now have run, in one posted handler for all
  // the entries deferred meanwhile. A socket re-arms its read this way after replying: by then
  // its peer has often answered, and the read completes at once instead of failing with EAGAIN.
  void later(Deferred& entry);
  // Whether entries wait for later()'s handler: one more costs the loop nothing.
  bool laterPending() const noexcept { return deferredHead_ != nullptr; }
  // How many times that handler ran: asio polled its reactor before each (tests count them).
  std::uint64_t laterRuns() const noexcept { return laterRuns_; }

  // Leaves the list; the list's timer stops with its last entry, so that a loop with no
  // timed socket left can finish (run() returns).
  void unenroll(IdleEntry& entry) noexcept {
    IdleList* list = std::exchange(entry.list, nullptr);
    if (list == nullptr) return;
    unlink(*list, entry);
    if (list->head == nullptr && list->armed) list->timer.cancel();
  }

 private:
  void chooseTransport();
  void runDeferred();
  // Puts a chain of entries, still marked queued, back at the front of the list.
  void requeue(Deferred* chain);
  void shutdown() override;

  static void link(IdleList& list, IdleEntry& entry) noexcept {
    entry.prev = list.tail;
    entry.next = nullptr;
    (list.tail != nullptr ? list.tail->next : list.head) = &entry;
    list.tail = &entry;
  }
  static void unlink(IdleList& list, IdleEntry& entry) noexcept {
    (entry.prev != nullptr ? entry.prev->next : list.head) = entry.next;
    (entry.next != nullptr ? entry.next->prev : list.tail) = entry.prev;
    entry.prev = entry.next = nullptr;
  }

  void arm(IdleList& list, std::int64_t delayMs);
  // Fires "timeout" for every entry idle for the list's duration; each fires once per idle
  // period (it leaves the list until its next activity), then the timer waits for the new head.
  // A throwing "timeout" listener leaves run(); the timer is re-armed first, so that the other
  // entries still time out.
  void expire(IdleList& list);
  void rearm(IdleList& list, std::int64_t now) {
    if (list.head != nullptr && !list.armed) arm(list, list.head->lastActive + list.ms - now);
  }

  OperationPool operationPool_;  // first: destroyed last
  asio::io_context::executor_type executor_;
  std::unordered_multimap<const void*, std::shared_ptr<Pipe>> pipes_;
  std::unique_ptr<char[]> readBuffer_;
  std::map<std::pair<std::int64_t, bool>, std::unique_ptr<IdleList>> idleLists_;
  LoopMember* members_ = nullptr;
  Deferred* deferredHead_ = nullptr;
  Deferred* deferredTail_ = nullptr;
  std::uint64_t laterRuns_ = 0;
  Transport requested_ = Transport::automatic;
  bool transportChosen_ = false;
#if EVNET_HAS_IO_URING
  std::unique_ptr<Ring> ring_;
#else
  std::nullptr_t ring_ = nullptr;
#endif
};

}  // namespace evnet::detail

#ifndef EVNET_SEPARATE_COMPILATION
#include "evnet/detail/impl/loop_service.ipp"
#endif

#endif  // EVNET_DETAIL_LOOP_SERVICE_HPP
