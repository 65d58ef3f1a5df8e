// A service that does the work: takes jobs from a list in the hub (or redis-server) with BLMOVE
// into its own processing list and acknowledges each with LREM once done, so a worker killed
// mid-job leaves the job in its processing list; started again, it puts that job back at the
// head of the queue first (the reliable queue pattern of Redis' LMOVE documentation).
// Written with co_await.
//   worker [--port N] [--host H] [--queue NAME] [--processing NAME] [--count N]
//          [--timeout SECONDS] [--work-ms MS]
//   (defaults: 6380, 127.0.0.1, jobs, QUEUE:processing, 0 = no limit, 0 = wait forever, 0)
// It prints "working on JOB" and "done JOB" per job and exits after --count jobs, or once the
// queue stayed empty for --timeout seconds. Give each worker its own --processing list.
#include "hub/flags.hpp"
#include "hub/resp_client.hpp"

#include <evnet/evnet.hpp>

#include <asio/co_spawn.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

struct Options {
  unsigned short port;
  std::string host, queue, processing, timeout;
  unsigned long long count, workMs;
};

// A reply that is an error ends the worker with its message.
hub::Reply checked(hub::Reply reply) {
  if (reply.isError()) throw std::runtime_error(reply.text);
  return reply;
}

// (Commands are built before each co_await: GCC 12 cannot keep a braced list of string
// literals alive across a suspension, "array used as initializer".)
asio::awaitable<void> work(Options o) {
  evnet::net::Socket socket = co_await evnet::net::connect(o.port, o.host, asio::use_awaitable);
  hub::RespClient redis(socket);
  using asio::use_awaitable;
  // Jobs a killed worker left behind go back to the end of the queue that is taken next.
  const hub::Command requeue = {"LMOVE", o.processing, o.queue, "RIGHT", "RIGHT"};
  for (;;) {
    auto job = checked(co_await redis.command(requeue, use_awaitable));
    if (job.isNull()) break;
    std::printf("requeued %s\n", job.text.c_str());
  }
  const hub::Command take = {"BLMOVE", o.queue, o.processing, "RIGHT", "LEFT", o.timeout};
  for (unsigned long long done = 0; o.count == 0 || done < o.count; ++done) {
    auto job = checked(co_await redis.command(take, use_awaitable));
    if (job.isNull()) break;  // nothing came within --timeout
    std::printf("working on %s\n", job.text.c_str());
    std::fflush(stdout);
    if (o.workMs > 0) {
      asio::steady_timer timer(co_await asio::this_coro::executor);
      timer.expires_after(std::chrono::milliseconds(o.workMs));
      co_await timer.async_wait(use_awaitable);
    }
    const hub::Command acknowledge = {"LREM", o.processing, "1", job.text};
    checked(co_await redis.command(acknowledge, use_awaitable));
    std::printf("done %s\n", job.text.c_str());
    std::fflush(stdout);
  }
  const hub::Command quit = {"QUIT"};
  co_await redis.command(quit, use_awaitable);
}

int main(int argc, char** argv) {
  hub::Flags flags(argc, argv,
                   "worker [--port N] [--host H] [--queue NAME] [--processing NAME] [--count N] "
                   "[--timeout SECONDS] [--work-ms MS]");
  Options o;
  o.port = static_cast<unsigned short>(flags.number("port", 6380, 65535));
  o.host = flags.text("host", "127.0.0.1");
  o.queue = flags.text("queue", "jobs");
  o.processing = flags.text("processing", o.queue + ":processing");
  o.count = flags.number("count", 0);
  o.timeout = std::to_string(flags.number("timeout", 0, 1000000000));
  o.workMs = flags.number("work-ms", 0, 1000000000);
  flags.done();

  int status = 1;
  asio::co_spawn(evnet::defaultLoop(), work(o), [&](std::exception_ptr error) {
    try {
      if (error) std::rethrow_exception(error);
      status = 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "worker: %s\n", e.what());
    }
  });
  evnet::run();
  return status;
}
