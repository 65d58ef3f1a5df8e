// The steady state of TLS connections allocates nothing per message either: this program counts
// every operator new while evnet TLS clients and an evnet TLS echo server exchange messages,
// and OpenSSL's own allocations (its memory functions, replaced before its first one), which
// keep a connection's record buffers while records flow and free them once it is idle.
#include "tls_test_util.hpp"

#include <evnet/tls.hpp>

#include <doctest/doctest.h>

#include <openssl/crypto.h>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "counting_new.hpp"

namespace tls = evnet::tls;

namespace {
// A record buffer of OpenSSL's, for reading or for writing: 16 KiB of plaintext and more.
constexpr std::size_t kRecordBuffer = 16 * 1024;

// OpenSSL's allocations of a record buffer's size or more, and the bytes it holds (malloc's
// usable sizes), counted from the start: CRYPTO_set_mem_functions must come before OpenSSL's
// first allocation, hence a constructor that runs before any C++ static initializer (asio's
// initializes OpenSSL). (OpenSSL 3.0 also makes small ones for every record it writes.)
std::atomic<long> opensslLargeAllocations{0};
std::atomic<long> opensslBytes{0};
bool opensslCounted = false;

void opensslFree(void* p, const char*, int) noexcept {
  if (p != nullptr) opensslBytes -= static_cast<long>(::malloc_usable_size(p));
  std::free(p);
}
void* opensslMalloc(std::size_t size, const char*, int) noexcept {
  void* p = std::malloc(size);
  if (p != nullptr) {
    if (size >= kRecordBuffer) ++opensslLargeAllocations;
    opensslBytes += static_cast<long>(::malloc_usable_size(p));
  }
  return p;
}
void* opensslRealloc(void* old, std::size_t size, const char* file, int line) noexcept {
  if (size == 0) {
    opensslFree(old, file, line);
    return nullptr;
  }
  const long before = old != nullptr ? static_cast<long>(::malloc_usable_size(old)) : 0;
  void* p = std::realloc(old, size);
  if (p != nullptr) {
    if (size >= kRecordBuffer) ++opensslLargeAllocations;
    opensslBytes += static_cast<long>(::malloc_usable_size(p)) - before;
  }
  return p;
}
[[gnu::constructor(101)]] void countOpensslMemory() {
  opensslCounted = CRYPTO_set_mem_functions(opensslMalloc, opensslRealloc, opensslFree) == 1;
}

// Runs `check` every 10 ms until it returns true (then true) or `limit` passed (then false).
bool pollUntil(asio::io_context& loop, std::chrono::milliseconds limit,
               std::function<bool()> check) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  asio::steady_timer timer(loop);
  bool met = false;
  std::function<void()> poll = [&] {
    if ((met = check()) || std::chrono::steady_clock::now() > deadline) return;
    timer.expires_after(std::chrono::milliseconds(10));
    timer.async_wait([&](std::error_code ec) {
      if (!ec) poll();
    });
  };
  poll();
  while (!met && std::chrono::steady_clock::now() <= deadline && loop.run_one_for(limit) != 0) {
  }
  return met;
}

// An evnet TLS echo server, listening on 127.0.0.1.
tls::Server echoServer(asio::io_context& loop) {
  tls::Server server = tls::createServer(
      evnet_test::serverOptions(),
      [](tls::Socket socket) {
        socket.on("data", [socket](evnet::Buffer chunk) mutable { socket.write(chunk); });
      },
      loop);
  server.listen(0, "127.0.0.1");
  return server;
}

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
  tls::Server server = echoServer(loop);
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

TEST_CASE("OpenSSL keeps a busy connection's record buffers and frees them once it is idle") {
  REQUIRE(opensslCounted);
  constexpr int kConnections = 8;
  asio::io_context loop(1);
  tls::Server server = echoServer(loop);
  const std::string message(64, 'x');
  std::vector<tls::Socket> clients;
  int echoed = 0;   // in all
  int rounds = 20;  // of warm-up, then 100 measured, then one more after the idle time
  long before = 0;
  std::function<void()> nextRound = [&] {
    for (tls::Socket& client : clients) client.write(message);
  };
  for (int i = 0; i < kConnections; ++i) {
    tls::Socket client = tls::connect(evnet_test::clientOptions(server.address().port), {}, loop);
    clients.push_back(client);
    client.on("secureConnect", [client, &message]() mutable { client.write(message); });
    client.on("data", [&, received = std::size_t{0}](evnet::Buffer chunk) mutable {
      received += chunk.size();
      if (received < message.size()) return;
      received -= message.size();
      if (++echoed % kConnections != 0) return;
      if (--rounds == 0) return loop.stop();
      nextRound();
    });
  }
  loop.run_for(std::chrono::seconds(30));
  REQUIRE(rounds == 0);  // warm: both sides hold their buffers, the server sent its tickets
  loop.restart();
  before = opensslLargeAllocations.load();
  rounds = 100;
  nextRound();
  loop.run_for(std::chrono::seconds(30));
  REQUIRE(rounds == 0);
  // None, unless the loop stalled for 100 ms between two records of a connection (then that
  // connection's two, on each side); with SSL_MODE_RELEASE_BUFFERS, a buffer for each record
  // read or written (4,800).
  CHECK(opensslLargeAllocations.load() - before < 2 * 2 * kConnections);

  // Idle: every connection's buffers go, on both sides, 100 ms after its last record.
  loop.restart();
  const long busy = opensslBytes.load();
  const long released = 2L * kConnections * 2 * static_cast<long>(kRecordBuffer);
  CHECK(pollUntil(loop, std::chrono::seconds(10),
                  [&] { return opensslBytes.load() <= busy - released; }));

  // And come back for the next record.
  rounds = 1;
  nextRound();
  loop.run_for(std::chrono::seconds(30));
  CHECK(rounds == 0);
  for (tls::Socket& client : clients) client.destroy();
  server.close();
  loop.restart();
  loop.run_for(std::chrono::seconds(10));
}

TEST_CASE("the timer that frees an idle connection's record buffers does not keep the loop") {
  REQUIRE(opensslCounted);
  asio::io_context loop(1);
  tls::Server server = tls::createServer(
      evnet_test::serverOptions(),
      [](tls::Socket socket) {
        socket.on("data", [socket](evnet::Buffer chunk) mutable {
          socket.write(chunk);
          socket.unref();
        });
      },
      loop);
  server.listen(0, "127.0.0.1");
  tls::Socket client = tls::connect(evnet_test::clientOptions(server.address().port), {}, loop);
  client.on("secureConnect", [&]() mutable { client.write("ping"); });
  bool echoed = false;
  client.on("data", [&](evnet::Buffer) {
    echoed = true;
    client.unref();
    server.unref();
  });
  // Both ends unreferenced, the server too: run() returns with the connection open, while the
  // client's buffers are still held, its last record read just now (a referenced timer would
  // have kept the loop running for 100 ms more, and freed them).
  loop.run_for(std::chrono::seconds(30));
  REQUIRE(echoed);
  const long held = opensslBytes.load();
  loop.restart();
  client.ref();  // then they go: they were held when run() returned
  CHECK(pollUntil(loop, std::chrono::seconds(10), [&] {
    return opensslBytes.load() <= held - 2 * static_cast<long>(kRecordBuffer);
  }));
  client.destroy();
  server.close();
  loop.restart();
  loop.run_for(std::chrono::seconds(10));
}
