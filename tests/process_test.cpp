// evnet::process: Node's process.on('SIGINT' | 'SIGTERM' | 'SIGHUP'), with signals raised by the
// test itself. A signal's disposition is read back with sigaction: SIG_DFL means the default
// action (ending the process) is in force again.
#include <evnet/process.hpp>

#include "net_test_util.hpp"

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/thread_pool.hpp>

#include <signal.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace evnet_test;

namespace {

bool defaultAction(int signal) {
  struct sigaction action {};
  ::sigaction(signal, nullptr, &action);
  return action.sa_handler == SIG_DFL;
}

// doctest installs its own handlers for SIGINT and SIGTERM while a test runs; each test starts
// from the default actions instead.
struct DefaultActions {
  DefaultActions() {
    for (const int signal : {SIGINT, SIGTERM, SIGHUP}) ::signal(signal, SIG_DFL);
  }
};

// A timer that keeps the loop running while the test waits for a signal's listener.
struct KeepAlive {
  explicit KeepAlive(asio::io_context& loop) : timer(loop) {
    timer.expires_after(kDeadline);
    timer.async_wait([](std::error_code) {});
  }
  ~KeepAlive() { timer.cancel(); }
  asio::steady_timer timer;
};

}  // namespace

TEST_CASE_FIXTURE(DefaultActions,
                  "a SIGINT listener runs when the process gets SIGINT, listeners in order") {
  asio::io_context loop;
  REQUIRE(defaultAction(SIGINT));
  evnet::Process process = evnet::process(loop);
  Log log;
  process.on("SIGINT", [&] { log.push_back("first"); });
  process.on("SIGINT", [&] { log.push_back("second"); });
  CHECK(!defaultAction(SIGINT));  // the listener replaced the default action
  const KeepAlive keep(loop);
  ::raise(SIGINT);
  REQUIRE(runUntil(loop, [&] { return log.size() == 2; }));
  CHECK(log == Log{"first", "second"});
  ::raise(SIGINT);  // every time, as long as they are registered
  REQUIRE(runUntil(loop, [&] { return log.size() == 4; }));
  process.removeAllListeners("SIGINT");
  CHECK(defaultAction(SIGINT));
}

TEST_CASE_FIXTURE(DefaultActions, "each signal reaches only its own event: SIGTERM, SIGHUP") {
  asio::io_context loop;
  evnet::Process process = evnet::process(loop);
  Log log;
  const evnet::ListenerId term = process.on("SIGTERM", [&] { log.push_back("SIGTERM"); });
  const evnet::ListenerId hup = process.on("SIGHUP", [&] { log.push_back("SIGHUP"); });
  CHECK(defaultAction(SIGINT));  // nobody listens for it
  const KeepAlive keep(loop);
  ::raise(SIGHUP);
  REQUIRE(runUntil(loop, [&] { return log.size() == 1; }));
  ::raise(SIGTERM);
  REQUIRE(runUntil(loop, [&] { return log.size() == 2; }));
  CHECK(log == Log{"SIGHUP", "SIGTERM"});
  process.off("SIGTERM", term);
  CHECK(defaultAction(SIGTERM));
  CHECK(!defaultAction(SIGHUP));
  process.off("SIGHUP", hup);
  CHECK(defaultAction(SIGHUP));
}

TEST_CASE_FIXTURE(DefaultActions,
                  "a once listener runs once, and the default action is back after it") {
  asio::io_context loop;
  evnet::Process process = evnet::process(loop);
  int calls = 0;
  process.once("SIGHUP", [&] { ++calls; });
  CHECK(!defaultAction(SIGHUP));
  const KeepAlive keep(loop);
  ::raise(SIGHUP);
  REQUIRE(runUntil(loop, [&] { return calls == 1; }));
  CHECK(process.listenerCount("SIGHUP") == 0);
  CHECK(defaultAction(SIGHUP));
}

TEST_CASE_FIXTURE(DefaultActions,
                  "a Subscription's end removes the listener and restores the default action") {
  asio::io_context loop;
  evnet::Process process = evnet::process(loop);
  {
    const evnet::Subscription sub = process.subscribe("SIGTERM", [] {});
    CHECK(!defaultAction(SIGTERM));
  }
  CHECK(defaultAction(SIGTERM));
}

TEST_CASE_FIXTURE(DefaultActions,
                  "a signal listener alone does not keep the loop running, as in Node") {
  asio::io_context loop;
  evnet::process(loop).on("SIGINT", [] {});
  loop.restart();
  CHECK(loop.poll() == 0);
  CHECK(loop.stopped());  // out of work: run() would return at once

  // With other work, run() ends when that work ends, the listener still registered.
  int fired = 0;
  asio::steady_timer timer(loop, std::chrono::milliseconds(1));
  timer.async_wait([&](std::error_code) { ++fired; });
  loop.restart();
  {
    const AlarmGuard alarm(kDeadline);
    loop.run_for(kDeadline);
  }
  CHECK(fired == 1);
  CHECK(loop.stopped());
  CHECK(!defaultAction(SIGINT));
  evnet::process(loop).removeAllListeners();
  CHECK(defaultAction(SIGINT));
  loop.restart();
  loop.poll();
  CHECK(loop.stopped());  // nor does the cancelled wait
}

TEST_CASE_FIXTURE(DefaultActions,
                  "process(loop) is one emitter per loop, and every loop gets the signal") {
  asio::io_context a;
  asio::io_context b;
  evnet::process(a).on("SIGHUP", [] {});
  CHECK(evnet::process(a).listenerCount("SIGHUP") == 1);
  CHECK(evnet::process(b).listenerCount("SIGHUP") == 0);
  int inA = 0;
  int inB = 0;
  evnet::process(a).on("SIGTERM", [&] { ++inA; });
  evnet::process(b).on("SIGTERM", [&] { ++inB; });
  const KeepAlive keepA(a);
  const KeepAlive keepB(b);
  ::raise(SIGTERM);
  REQUIRE(runUntil(a, [&] { return inA == 1; }));
  REQUIRE(runUntil(b, [&] { return inB == 1; }));
  evnet::process(a).removeAllListeners();
  CHECK(!defaultAction(SIGTERM));  // b still listens
  evnet::process(b).removeAllListeners();
  CHECK(defaultAction(SIGTERM));
  CHECK(defaultAction(SIGHUP));
}

TEST_CASE_FIXTURE(
    DefaultActions,
    "destroying the loop restores the default actions, and a handle kept longer is inert") {
  auto loop = std::make_unique<asio::io_context>();
  evnet::Process process = evnet::process(*loop);
  bool released = false;
  process.on("SIGINT", [flag = std::make_shared<DestroyFlag>(released)] {});
  CHECK(!defaultAction(SIGINT));
  loop.reset();
  CHECK(defaultAction(SIGINT));
  CHECK(released);              // the listener was dropped with the loop
  process.on("SIGINT", [] {});  // no loop: nothing is installed
  CHECK(defaultAction(SIGINT));
}

TEST_CASE_FIXTURE(DefaultActions,
                  "process() takes an io_context or a strand of one, and nothing else") {
  asio::io_context loop;
  const asio::any_io_executor strand = asio::make_strand(loop);
  evnet::process(strand).on("SIGHUP", [] {});
  CHECK(evnet::process(loop).listenerCount("SIGHUP") == 1);  // the same emitter
  evnet::process(loop).removeAllListeners();
  asio::thread_pool pool(1);
  CHECK_THROWS_AS(evnet::process(asio::any_io_executor(pool.get_executor())),
                  std::invalid_argument);
  pool.join();
}
