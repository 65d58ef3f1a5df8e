// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_TIMERS_HPP
#define EVNET_TIMERS_HPP

#include "evnet/detail/config.hpp"
#include "evnet/detail/loop_service.hpp"
#include "evnet/loop.hpp"

#include <asio/steady_timer.hpp>

#include <chrono>
#include <concepts>
#include <functional>
#include <memory>
#include <utility>

namespace evnet {

namespace detail {
struct TimerState : std::enable_shared_from_this<TimerState> {
  TimerState(const asio::any_io_executor& executor, std::function<void()> callback,
             std::chrono::milliseconds delay, bool repeat)
      : timer(executor), callback(std::move(callback)), delay(delay), repeat(repeat) {}

  void start();
  void fire(std::error_code ec);
  void clear() {
    callback = nullptr;  // also releases what the callback captured
    timer.cancel();
  }

  // Node's timeout.unref() / ref(): while unreferenced with a wait pending, one unit of the
  // loop's work is hidden, so that the timer alone does not keep run() going.
  void setRef(bool value) noexcept {
    referenced = value;
    if (!value && pending != 0)
      hide();
    else if (value)
      show();
  }
  void hide() noexcept {
    if (!std::exchange(hidden, true)) hideWork(timer.get_executor());
  }
  void show() noexcept {
    if (std::exchange(hidden, false)) showWork(timer.get_executor());
  }

  asio::steady_timer timer;
  std::function<void()> callback;
  std::chrono::milliseconds delay;
  bool repeat;
  bool referenced = true;
  bool hidden = false;
  unsigned pending = 0;  // waits not completed yet (refresh() leaves a cancelled one behind)
};
}  // namespace detail

/// A pending timer, returned by setTimeout and setInterval (Node: Timeout). Copies refer to the
/// same timer; a default-constructed Timeout refers to none.
class Timeout {
 public:
  Timeout() = default;
  /// Internal: setTimeout and setInterval make Timeouts.
  explicit Timeout(std::shared_ptr<detail::TimerState> state) : state_(std::move(state)) {}

  /// Starts the timer again from now with its delay; a fired timeout runs again (Node:
  /// timeout.refresh()).
  Timeout& refresh() {
    if (state_ && state_->callback) {
      state_->timer.cancel();
      state_->start();
    }
    return *this;
  }
  /// Lets the loop's run() return while the timer is pending, when nothing referenced is left
  /// (Node: timeout.unref()).
  Timeout& unref() noexcept {
    if (state_) state_->setRef(false);
    return *this;
  }
  /// Undoes unref() (Node: timeout.ref()).
  Timeout& ref() noexcept {
    if (state_) state_->setRef(true);
    return *this;
  }
  /// Whether the timer keeps the loop running (Node: timeout.hasRef()).
  bool hasRef() const noexcept { return !state_ || state_->referenced; }
  /// Whether the timer will still fire.
  bool pending() const noexcept { return state_ && state_->callback; }
  /// Cancels the timer (Node: clearTimeout / clearInterval).
  void clear() {
    if (state_) state_->clear();
  }

 private:
  std::shared_ptr<detail::TimerState> state_;
};

/// Calls f once after delay, on the loop (Node: setTimeout).
template <std::invocable F>
Timeout setTimeout(F&& f, std::chrono::milliseconds delay, LoopRef loop = {}) {
  auto state =
      std::make_shared<detail::TimerState>(loop.executor(), std::forward<F>(f), delay, false);
  state->start();
  return Timeout(std::move(state));
}
/// setTimeout with the delay in milliseconds, as Node writes it: setTimeout(f, 100).
template <std::invocable F>
Timeout setTimeout(F&& f, std::integral auto ms, LoopRef loop = {}) {
  return setTimeout(std::forward<F>(f), std::chrono::milliseconds(ms), std::move(loop));
}

/// Calls f every interval, on the loop, until cleared (Node: setInterval).
template <std::invocable F>
Timeout setInterval(F&& f, std::chrono::milliseconds interval, LoopRef loop = {}) {
  auto state =
      std::make_shared<detail::TimerState>(loop.executor(), std::forward<F>(f), interval, true);
  state->start();
  return Timeout(std::move(state));
}
/// setInterval with the interval in milliseconds: setInterval(f, 100).
template <std::invocable F>
Timeout setInterval(F&& f, std::integral auto ms, LoopRef loop = {}) {
  return setInterval(std::forward<F>(f), std::chrono::milliseconds(ms), std::move(loop));
}

/// Cancels a timeout; a fired or cleared one is left as it is (Node: clearTimeout).
inline void clearTimeout(Timeout timeout) { timeout.clear(); }
/// Cancels an interval (Node: clearInterval).
inline void clearInterval(Timeout interval) { interval.clear(); }

}  // namespace evnet

#ifndef EVNET_SEPARATE_COMPILATION
#include "evnet/detail/impl/timers.ipp"
#endif

#endif  // EVNET_TIMERS_HPP
