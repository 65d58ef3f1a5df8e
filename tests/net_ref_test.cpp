// net_ref_test — ref() / unref() on servers, sockets and timers: a loop's run() returns once
// only unreferenced handles are left, as Node's process exits. Each case names the Node test it
// is modeled on. run() is bounded by runToCompletion's deadline, so a loop that does not return
// fails the case instead of hanging.
#include "net_test_util.hpp"

#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/write.hpp>

#include <sys/resource.h>

#include <chrono>
#include <string>

namespace net = evnet::net;
using namespace evnet_test;

namespace {

// Runs the loop until it has nothing referenced left; true if that came within `within`.
bool runsOut(asio::io_context& loop, std::chrono::milliseconds within = std::chrono::seconds(5)) {
  const AlarmGuard alarm(within);
  loop.restart();
  loop.run_for(within);
  return loop.stopped();
}

}  // namespace

TEST_CASE(
    "an unreferenced listening server lets run() return, ref() makes it count again "
    "(test-net-server-unref.js, test-net-server-unref-persistent.js)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  bool listening = false;
  server.listen(0, "127.0.0.1", [&] { listening = true; });
  server.unref();
  CHECK(runsOut(loop));
  CHECK(listening);
  CHECK(server.listening());
  // Referenced again, it keeps the loop running until it closes.
  server.ref();
  bool fired = false;
  evnet::setTimeout(
      [&] {
        fired = true;
        server.close();
      },
      50, loop);
  CHECK(runsOut(loop));
  CHECK(fired);
  CHECK(!server.listening());
}

TEST_CASE("unref() before listen() applies once listening (test-net-server-unref-persistent.js)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  server.unref();
  server.listen(0, "127.0.0.1");
  CHECK(runsOut(loop));
  CHECK(server.listening());
  server.close();
  CHECK(runsOut(loop));
}

TEST_CASE(
    "an unreferenced socket, open, lets run() return, a referenced one does not "
    "(test-net-socket-unref.js, test-net-connect-options-fd... unref)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  server.unref();
  net::Socket client = net::connect(port, "127.0.0.1", {}, {}, loop);
  bool connected = false;
  client.on("connect", [&] { connected = true; });
  REQUIRE(runUntil(loop, [&] { return connected && server.getConnections() == 1; }));
  // Both ends referenced: the server's accepted socket and the client.
  server.closeAllConnections();  // the accepted end goes; the client sees the end
  client.unref();
  bool closed = false;
  client.on("close", [&](bool) { closed = true; });
  CHECK(runsOut(loop));
  CHECK(closed);  // the client ended (allowHalfOpen false) and closed: nothing was cut short
  // A fresh pair, the client unreferenced while the server's end stays referenced.
  net::Socket second = net::connect(port, "127.0.0.1", {}, {}, loop);
  second.unref();
  connected = false;
  second.on("connect", [&] { connected = true; });
  second.on("data", [](evnet::Buffer) {});
  CHECK(!runsOut(loop, std::chrono::milliseconds(300)));  // the accepted end is referenced
  CHECK(connected);
  server.closeAllConnections();
  CHECK(runsOut(loop));
  server.close();
  CHECK(runsOut(loop));
}

TEST_CASE(
    "an unreferenced open socket and server: run() returns with both open, and ref() "
    "then destroy() lets everything finish (test-net-socket-unref.js)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  net::Socket accepted;
  server.on("connection", [&](net::Socket socket) {
    accepted = socket;
    socket.unref();
  });
  net::Socket client = net::connect(port, "127.0.0.1", {}, {}, loop);
  client.unref();
  server.unref();
  CHECK(runsOut(loop));
  REQUIRE(accepted);
  CHECK(!client.destroyed());
  CHECK(client.readyState() == "open");
  client.ref();
  client.write("ping");
  std::string reply;
  client.on("data", [&](evnet::Buffer chunk) {
    reply.append(chunk);
    client.destroy();
  });
  CHECK(runsOut(loop));
  CHECK(reply == "ping");
  CHECK(client.destroyed());
  server.close();
  CHECK(runsOut(loop));
}

