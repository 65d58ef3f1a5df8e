// A service that leaves work for others: pushes jobs onto a list in the hub (or redis-server),
// where workers take them even if they start later (see worker.cpp and README "The hub").
// Written with listeners: every push is pipelined, each reply arrives in a callback.
//   producer [--port N] [--host H] [--queue NAME] [--count N] [--prefix TEXT]
//            (defaults: 6380, 127.0.0.1, jobs, 10, job-; pushes PREFIX1 .. PREFIXN)
// Node: for (...) redis.lpush(queue, prefix + i).then(...) with ioredis.
#include "hub/flags.hpp"
#include "hub/resp_client.hpp"

#include <evnet/evnet.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  hub::Flags flags(argc, argv,
                   "producer [--port N] [--host H] [--queue NAME] [--count N] [--prefix TEXT]");
  const auto port = static_cast<unsigned short>(flags.number("port", 6380, 65535));
  const std::string host = flags.text("host", "127.0.0.1");
  const std::string queue = flags.text("queue", "jobs");
  const auto count = flags.number("count", 10);
  const std::string prefix = flags.text("prefix", "job-");
  flags.done();

  hub::RespClient redis(evnet::net::connect(port, host));
  unsigned long long answered = 0, pushed = 0;
  int status = 0;
  for (unsigned long long i = 1; i <= count; ++i) {
    // LPUSH: the newest job at the left, workers take the oldest from the right.
    redis.command({"LPUSH", queue, prefix + std::to_string(i)}, [&](std::error_code ec,
                                                                    const hub::Reply& reply) {
      if (ec || reply.isError()) {
        std::fprintf(stderr, "producer: %s\n", ec ? ec.message().c_str() : reply.text.c_str());
        status = 1;
      } else {
        ++pushed;
      }
      if (++answered == count) redis.quit();
    });
  }
  if (count == 0) redis.quit();
  evnet::run();  // returns once the connection has closed
  std::printf("pushed %llu jobs to %s\n", pushed, queue.c_str());
  return status;
}
