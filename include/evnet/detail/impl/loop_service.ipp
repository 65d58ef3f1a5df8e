// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_IMPL_LOOP_SERVICE_IPP
#define EVNET_DETAIL_IMPL_LOOP_SERVICE_IPP

// LoopService's functions that are not inline: included by loop_service.hpp, or in compiled mode
// by <evnet/impl/src.hpp> only.
#include "evnet/detail/loop_service.hpp"

namespace evnet::detail {

EVNET_DECL LoopService::LoopService(asio::execution_context& context)
    : asio::execution_context::service(context),
      executor_(static_cast<asio::io_context&>(context).get_executor()) {}

EVNET_DECL void LoopService::requestTransport(Transport transport) {
  if (transportChosen_)
    throw std::logic_error("evnet: setTransport() after the loop's first socket or server");
  requested_ = transport;
}

EVNET_DECL void LoopService::enroll(IdleEntry& entry, std::int64_t ms, bool referenced) {
  unenroll(entry);
  auto& slot = idleLists_[{ms, referenced}];
  if (!slot) slot = std::make_unique<IdleList>(executor_, ms, referenced);
  IdleList& list = *slot;
  entry.list = &list;
  entry.lastActive = nowMs();
  link(list, entry);
  if (!list.armed) arm(list, ms);
}

EVNET_DECL void LoopService::later(Deferred& entry) {
  if (entry.queued) return;
  entry.queued = true;
  entry.next = nullptr;
  if (deferredTail_ != nullptr) {
    deferredTail_->next = &entry;
  } else {
    deferredHead_ = &entry;
    asio::post(executor_, [this] { runDeferred(); });
  }
  deferredTail_ = &entry;
}

EVNET_DECL void LoopService::chooseTransport() {
  Transport wanted = requested_;
  if (wanted == Transport::automatic) {
    const char* env = std::getenv("EVNET_TRANSPORT");
    const std::string_view name = env != nullptr ? env : "";
    if (name == "epoll") wanted = Transport::epoll;
    if (name == "io_uring") wanted = Transport::ioUring;
  }
#if EVNET_HAS_IO_URING
  // Automatic is epoll while the io_uring transport is young (README "Transports").
  if (wanted == Transport::ioUring) ring_ = std::make_unique<Ring>(executor_);
#else
  if (wanted == Transport::ioUring)
    throw std::system_error(std::make_error_code(std::errc::function_not_supported),
                            "evnet: io_uring asked for, but evnet was built without it "
                            "(EVNET_HAS_IO_URING)");
#endif
  transportChosen_ = true;
}

EVNET_DECL void LoopService::runDeferred() {
  Deferred* entry = std::exchange(deferredHead_, nullptr);
  deferredTail_ = nullptr;
  ++laterRuns_;
  while (entry != nullptr) {
    Deferred* next = std::exchange(entry->next, nullptr);
    entry->queued = false;
    try {
      entry->run(entry);
    } catch (...) {  // the exception leaves run(); the entries after it run in the next batch
      if (next != nullptr) requeue(next);
      throw;
    }
    entry = next;
  }
}

EVNET_DECL void LoopService::requeue(Deferred* chain) {
  Deferred* last = chain;
  while (last->next != nullptr) last = last->next;
  if (deferredHead_ == nullptr) {
    deferredTail_ = last;
    asio::post(static_cast<asio::io_context&>(context()), [this] { runDeferred(); });
  } else {
    last->next = deferredHead_;
  }
  deferredHead_ = chain;
}

EVNET_DECL void LoopService::shutdown() {
  while (LoopMember* member = members_) {
    remove(*member);
    member->loopGone_ = true;
    member->onLoopShutdown();
  }
  pipes_.clear();  // the handles they hold go while the loop's service is whole
  idleLists_.clear();
#if EVNET_HAS_IO_URING
  if (ring_) ring_->shutdown();
  ring_.reset();  // its eventfd leaves asio's reactor while that is whole
#endif
}

EVNET_DECL void LoopService::arm(IdleList& list, std::int64_t delayMs) {
  list.armed = true;
  list.timer.expires_after(std::chrono::milliseconds(delayMs));
  list.timer.async_wait([this, &list](std::error_code ec) {
    if (!list.referenced) showWork(executor_);  // before the handler ends: see hideWork
    list.armed = false;
    if (!ec) return expire(list);
    rearm(list, nowMs());  // cancelled when the list emptied; entries may have come since
  });
  if (!list.referenced) hideWork(executor_);
}

EVNET_DECL void LoopService::expire(IdleList& list) {
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

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_IMPL_LOOP_SERVICE_IPP