TEST_CASE(
    "timers: an unreferenced interval runs while something referenced does, then run() "
    "returns, hasRef (test-timers-unref.js)") {
  asio::io_context loop;
  int ticks = 0;
  evnet::Timeout interval = evnet::setInterval([&] { ++ticks; }, 10, loop);
  interval.unref();
  CHECK(!interval.hasRef());
  bool unrefFired = false;
  evnet::setTimeout([&] { unrefFired = true; }, 1, loop).unref();
  CHECK(runsOut(loop, std::chrono::milliseconds(500)));  // nothing referenced: returns at once
  CHECK(ticks == 0);
  CHECK(!unrefFired);
  bool done = false;
  evnet::setTimeout([&] { done = true; }, 100, loop);
  CHECK(runsOut(loop));
  CHECK(done);
  CHECK(ticks >= 3);  // the interval ran meanwhile
  const int before = ticks;
  CHECK(runsOut(loop, std::chrono::milliseconds(500)));
  CHECK(ticks == before);
  interval.ref();
  CHECK(interval.hasRef());
  evnet::setTimeout([&] { interval.clear(); }, 50, loop);
  CHECK(runsOut(loop));
  CHECK(ticks > before);
}

TEST_CASE("evnet::run() returns with an unreferenced server listening on the default loop") {
  net::Server server = echoServer(evnet::defaultLoop());
  server.listen(0, "127.0.0.1").unref();
  const AlarmGuard alarm(std::chrono::seconds(5));
  evnet::run();
  CHECK(server.listening());
  server.close();
  evnet::run();
  CHECK(!server.listening());
}

// The thread's voluntary context switches: one each time it slept.
long sleeps() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_nvcsw;
}

TEST_CASE(
    "evnet::run(busyPoll) polls instead of sleeping, serves, and returns when nothing is left") {
  const AlarmGuard alarm(std::chrono::seconds(5));
  // A timer 5 ms away: run() sleeps until it fires, run(1 s) polls until then.
  bool fired = false;
  evnet::setTimeout([&] { fired = true; }, 5);
  long before = sleeps();
  evnet::run(std::chrono::seconds(1));
  CHECK(fired);
  CHECK(sleeps() == before);
  fired = false;
  evnet::setTimeout([&] { fired = true; }, 5);
  before = sleeps();
  evnet::run();
  CHECK(fired);
  CHECK(sleeps() > before);

  // An echo and its client on the default loop; run(100 us) returns once both closed.
  net::Server server = echoServer(evnet::defaultLoop());
  server.listen(0, "127.0.0.1");
  std::string received;
  server.on("listening", [&] {
    auto client = net::connect(server.address().port, "127.0.0.1");
    client.on("connect", [client]() mutable { client.end("over a busy poll"); });
    client.on("data", [&](evnet::Buffer chunk) { received.append(chunk); });
    client.on("close", [&](bool) { server.close(); });
  });
  evnet::run(std::chrono::microseconds(100));
  CHECK(received == "over a busy poll");
  CHECK(!server.listening());
}

// On a loop made for one thread (evnet's default loop is one), asio runs a read or an accept
// that completed at once after the handler that started it, and counts it as the loop's work
// only then. An unreferenced socket or server used to take its operation off the count right
// after starting it: when that operation had completed at once, the count fell to zero inside
// the handler, and run() returned with work still queued.
TEST_CASE(
    "a one-thread loop: an unreferenced socket whose data is already in still lets the loop run "
    "what its listener posted (test-net-socket-unref.js)") {
  asio::io_context loop(ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  net::Server server = net::createServer({}, loop);
  bool posted = false;
  server.on("connection", [&](net::Socket socket) {
    server.unref();
    socket.unref();
    socket.on("data", [](evnet::Buffer) {});
    asio::post(loop, [&] { posted = true; });  // Node: setImmediate
  });
  const unsigned short port = listenLocal(loop, server);
  asio::io_context clientLoop;
  asio::ip::tcp::socket client(clientLoop);
  client.connect({asio::ip::make_address("127.0.0.1"), port});
  asio::write(client, asio::buffer(std::string_view("hello")));  // in before the accept
  CHECK(runsOut(loop));
  CHECK(posted);
  client.close();
  server.close();
  CHECK(runsOut(loop));
}

TEST_CASE(
    "a one-thread loop: a server unreferenced in its \"connection\" listener still accepts the "
    "connection already waiting (test-net-server-unref.js)") {
  asio::io_context loop(ASIO_CONCURRENCY_HINT_UNSAFE_IO);
  net::Server server = net::createServer({}, loop);
  int connections = 0;
  server.on("connection", [&](net::Socket socket) {
    ++connections;
    server.unref();
    socket.destroy();
  });
  const unsigned short port = listenLocal(loop, server);
  asio::io_context clientLoop;
  asio::ip::tcp::socket first(clientLoop);
  asio::ip::tcp::socket second(clientLoop);
  first.connect({asio::ip::make_address("127.0.0.1"), port});
  second.connect({asio::ip::make_address("127.0.0.1"), port});  // both wait in the backlog
  CHECK(runsOut(loop));
  CHECK(connections == 2);  // a referenced socket each, as Node's accept loop takes both
  server.close();
  CHECK(runsOut(loop));
}
