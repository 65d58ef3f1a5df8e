// Using every core: one loop per thread, each with its own Server on the same port
// (ServerOptions::reusePort), as the README describes. Run under ThreadSanitizer in CI.
#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("N loops on N threads serve one port together, each server on its own loop") {
  constexpr int kLoops = 2;
  constexpr int kClients = 40;
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<evnet::net::Server> servers;
  std::atomic<int> served{0};
  evnet::net::ServerOptions options;
  options.reusePort = true;
  unsigned short port = 0;
  for (int i = 0; i < kLoops; ++i) {
    loops.push_back(std::make_unique<asio::io_context>(1));
    servers.push_back(evnet::net::createServer(
        options,
        [&served](evnet::net::Socket socket) {
          served.fetch_add(1, std::memory_order_relaxed);
          socket.on("data", [socket](evnet::Buffer chunk) mutable { socket.write(chunk); });
        },
        *loops.back()));
    servers.back().listen(port, "127.0.0.1");
    port = servers.back().address().port;  // the first picks the port, the others share it
    REQUIRE(port != 0);
  }
  std::vector<std::thread> threads;
  for (auto& loop : loops) threads.emplace_back([&loop] { loop->run(); });

  asio::io_context clientContext;
  for (int i = 0; i < kClients; ++i) {
    asio::ip::tcp::socket client(clientContext);
    client.connect({asio::ip::make_address("127.0.0.1"), port});
    const std::string message = "message " + std::to_string(i);
    asio::write(client, asio::buffer(message));
    std::string echoed(message.size(), '\0');
    asio::read(client, asio::buffer(echoed));
    CHECK(echoed == message);
  }

  for (int i = 0; i < kLoops; ++i)
    asio::post(*loops[i], [&server = servers[i]] { server.close().closeAllConnections(); });
  for (auto& thread : threads) thread.join();
  CHECK(served.load() == kClients);
}
