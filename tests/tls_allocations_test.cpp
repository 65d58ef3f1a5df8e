// The steady state of TLS connections allocates nothing per message either: this program counts
// every operator new while evnet TLS clients and an evnet TLS echo server exchange messages.
// (OpenSSL allocates with malloc, not counted here; with SSL_MODE_RELEASE_BUFFERS it keeps its
// own buffers between records.)
#include "tls_test_util.hpp"

#include <evnet/tls.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <string>
#include <vector>

#include "counting_new.hpp"

namespace tls = evnet::tls;

namespace {
// The operator new calls while `connections` TLS clients each keep `depth` messages of `size`
// bytes in flight to an evnet TLS echo server, after `warmup` echoed messages per connection and
// for `measured` more (-1 if they did not all finish in time), and the loop's transport.
struct Counted {
  long during = -1;
  evnet::Transport transport = evnet::Transport::automatic;
};
Counted allocationsOnceWarm(int connections, std::size_t size, int depth, int warmup,
                            int measured) {
  asio::io_context loop(1);
  tls::Server server = tls::createServer(
      evnet_test::serverOptions(),
      [](tls::Socket socket) {
        socket.on("data", [socket](evnet::Buffer chunk) mutable { socket.write(chunk); });
      },
      loop);
  server.listen(0, "127.0.0.1");
  const std::string message(size, 'x');
  std::vector<tls::Socket> clients;
  int warm = 0;
  int done = 0;
  long before = 0;
  long during = -1;
  for (int i = 0; i < connections; ++i) {
    tls::Socket client = tls::connect(evnet_test::clientOptions(server.address().port), {}, loop);
    clients.push_back(client);
    client.on("secureConnect", [client, &message, depth]() mutable {
      for (int n = 0; n < depth; ++n) client.write(message);
    });
    client.on("data", [&, client, received = std::size_t{0}, echoed = 0,
                       sent = depth](evnet::Buffer chunk) mutable {
      received += chunk.size();
      for (; received >= message.size(); received -= message.size()) {
        ++echoed;
        if (echoed == warmup && ++warm == connections) before = allocations.load();
        if (echoed == warmup + measured && ++done == connections) {
          during = allocations.load() - before;
          for (tls::Socket& c : clients) c.destroy();
          server.close();
          return;
        }
        if (sent < warmup + measured) {
          ++sent;
          client.write(message);
        }
      }
    });
  }
  loop.run_for(std::chrono::seconds(60));
  return {done == connections ? during : -1, evnet::transport(loop)};
}
}  // namespace

TEST_CASE("echoing TLS messages on several connections at once allocates nothing once warm") {
  // Several connections, so that their records are in flight together (on io_uring, each send
  // holds its records until the kernel took them): 8, a 64-byte message each, 50 round trips of
  // warm-up and 300 measured.
  const auto [during, transport] = allocationsOnceWarm(8, 64, 1, 50, 300);
  REQUIRE(during >= 0);
  // Under AddressSanitizer the per-thread block caches keep nothing (a use after free stays
  // visible), and on io_uring each burst of sends then allocates its state.
  if (!evnet::detail::kAddressSanitized || transport == evnet::Transport::epoll) CHECK(during == 0);
}

TEST_CASE("streaming 16 KiB chunks on several connections allocates nothing once warm") {
  // 4 connections with 4 chunks in flight each: the write queues fill up, on both sides.
  const long during = allocationsOnceWarm(4, 16 * 1024, 4, 200, 600).during;
  REQUIRE(during >= 0);
  // The write queues' larger blocks come from the thread's cache, which keeps nothing under
  // AddressSanitizer.
  if (!evnet::detail::kAddressSanitized) CHECK(during == 0);
}
