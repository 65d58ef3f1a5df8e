// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_LOOP_SERVICE_HPP
#define EVNET_DETAIL_LOOP_SERVICE_HPP

#include <asio/any_io_executor.hpp>
#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/query.hpp>
#include <asio/steady_timer.hpp>

#include <time.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <utility>

namespace evnet::detail {

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

struct IdleList {
  IdleList(const asio::any_io_executor& executor, std::int64_t ms) : ms(ms), timer(executor) {}
  std::int64_t ms;
  IdleEntry* head = nullptr;
  IdleEntry* tail = nullptr;
  asio::steady_timer timer;
  bool armed = false;
};

// Per-loop state shared by every evnet socket of an io_context: the read buffer that sockets
// read into when the kernel says they are readable (so an idle socket holds none), the idle
// timer lists, and the list of live sockets and servers to release when the loop is destroyed.
class LoopService final : public asio::execution_context::service {
 public:
  using key_type = LoopService;
  static inline asio::execution_context::id id;

  explicit LoopService(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  static LoopService& of(const asio::any_io_executor& executor) {
    return asio::use_service<LoopService>(asio::query(executor, asio::execution::context));
  }

  static constexpr std::size_t kReadBufferSize = 64 * 1024;
  std::span<char> readBuffer() {
    if (!readBuffer_) readBuffer_ = std::make_unique<char[]>(kReadBufferSize);
    return {readBuffer_.get(), kReadBufferSize};
  }

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

  void enroll(IdleEntry& entry, std::int64_t ms, const asio::any_io_executor& executor) {
    unenroll(entry);
    auto& slot = idleLists_[ms];
    if (!slot) slot = std::make_unique<IdleList>(executor, ms);
    IdleList& list = *slot;
    entry.list = &list;
    entry.lastActive = nowMs();
    link(list, entry);
    if (!list.armed) arm(list, ms);
  }

  // Activity: the entry goes to the tail of its list. The hot path of every read and write.
  void touch(IdleEntry& entry) noexcept {
    IdleList& list = *entry.list;
    entry.lastActive = nowMs();
    if (list.tail == &entry) return;
    unlink(list, entry);
    link(list, entry);
  }

  // Leaves the list; the list's timer stops with its last entry, so that a loop with no
  // timed socket left can finish (run() returns).
  void unenroll(IdleEntry& entry) noexcept {
    IdleList* list = std::exchange(entry.list, nullptr);
    if (list == nullptr) return;
    unlink(*list, entry);
    if (list->head == nullptr && list->armed) list->timer.cancel();
  }

 private:
  void shutdown() override {
    while (LoopMember* member = members_) {
      remove(*member);
      member->loopGone_ = true;
      member->onLoopShutdown();
    }
    idleLists_.clear();
  }

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

  void arm(IdleList& list, std::int64_t delayMs) {
    list.armed = true;
    list.timer.expires_after(std::chrono::milliseconds(delayMs));
    list.timer.async_wait([this, &list](std::error_code ec) {
      list.armed = false;
      if (!ec) return expire(list);
      rearm(list, nowMs());  // cancelled when the list emptied; entries may have come since
    });
  }

  // Fires "timeout" for every entry idle for the list's duration; each fires once per idle
  // period (it leaves the list until its next activity), then the timer waits for the new head.
  // A throwing "timeout" listener leaves run(); the timer is re-armed first, so that the other
  // entries still time out.
  void expire(IdleList& list) {
    const std::int64_t now = nowMs();
    try {
      while (list.head != nullptr && list.head->lastActive + list.ms <= now) {
        IdleEntry& entry = *list.head;
        unenroll(entry);
        entry.onTimeout(&entry);
      }
    } catch (...) {
      rearm(list, now);
      throw;
    }
    rearm(list, now);
  }
  void rearm(IdleList& list, std::int64_t now) {
    if (list.head != nullptr && !list.armed) arm(list, list.head->lastActive + list.ms - now);
  }

  std::unique_ptr<char[]> readBuffer_;
  std::map<std::int64_t, std::unique_ptr<IdleList>> idleLists_;
  LoopMember* members_ = nullptr;
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_LOOP_SERVICE_HPP
