// net_stream_test — the stream parts of Node's net.Socket that evnet adds for issue 13: the
// properties timeout, localFamily, bufferSize, writableEnded, writableFinished, readableEnded;
// cork() / uncork(); unpipe(); and the coroutine read (Node: for await (const chunk of socket)).
// Each case names the Node test it is modeled on.
#include "net_test_util.hpp"

#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>

namespace net = evnet::net;
using namespace evnet_test;

TEST_CASE_FIXTURE(EchoServerFixture,
                  "timeout, localFamily, bufferSize, writableEnded, writableFinished, "
                  "readableEnded as Node reports them (test-net-socket-timeout.js, "
                  "test-net-buffersize.js, test-stream-writable-ended-state.js, "
                  "test-stream-readable-ended.js)") {
  net::Socket client = net::connect(port, "127.0.0.1", {}, {}, loop);
  CHECK(client.timeout() == 0);
  client.setTimeout(1234);
  CHECK(client.timeout() == 1234);
  client.setTimeout(0);
  CHECK(client.timeout() == 0);
  CHECK(client.localFamily().empty());
  client.write("abc");  // queued while connecting
  CHECK(client.bufferSize() == 3);
  bool finishedAtFinish = false;
  bool endedAtEnd = false;
  bool closed = false;
  client.on("data", [](evnet::Buffer) {});
  client.on("connect", [&] {
    CHECK(client.localFamily() == "IPv4");
    CHECK(!client.writableEnded());
    client.end();
    CHECK(client.writableEnded());
    CHECK(!client.writableFinished());
  });
  client.on("finish", [&] {
    finishedAtFinish = client.writableFinished();
    CHECK(client.bufferSize() == 0);
  });
  client.on("end", [&] { endedAtEnd = client.readableEnded(); });
  CHECK(!client.readableEnded());
  expectCleanClose(client, closed);
  REQUIRE(runUntil(loop, [&] { return closed; }));
  CHECK(finishedAtFinish);
  CHECK(endedAtEnd);
  CHECK(closeAndRunToCompletion(loop, server));
}

// A server that collects what its connections send, and a client connected to it.
struct CollectingServerFixture {
  asio::io_context loop;
  Received received;
  net::Server server =
      net::createServer([this](net::Socket socket) { collect(socket, received); }, loop);
  const unsigned short port = listenLocal(loop, server);

  net::Socket connectedClient(net::SocketOptions options = {}) {
    net::Socket client = net::connect(port, "127.0.0.1", {}, options, loop);
    auto connected = std::make_shared<bool>(false);
    client.once("connect", [connected] { *connected = true; });
    REQUIRE(runUntil(loop, [&] { return *connected; }));
    return client;
  }
};

