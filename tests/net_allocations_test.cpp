// The steady state of a connection allocates nothing per message: this program counts every
// operator new while an evnet client and an evnet echo server exchange messages.
#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <string>
#include <thread>

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
