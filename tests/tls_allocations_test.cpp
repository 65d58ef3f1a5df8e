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

TEST_CASE("echoing TLS messages on several connections at once allocates nothing once warm") {
  asio::io_context loop(1);
  tls::Server server = tls::createServer(
      evnet_test::serverOptions(),
      [](tls::Socket socket) {
        socket.on("data", [socket](evnet::Buffer chunk) mutable { socket.write(chunk); });
      },
      loop);
  server.listen(0, "127.0.0.1");
  const unsigned short port = server.address().port;
  // Several connections, so that their records are in flight together (on io_uring, each send
  // holds its records until the kernel took them).
  constexpr int kConnections = 8;
  constexpr int kWarmup = 50;     // round trips per connection
  constexpr int kMeasured = 300;  // round trips per connection
  const std::string message(64, 'x');
  std::vector<tls::Socket> clients;
  std::vector<int> echoed(kConnections, 0);
  int warm = 0;
  int done = 0;
  long before = 0;
  long during = -1;
  for (int i = 0; i < kConnections; ++i) {
    tls::Socket client = tls::connect(evnet_test::clientOptions(port), {}, loop);
    clients.push_back(client);
    client.on("secureConnect", [client, &message]() mutable { client.write(message); });
    client.on("data", [&, i, client, pending = std::size_t{0}](evnet::Buffer chunk) mutable {
      pending += chunk.size();
      for (; pending >= message.size(); pending -= message.size()) {
        const int n = ++echoed[static_cast<std::size_t>(i)];
        if (n == kWarmup && ++warm == kConnections) before = allocations.load();
        if (n == kWarmup + kMeasured) {
          if (++done == kConnections) {
            during = allocations.load() - before;
            for (tls::Socket& c : clients) c.destroy();
            server.close();
          }
          return;
        }
        client.write(message);
      }
    });
  }
  loop.run_for(std::chrono::seconds(60));
  REQUIRE(done == kConnections);
  // Under AddressSanitizer the per-thread block caches keep nothing (a use after free stays
  // visible), and on io_uring each burst of sends then allocates its state.
  if (!evnet::detail::kAddressSanitized || evnet::transport(loop) == evnet::Transport::epoll)
    CHECK(during == 0);
}
