// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_PROCESS_HPP
#define EVNET_PROCESS_HPP

#include "evnet/detail/config.hpp"
#include "evnet/detail/emitter_handle.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/loop.hpp"

#include <asio/execution/context.hpp>
#include <asio/execution_context.hpp>
#include <asio/io_context.hpp>
#include <asio/query.hpp>
#include <asio/signal_set.hpp>
#include <asio/strand.hpp>

#include <signal.h>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <typeinfo>
#include <utility>

namespace evnet {

class Process;

namespace detail {

using ProcessEmitter =
    EventEmitter<Event<"SIGINT", void()>, Event<"SIGTERM", void()>, Event<"SIGHUP", void()>>;

// One loop's process emitter. While an event has listeners its signal is in the signal set (so
// the signal no longer ends the process) and a wait is pending; the wait is not counted as the
// loop's work, so it alone does not keep run() going (Node unrefs its signal handles). When the
// last listener of a signal goes, the signal leaves the set, and asio restores its default
// action once no loop of the process listens for it.
class ProcessImpl final : public ProcessEmitter {
 public:
  explicit ProcessImpl(asio::io_context& loop) : loop_(loop.get_executor()) {}

  // The emitter's removals, followed by an update of the signal set.
  ProcessImpl& off(EventName name, ListenerId id) {
    ProcessEmitter::off(name, id);
    update();
    return *this;
  }
  ProcessImpl& removeListener(EventName name, ListenerId id) { return off(name, id); }
  ProcessImpl& removeAllListeners(EventName name) {
    ProcessEmitter::removeAllListeners(name);
    update();
    return *this;
  }
  ProcessImpl& removeAllListeners() {
    ProcessEmitter::removeAllListeners();
    update();
    return *this;
  }

  // Makes the signal set and the pending wait match the listeners.
  void update();

  // The loop is being destroyed: the signal set goes (restoring the signals' default actions)
  // and so do the listeners; handles that outlive the loop find an inert emitter.
  void shutdown() noexcept {
    gone_ = true;
    signals_.reset();
    ProcessEmitter::removeAllListeners();
  }

 private:
  static constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGHUP};

  void wait();

  // The scheduler counts one unit of work off after every completion; the wait's unit was
  // already taken off when it started, so this puts one back.
  void unrefCompletion() noexcept {
#if !defined(ASIO_NO_TS_EXECUTORS)
    loop_.on_work_started();
#endif
  }

  asio::io_context::executor_type loop_;
  std::optional<asio::signal_set> signals_;  // made with the first listener
  std::array<bool, 3> added_{};
  bool waiting_ = false;
  bool gone_ = false;
};

// Holds each loop's ProcessImpl for as long as the loop lives.
class ProcessService final : public asio::execution_context::service {
 public:
  using key_type = ProcessService;
  static inline asio::execution_context::id id;

  explicit ProcessService(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  std::shared_ptr<ProcessImpl> impl;

 private:
  void shutdown() override {
    if (impl) impl->shutdown();
  }
};

}  // namespace detail

/// The process's signals as an EventEmitter, one per loop: events "SIGINT", "SIGTERM" and
/// "SIGHUP", whose listeners take no arguments (Node: process.on('SIGINT', ...), where the
/// listener also gets the signal's name). While a signal has a listener it no longer ends the
/// process; removing the last one restores its default action. A listener does not keep the
/// loop running: run() returns once nothing else is left, as Node's process exits.
class Process : public evnet::detail::EmitterHandle<Process, detail::ProcessImpl> {
 public:
  /// Internal: evnet::process() makes the one Process of a loop.
  explicit Process(std::shared_ptr<detail::ProcessImpl> impl) : impl_(std::move(impl)) {}

 private:
  friend class evnet::detail::EmitterHandle<Process, detail::ProcessImpl>;
  ListenerId listenerAdded(detail::ProcessImpl::EventName, ListenerId id) {
    impl_->update();
    return id;
  }

  std::shared_ptr<detail::ProcessImpl> impl_;
};

/// The process emitter of the loop: an asio::io_context, or a strand of one; call it on the
/// loop's thread (Node: the global process object). Throws std::invalid_argument for an
/// executor of another kind.
Process process(LoopRef loop = {});

}  // namespace evnet

#ifndef EVNET_SEPARATE_COMPILATION
#include "evnet/detail/impl/process.ipp"
#endif

#endif  // EVNET_PROCESS_HPP
