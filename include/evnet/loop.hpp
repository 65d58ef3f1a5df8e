// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_LOOP_HPP
#define EVNET_LOOP_HPP

#include "evnet/detail/config.hpp"
#include "evnet/detail/loop_service.hpp"
#include "evnet/transport.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include <chrono>

namespace evnet {

/// The default loop: the io_context that evnet objects use when given none (Node: the process's
/// implicit event loop). One thread runs a loop; see the README on threads.
inline asio::io_context& defaultLoop() {
  static asio::io_context loop(ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  return loop;
}

/// Runs the default loop until it has nothing left to do: no server listening, no socket open,
/// no timer pending, except those unref()'d (Node: the process exits then). Can be called again
/// after it returns. An exception thrown by a listener leaves run(); calling run() again continues
/// with the remaining work.
inline void run() {
  asio::io_context& loop = defaultLoop();
  loop.restart();
  loop.run();
}

/// run() that polls instead of sleeping until `busyPoll` has passed without work (beyond Node;
/// Linux's SO_BUSY_POLL is the same idea for one socket). A server whose clients run on other
/// cores then answers without a wake-up, which each client's send would pay for, and spends
/// the CPU of the polling; 0 is run(). The README has the measured trade.
inline void run(std::chrono::microseconds busyPoll) {
  if (busyPoll <= std::chrono::microseconds::zero()) return run();
  asio::io_context& loop = defaultLoop();
  loop.restart();
  using Clock = std::chrono::steady_clock;
  auto lastWork = Clock::now();
  for (;;) {
    if (loop.poll() > 0) {
      lastWork = Clock::now();
    } else if (loop.stopped()) {
      return;
    } else if (Clock::now() - lastWork >= busyPoll) {
      if (loop.run_one() == 0) return;
      lastWork = Clock::now();
    }
  }
}

/// The loop an evnet object runs on: an asio::io_context& or any executor of one (a strand
/// included). Implicit, so every factory takes either.
class LoopRef {
 public:
  /// The default loop.
  LoopRef();
  /// The loop of an io_context, or of an executor of one.
  LoopRef(asio::io_context& loop);
  LoopRef(asio::any_io_executor executor) : executor_(std::move(executor)) {}

  /// The executor that the object's handlers run on.
  const asio::any_io_executor& executor() const noexcept { return executor_; }

 private:
  asio::any_io_executor executor_;
};

/// Chooses how the loop's sockets and servers do their I/O (beyond Node): before its first socket
/// or server, after which it throws std::logic_error. Without it, the environment variable
/// EVNET_TRANSPORT (`epoll` or `io_uring`) decides, else Transport::automatic.
inline void setTransport(LoopRef loop, Transport transport) {
  detail::LoopService::of(loop.executor()).requestTransport(transport);
}

/// The transport the loop's sockets and servers use: Transport::epoll or Transport::ioUring
/// (chosen now if no socket or server did yet). Throws std::system_error when io_uring was asked
/// for and cannot be set up, with the kernel's reason.
inline Transport transport(LoopRef loop = {}) {
  return detail::LoopService::of(loop.executor()).transport();
}

}  // namespace evnet

#ifndef EVNET_SEPARATE_COMPILATION
#include "evnet/detail/impl/loop.ipp"
#endif

#endif  // EVNET_LOOP_HPP
