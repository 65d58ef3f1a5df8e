// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_IMPL_TIMERS_IPP
#define EVNET_DETAIL_IMPL_TIMERS_IPP

// The timers' functions that are not inline: included by timers.hpp, or in compiled mode by
// <evnet/impl/src.hpp> only.
#include "evnet/timers.hpp"

namespace evnet::detail {

EVNET_DECL void TimerState::start() {
  timer.expires_after(delay);
  timer.async_wait([self = shared_from_this()](std::error_code ec) { self->fire(ec); });
  ++pending;
  if (!referenced) hide();
}
EVNET_DECL void TimerState::fire(std::error_code ec) {
  if (--pending == 0) show();  // before the handler ends: see detail::hideWork
  if (ec || !callback) return;
  if (repeat) {
    start();
    callback();  // may clear this interval
  } else {
    std::function<void()> once = std::move(callback);
    callback = nullptr;
    once();
  }
}

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_IMPL_TIMERS_IPP