TEST_CASE_FIXTURE(CollectingServerFixture,
                  "cork() holds writes until as many uncork() calls, end() uncorks "
                  "(test-net-sync-cork.js, test-stream-writable-uncork.js)") {
  net::Socket client = connectedClient();
  client.cork();
  client.cork();
  CHECK(client.writableCorked() == 2);
  client.write("a");
  client.write("b");
  runFor(loop, std::chrono::milliseconds(50));
  CHECK(received.data.empty());
  client.uncork();
  client.write("c");
  runFor(loop, std::chrono::milliseconds(50));
  CHECK(received.data.empty());  // still corked once
  client.uncork();
  CHECK(client.writableCorked() == 0);
  REQUIRE(runUntil(loop, [&] { return received.data == "abc"; }));
  client.cork();
  client.write("d");
  client.end("e");  // uncorks: "de", then the FIN
  REQUIRE(runUntil(loop, [&] { return received.ended; }));
  CHECK(received.data == "abcde");
  CHECK(client.writableCorked() == 0);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE_FIXTURE(
    CollectingServerFixture,
    "uncork() hands the held writes to the kernel at once, their callback and \"drain\" come "
    "later, as in Node (writableLength is 0 after uncork(), the callback waits for the next "
    "tick)") {
  net::SocketOptions small;  // a high-water mark of 2: "ab" asks for "drain"
  small.highWaterMark = 2;
  net::Socket client = connectedClient(small);
  bool called = false;
  bool drained = false;
  client.on("drain", [&] { drained = true; });
  client.cork();
  CHECK(!client.write("ab", [&](std::error_code ec) {
    CHECK(!ec);
    called = true;
  }));
  CHECK(client.writableLength() == 2);
  client.uncork();
  if (evnet::transport(loop) == evnet::Transport::epoll)
    CHECK(client.writableLength() == 0);  // the ring sends at the end of the turn
  CHECK(!called);
  CHECK(!drained);
  REQUIRE(runUntil(loop, [&] { return called && drained && received.data == "ab"; }));
  // end() uncorks too; the write's callback still comes before "finish" (Node's order).
  std::string order;
  client.on("finish", [&] { order += "finish "; });
  client.cork();
  client.write("c", [&](std::error_code) { order += "callback "; });
  client.end();
  CHECK(order.empty());
  REQUIRE(runUntil(loop, [&] { return received.closed; }));
  CHECK(order == "callback finish ");
  CHECK(received.data == "abc");
  // So with uncork() before end(): the write went out at uncork(), its callback did not.
  net::Socket second = connectedClient();
  order.clear();
  second.on("finish", [&] { order += "finish "; });
  second.cork();
  second.write("d", [&](std::error_code) { order += "callback "; });
  second.uncork();
  second.end();
  CHECK(order.empty());
  REQUIRE(runUntil(loop, [&] { return order == "callback finish "; }));
  CHECK(closeAndRunToCompletion(loop, server));
}

// The descriptor of a connected socket, found by its local port (evnet does not expose it).
int descriptorOf(const net::Socket& socket) {
  for (int fd = 3; fd < 1024; ++fd) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
        address.ss_family != AF_INET)
      continue;
    const auto& in = reinterpret_cast<const sockaddr_in&>(address);
    if (ntohs(in.sin_port) == socket.localPort()) return fd;
  }
  return -1;
}

