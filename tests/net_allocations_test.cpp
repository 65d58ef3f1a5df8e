// The steady state of a connection allocates nothing per message: this program counts every
// operator new while an evnet client and an evnet echo server exchange messages.
#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "counting_new.hpp"

TEST_CASE("echoing messages allocates nothing per message once the connection is warm") {
  asio::io_context loop(1);
  namespace net = evnet::net;
  auto server = net::createServer(
      [](net::Socket socket) {
        socket.on("data", [socket](evnet::Buffer chunk) mutable { socket.write(chunk); });
      },
      loop);
  server.listen(0, "127.0.0.1");
  const std::string message(64, 'x');
  constexpr int kWarmup = 100;
  constexpr int kMeasured = 2000;
  int echoed = 0;
  std::size_t pending = 0;
  long before = 0;
  net::Socket client = net::connect(server.address().port, "127.0.0.1", {}, {}, loop);
  client.on("connect", [&] { client.write(message); });
  client.on("data", [&](evnet::Buffer chunk) {
    pending += chunk.size();
    while (pending >= message.size()) {  // a whole message came back: send the next
      pending -= message.size();
      if (++echoed == kWarmup) before = allocations.load();
      if (echoed == kWarmup + kMeasured) {
        const long during = allocations.load() - before;
        // Under AddressSanitizer the per-thread block caches keep nothing (a use after free
        // stays visible), and on io_uring each burst of sends then allocates its state.
        if (!evnet::detail::kAddressSanitized || evnet::transport(loop) == evnet::Transport::epoll)
          CHECK(during == 0);
        client.destroy();
        server.close();
        return;
      }
      client.write(message);
    }
  });
  loop.run_for(std::chrono::seconds(20));
  CHECK(echoed == kWarmup + kMeasured);
}

TEST_CASE("a write queue allocates once for a first few small writes, and not once warm") {
  // On a thread of its own: its cache of blocks (BlockCache) starts empty.
  std::thread([] {
    evnet::detail::WriteQueue queue;
    const std::string piece(20, 'w');
    CHECK(allocationsDuring([&] {
            for (int i = 0; i < 4; ++i) queue.copy(piece.data(), piece.size());
          }) == 1);  // one block, its header included
    iovec iov[4];
    REQUIRE(queue.gather(iov, 4) == 1);
    CHECK(iov[0].iov_len == 80);
    queue.consume(80);
    CHECK(queue.empty());
    CHECK(allocationsDuring([&] {
            for (int round = 0; round < 100; ++round) {
              queue.copy(piece.data(), piece.size());
              queue.consume(piece.size());
            }
          }) == 0);  // the sent block is kept for the next write
  }).join();
}

constexpr bool kSanitized = evnet::detail::kAddressSanitized;

TEST_CASE("a write queue sends a burst of large writes from its thread's blocks once warm") {
  if (kSanitized) return;  // the block caches keep nothing under AddressSanitizer
  std::thread([] {
    evnet::detail::WriteQueue queue;
    const std::string chunk(16 * 1024, 'c');
    const auto burst = [&] {  // four 16 KiB writes queued, then all sent
      for (int i = 0; i < 4; ++i) queue.copy(chunk.data(), chunk.size());
      iovec iov[8];
      const int n = queue.gather(iov, 8);
      for (int i = 0; i < n; ++i) queue.consume(iov[i].iov_len);
      CHECK(queue.empty());
    };
    burst();
    CHECK(allocationsDuring([&] {
            for (int round = 0; round < 100; ++round) burst();
          }) == 0);
  }).join();
}

TEST_CASE("write queues that sent a burst of large writes keep no large block each") {
  // A connection that once had 64 KiB queued and then went idle holds no more than one that
  // never had: the large blocks go back to the thread's cache, which is bounded (Node's queue
  // keeps nothing either).
  constexpr int kQueues = 200;
  long retained = 0;
  std::thread([&] {
    std::vector<evnet::detail::WriteQueue> queues(kQueues);
    const std::string chunk(16 * 1024, 'c');
    const long before = liveBytes.load();
    for (evnet::detail::WriteQueue& queue : queues) {
      for (int i = 0; i < 4; ++i) queue.copy(chunk.data(), chunk.size());
      iovec iov[8];
      const int n = queue.gather(iov, 8);
      for (int i = 0; i < n; ++i) queue.consume(iov[i].iov_len);
    }
    retained = liveBytes.load() - before;
  }).join();
  MESSAGE("bytes retained by " << kQueues << " idle queues and their thread: " << retained);
  CHECK(retained < kQueues * 4096L);
}