TEST_CASE_FIXTURE(
    CollectingServerFixture,
    "a send that fails in uncork() calls back no one from inside it: the callback gets the "
    "error, and \"error\" and \"close\" follow, from the loop") {
  net::Socket client = connectedClient();
  const int fd = descriptorOf(client);
  REQUIRE(fd >= 0);
  REQUIRE(::shutdown(fd, SHUT_WR) == 0);  // behind evnet's back: the next send fails, EPIPE
  std::error_code called;
  std::error_code emitted;
  bool closed = false;
  client.on("error", [&](std::error_code ec) { emitted = ec; });
  client.on("close", [&](bool hadError) { closed = hadError; });
  client.cork();
  client.write("x", [&](std::error_code ec) { called = ec; });
  client.uncork();
  CHECK(!called);
  CHECK(!emitted);
  CHECK(!client.destroyed());
  REQUIRE(runUntil(loop, [&] { return closed; }));
  CHECK(called);
  if (evnet::transport(loop) == evnet::Transport::epoll) CHECK(emitted == std::errc::broken_pipe);
  CHECK(emitted);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "unpipe(dest) stops forwarding to dest, with no pipe left the source pauses "
    "(test-stream-pipe-unpipe-streams.js)") {
  asio::io_context loop;
  Received atSink;
  net::Socket sourcePeer;  // the server's end of the source connection: it sends
  net::Server server = net::createServer(
      [&](net::Socket socket) {
        if (!sourcePeer)
          sourcePeer = socket;
        else
          collect(socket, atSink);
      },
      loop);
  const unsigned short port = listenLocal(loop, server);
  net::Socket source = net::connect(port, "127.0.0.1", {}, {}, loop);
  bool sourceUp = false;
  source.on("connect", [&] { sourceUp = true; });
  REQUIRE(runUntil(loop, [&] { return sourceUp && sourcePeer; }));
  net::Socket sink = net::connect(port, "127.0.0.1", {}, {}, loop);
  REQUIRE(runUntil(loop, [&] { return server.getConnections() == 2; }));
  source.unpipe();  // no pipe yet: nothing changes (Node)
  CHECK(!source.isPaused());
  source.pipe(sink);
  sourcePeer.write("one");
  REQUIRE(runUntil(loop, [&] { return atSink.data == "one"; }));
  net::Socket other = net::connect(port, "127.0.0.1", {}, {}, loop);  // not piped to
  source.unpipe(other);
  CHECK(!source.isPaused());  // the pipe to sink is still there
  source.unpipe(sink);
  CHECK(source.isPaused());
  CHECK(source.listenerCount("data") == 0);
  CHECK(sink.listenerCount("drain") == 0);
  sourcePeer.write("two");
  runFor(loop, std::chrono::milliseconds(50));
  CHECK(atSink.data == "one");
  CHECK(source.isPaused());  // "two" is held for a later reader, not forwarded
  source.destroy();
  sink.destroy();
  other.destroy();
  server.closeAllConnections();
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "co_await socket.read(): every chunk in order, then the end, the socket is paused "
    "between reads, so the peer feels backpressure (test-stream-readable-async-iterators.js)") {
  asio::io_context loop;
  constexpr std::size_t kSize = 16 * 1024 * 1024;
  net::Socket sender;
  net::Server server = net::createServer(
      [&](net::Socket socket) {
        sender = socket;
        socket.end(pattern(kSize));
      },
      loop);
  const unsigned short port = listenLocal(loop, server);
  PatternStream stream;
  bool ended = false;
  bool firstRead = false;
  std::exception_ptr failure;
  asio::steady_timer hold(loop, std::chrono::hours(1));  // the reader waits on it after one read
  net::Socket client = net::connect(port, "127.0.0.1", {}, {}, loop);
  asio::co_spawn(
      loop,
      [&]() -> asio::awaitable<void> {
        std::optional<std::string> chunk = co_await client.read(asio::use_awaitable);
        if (chunk) stream.add(*chunk);
        firstRead = true;
        std::error_code ignored;
        co_await hold.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
        while ((chunk = co_await client.read(asio::use_awaitable))) stream.add(*chunk);
        ended = true;
      },
      [&](std::exception_ptr e) { failure = e; });
  REQUIRE(runUntil(loop, [&] { return firstRead || failure; }));
  runFor(loop, std::chrono::milliseconds(100));
  CHECK(client.isPaused());
  CHECK(client.bytesRead() < kSize / 2);       // the kernel's buffers, not the whole stream
  CHECK(sender.writableLength() > kSize / 4);  // the sender holds the rest: backpressure
  hold.cancel();
  REQUIRE(runUntil(loop, [&] { return ended || failure; }));
  if (failure) std::rethrow_exception(failure);
  CHECK(stream.size() == kSize);
  CHECK(stream.intact());
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "co_await socket.read() gives the socket's error, after the end it gives the end at "
    "once") {
  asio::io_context loop;
  net::Server server =
      net::createServer([](net::Socket socket) { socket.resetAndDestroy(); }, loop);
  const unsigned short port = listenLocal(loop, server);
  std::error_code caught;
  bool done = false;
  net::Socket client = net::connect(port, "127.0.0.1", {}, {}, loop);
  asio::co_spawn(
      loop,
      [&]() -> asio::awaitable<void> {
        try {
          co_await client.read(asio::use_awaitable);
        } catch (const std::system_error& e) {
          caught = e.code();
        }
        const std::optional<std::string> after = co_await client.read(asio::use_awaitable);
        CHECK(!after);
        done = true;
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  REQUIRE(runUntil(loop, [&] { return done; }));
  CHECK(caught == std::errc::connection_reset);
  CHECK(closeAndRunToCompletion(loop, server));
}