TEST_CASE("accepted connections take their socket from the loop thread's block cache once warm") {
  asio::io_context loop(1);
  namespace net = evnet::net;
  auto server = net::createServer(
      [](net::Socket socket) {
        socket.on("data", [socket](evnet::Buffer chunk) mutable { socket.end(chunk); });
      },
      loop);
  server.listen(0, "127.0.0.1");
  const unsigned short port = server.address().port;
  // A connection's socket, with allocate_shared's count in front, is at least this large.
  largeFrom = sizeof(evnet::detail::PlainSocketImpl);
  constexpr int kWarmup = 8;   // at once: as many blocks in the cache once they are gone
  constexpr int kSettle = 10;  // one after another, while the first ones go
  constexpr int kMeasured = 100;
  long large = -1;
  int echoed = 0;
  // Plain asio clients: accept, one echo, the server's end.
  std::thread client([&] {
    asio::io_context io;
    const asio::ip::tcp::endpoint address{asio::ip::make_address("127.0.0.1"), port};
    const auto connect = [&](asio::ip::tcp::socket& socket) {
      std::error_code ec;
      socket.connect(address, ec);
      return !ec;
    };
    const auto echo = [&](asio::ip::tcp::socket& socket) {
      std::error_code ec;
      asio::write(socket, asio::buffer(std::string_view("ping")), ec);
      std::array<char, 8> reply{};  // nothing of the client's own is counted
      const std::size_t got = asio::read(socket, asio::buffer(reply), ec);  // to its end
      if (ec != asio::error::eof || std::string_view(reply.data(), got) != "ping") return false;
      ++echoed;
      return true;
    };
    std::vector<asio::ip::tcp::socket> warm;
    for (int n = 0; n < kWarmup; ++n) warm.emplace_back(io);
    const bool warmed = std::all_of(warm.begin(), warm.end(), connect) &&
                        std::all_of(warm.begin(), warm.end(), echo);
    warm.clear();  // closed: the server's ends go too, in the next few turns of its loop
    long before = 0;
    for (int n = 0; warmed && n < kSettle + kMeasured; ++n) {  // one after another
      if (n == kSettle) before = largeAllocations.load();
      asio::ip::tcp::socket socket(io);
      if (!connect(socket) || !echo(socket)) break;
    }
    // Each accept allocated its socket before the client read its echo: all are counted.
    large = largeAllocations.load() - before;
    asio::post(loop, [&] { server.close(); });
  });
  loop.run_for(std::chrono::seconds(30));
  client.join();
  largeFrom = SIZE_MAX;
  REQUIRE(echoed == kWarmup + kSettle + kMeasured);
  // Under AddressSanitizer the cache keeps nothing: then each connection allocates its socket.
  if (kSanitized)
    CHECK(large >= kMeasured);
  else
    CHECK(large == 0);
}

TEST_CASE(
    "a block cache gives its thread's freed blocks back, keeps at most Count, frees at exit") {
  // Under AddressSanitizer it keeps nothing, so that a use after free stays visible.
  using Cache = evnet::detail::BlockCache<40, 2>;
  int freedBeforeExit = -1;
  std::thread([&] {
    void* a = Cache::allocate();
    void* b = Cache::allocate();
    void* c = Cache::allocate();
    Cache::deallocate(c);
    Cache::deallocate(b);
    watched = a;
    Cache::deallocate(a);  // the cache is full: freed
    CHECK(watchedFrees.load() == 1);
    void* again = nullptr;
    CHECK(allocationsDuring([&] { again = Cache::allocate(); }) == (kSanitized ? 1 : 0));
    if (!kSanitized) CHECK(again == b);  // the last kept comes back first
    watched = again;
    watchedFrees = 0;
    Cache::deallocate(again);
    freedBeforeExit = watchedFrees.load();
  }).join();
  CHECK(freedBeforeExit == (kSanitized ? 1 : 0));  // kept, unless sanitized
  CHECK(watchedFrees.load() == 1);                 // then freed by the thread's exit
  watched = nullptr;
}
