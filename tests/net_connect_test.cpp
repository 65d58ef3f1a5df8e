// net_connect_test — Node's new net.Socket() then connect(), connect's options (localAddress,
// localPort, family, timeout, lookup, blockList, signal) and Happy Eyeballs as Node 20 does it:
// connectionAttempt, connectionAttemptFailed, connectionAttemptTimeout,
// autoSelectFamilyAttemptedAddresses. Each case names the Node test it is modeled on.
#include "net_test_util.hpp"

#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace net = evnet::net;
using namespace evnet_test;

namespace {

// A lookup that answers with fixed addresses in a later turn, as a resolver does (Node's tests:
// createMockedLookup).
net::LookupFunction mockedLookup(asio::io_context& loop,
                                 std::vector<net::LookupAddress> addresses) {
  return [&loop, addresses](const std::string&, int, auto callback) {
    asio::post(loop, [callback, addresses] { callback({}, addresses); });
  };
}

// Connect options set by f (with designated initializers GCC warns about the SocketOptions base
// left out).
template <class F>
net::ConnectOptions make(F f) {
  net::ConnectOptions o;
  f(o);
  return o;
}

// Connects to example.org:port, the name resolving to addresses (mockedLookup); more sets
// further options.
net::Socket connectResolving(asio::io_context& loop, unsigned short port,
                             std::vector<net::LookupAddress> addresses,
                             const std::function<void(net::ConnectOptions&)>& more = {}) {
  return net::connect(make([&](net::ConnectOptions& o) {
                        o.port = port;
                        o.host = "example.org";
                        o.lookup = mockedLookup(loop, std::move(addresses));
                        if (more) more(o);
                      }),
                      {}, loop);
}

#if EVNET_HAS_STOP_TOKEN
// Connects to 127.0.0.1:port with source's token as the signal.
net::Socket connectStoppable(asio::io_context& loop, unsigned short port,
                             const std::stop_source& source,
                             std::function<void()> connectListener = {}) {
  return net::connect(make([&](net::ConnectOptions& o) {
                        o.port = port;
                        o.host = "127.0.0.1";
                        o.signal = source.get_token();
                      }),
                      std::move(connectListener), loop);
}
#endif

std::string refused(const std::string& ip, unsigned short port) {
  return "failed " + ip + ":" + std::to_string(port) + "/4 " +
         std::make_error_code(std::errc::connection_refused).message();
}

}  // namespace

TEST_CASE("new Socket(options), listeners, then connect() (test-net-socket-constructor.js)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  net::Socket socket(net::SocketOptions{.allowHalfOpen = true}, loop);
  CHECK(socket.pending());
  CHECK(!socket.connecting());
  CHECK(!socket.destroyed());
  CHECK(socket.readyState() == "open");  // as Node says of a new net.Socket()
  CHECK(!socket.writableEnded());
  Log log;
  std::string reply;
  recordConnect(socket, log);
  socket.on("data", [&](evnet::Buffer chunk) { reply.append(chunk); });
  socket.on("end", [&] { socket.end(); });  // allowHalfOpen from the constructor: ours to end
  socket.connect(port, "127.0.0.1", [&] { socket.end("hello"); });
  CHECK(socket.connecting());
  runUntilClosed(loop, log);
  CHECK(reply == "hello");
  CHECK(log == Log{"attempt 127.0.0.1:" + std::to_string(port) + "/4", "connect", "close false"});
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("a write on a socket never connected fails with ERR_SOCKET_CLOSED (Node 20, run)") {
  asio::io_context loop;
  net::Socket socket(net::SocketOptions{}, loop);
  std::error_code writeError;
  bool closed = false;
  CHECK(!socket.write("x", [&](std::error_code ec) { writeError = ec; }));
  socket.on("close", [&](bool) { closed = true; });
  socket.destroy();  // destroy() before any connect: only "close" (N5)
  REQUIRE(runUntil(loop, [&] { return closed; }));
  CHECK(writeError == evnet::Errc::socketClosed);
  CHECK(runToCompletion(loop));
}

TEST_CASE(
    "connect(options): localAddress and localPort bind the client "
    "(test-net-local-address-port.js)") {
  asio::io_context loop;
  std::string peerAddress;
  unsigned short peerPort = 0;
  net::Server server = net::createServer(
      [&](net::Socket socket) {
        peerAddress = socket.remoteAddress();
        peerPort = socket.remotePort();
        socket.end();
      },
      loop);
  const unsigned short port = listenLocal(loop, server);
  const unsigned short localPort = closedPort();
  net::Socket client = net::connect(make([&](net::ConnectOptions& o) {
                                      o.port = port;
                                      o.host = "127.0.0.1";
                                      o.localAddress = "127.0.0.1";
                                      o.localPort = localPort;
                                    }),
                                    {}, loop);
  bool closed = false;
  expectCleanClose(client, closed);
  client.on("data", [](evnet::Buffer) {});
  REQUIRE(runUntil(loop, [&] { return closed; }));
  CHECK(peerAddress == "127.0.0.1");
  CHECK(peerPort == localPort);
  CHECK(client.localPort() == localPort);
  CHECK(client.localFamily() == "IPv4");
  CHECK_THROWS_AS(net::connect(make([&](net::ConnectOptions& o) {
                                 o.port = port;
                                 o.localAddress = "not-an-ip";
                               }),
                               {}, loop),
                  std::invalid_argument);
  CHECK_THROWS_AS(net::connect(make([&](net::ConnectOptions& o) {
                                 o.port = port;
                                 o.family = 5;
                               }),
                               {}, loop),
                  std::invalid_argument);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("connect(options): a localAddress in use fails with EADDRINUSE, error then close(true)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  net::Socket client = net::connect(make([&](net::ConnectOptions& o) {
                                      o.port = port;
                                      o.host = "127.0.0.1";
                                      o.localAddress = "127.0.0.1";
                                      o.localPort = port;
                                    }),
                                    {}, loop);
  Log log;
  recordConnect(client, log);
  runUntilClosed(loop, log);
  CHECK(log.back() == "close true");
  CHECK(log[log.size() - 2] ==
        "error " + std::make_error_code(std::errc::address_in_use).message());
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "connect(options): family 4 resolves to IPv4 only, timeout sets the idle timeout "
    "(test-net-connect-options-ipv6.js, test-net-socket-timeout.js)") {
  asio::io_context loop;
  net::Server server = net::createServer([](net::Socket) {}, loop);  // never writes
  const unsigned short port = listenLocal(loop, server);
  net::Socket client = net::connect(make([&](net::ConnectOptions& o) {
                                      o.port = port;
                                      o.host = "localhost";
                                      o.family = 4;
                                      o.timeout = 50;
                                    }),
                                    {}, loop);
  CHECK(client.timeout() == 50);
  Log log;
  recordConnect(client, log);
  client.on("timeout", [&] {
    log.push_back("timeout");
    client.destroy();
  });
  runUntilClosed(loop, log);
  CHECK(log == Log{"lookup localhost 127.0.0.1/4",
                   "attempt 127.0.0.1:" + std::to_string(port) + "/4", "connect", "timeout",
                   "close false"});
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "connect(options): a blockList address is refused before any packet leaves "
    "(Node: ERR_IP_BLOCKED)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  bool accepted = false;
  server.on("connection", [&](net::Socket) { accepted = true; });
  auto blockList = std::make_shared<net::BlockList>();
  blockList->addAddress("127.0.0.1");
  net::Socket client = net::connect(make([&](net::ConnectOptions& o) {
                                      o.port = port;
                                      o.host = "127.0.0.1";
                                      o.blockList = blockList;
                                    }),
                                    {}, loop);
  Log log;
  recordConnect(client, log);
  runUntilClosed(loop, log);
  CHECK(log == Log{"error IP is blocked by net.BlockList", "close true"});
  runFor(loop, std::chrono::milliseconds(50));
  CHECK(!accepted);
  CHECK(server.getConnections() == 0);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "Happy Eyeballs: an address that refuses, then the next one connects, lookup once per "
    "address (test-net-autoselectfamily.js)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  const std::string p = std::to_string(port);
  net::Socket client =
      connectResolving(loop, port, {{"127.0.0.3", 4}, {"127.0.0.1", 4}, {"127.0.0.3", 4}});
  Log log;
  recordConnect(client, log);
  client.on("connect", [&] { client.end(); });
  client.on("data", [](evnet::Buffer) {});
  runUntilClosed(loop, log);
  CHECK(log == Log{"lookup example.org 127.0.0.3/4", "lookup example.org 127.0.0.1/4",
                   "lookup example.org 127.0.0.3/4", "attempt 127.0.0.3:" + p + "/4",
                   refused("127.0.0.3", port), "attempt 127.0.0.1:" + p + "/4", "connect",
                   "close false"});
  CHECK(client.autoSelectFamilyAttemptedAddresses() ==
        std::vector<std::string>{"127.0.0.3:" + p, "127.0.0.1:" + p});
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "Happy Eyeballs: every address refuses: the first error, close(true) "
    "(test-net-autoselectfamily-timeout-close.js)") {
  asio::io_context loop;
  const unsigned short port = closedPort();
  net::Socket client = connectResolving(loop, port, {{"127.0.0.1", 4}, {"127.0.0.3", 4}});
  Log log;
  recordConnect(client, log);
  runUntilClosed(loop, log);
  const std::string p = std::to_string(port);
  CHECK(log == Log{"lookup example.org 127.0.0.1/4", "lookup example.org 127.0.0.3/4",
                   "attempt 127.0.0.1:" + p + "/4", refused("127.0.0.1", port),
                   "attempt 127.0.0.3:" + p + "/4", refused("127.0.0.3", port),
                   "error " + std::make_error_code(std::errc::connection_refused).message(),
                   "close true"});
  CHECK(client.autoSelectFamilyAttemptedAddresses().size() == 2);
  CHECK(runToCompletion(loop));
}

TEST_CASE(
    "autoSelectFamily false: only the first address is tried (test-net-autoselectfamily.js)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  net::Socket client =
      connectResolving(loop, port, {{"127.0.0.3", 4}, {"127.0.0.1", 4}},
                       [&](net::ConnectOptions& o) { o.autoSelectFamily = false; });
  Log log;
  recordConnect(client, log);
  runUntilClosed(loop, log);
  const std::string p = std::to_string(port);
  CHECK(log == Log{"lookup example.org 127.0.0.3/4", "attempt 127.0.0.3:" + p + "/4",
                   refused("127.0.0.3", port),
                   "error " + std::make_error_code(std::errc::connection_refused).message(),
                   "close true"});
  CHECK(client.autoSelectFamilyAttemptedAddresses().empty());
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "Happy Eyeballs: an address that does not answer times out after "
    "autoSelectFamilyAttemptTimeout and the next one connects (test-net-autoselectfamily.js)") {
  asio::io_context loop;
  // 127.0.0.2:port drops SYNs: a listener with a full accept queue, never accepting.
  asio::ip::tcp::acceptor blackhole(loop);
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  blackhole.open(asio::ip::tcp::v4());
  std::error_code ec;
  blackhole.bind({asio::ip::make_address("127.0.0.2"), port}, ec);
  if (ec)
    return skipTest("127.0.0.2:" + std::to_string(port) + " cannot be bound: " + ec.message());
  blackhole.listen(0);
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.push_back(std::make_unique<asio::ip::tcp::socket>(loop));
    fillers.back()->async_connect({asio::ip::make_address("127.0.0.2"), port}, [](auto) {});
  }
  runFor(loop, std::chrono::milliseconds(20));
  const auto attemptTimeout = std::chrono::milliseconds(100);
  net::Socket client = connectResolving(
      loop, port, {{"127.0.0.2", 4}, {"127.0.0.1", 4}},
      [&](net::ConnectOptions& o) { o.autoSelectFamilyAttemptTimeout = attemptTimeout; });
  Log log;
  recordConnect(client, log);
  const auto began = Clock::now();
  auto connectedAfter = Clock::duration();
  client.on("connect", [&] {
    connectedAfter = Clock::now() - began;
    client.destroy();
  });
  runUntilClosed(loop, log);
  const std::string p = std::to_string(port);
  CHECK(log == Log{"lookup example.org 127.0.0.2/4", "lookup example.org 127.0.0.1/4",
                   "attempt 127.0.0.2:" + p + "/4", "timeout 127.0.0.2:" + p + "/4",
                   "attempt 127.0.0.1:" + p + "/4", "connect", "close false"});
  CHECK(connectedAfter >= attemptTimeout);
  CHECK(client.autoSelectFamilyAttemptedAddresses() ==
        std::vector<std::string>{"127.0.0.2:" + p, "127.0.0.1:" + p});
  fillers.clear();
  blackhole.close();
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "Happy Eyeballs alternates families from the first address's (Node's "
    "lookupAndConnectMultiple)") {
  if (!hasIPv6Loopback()) return skipTest("no IPv6 loopback");
  asio::io_context loop;
  const unsigned short port = closedPort();
  net::Socket client =
      connectResolving(loop, port, {{"::1", 6}, {"127.0.0.1", 4}, {"127.0.0.3", 4}});
  std::vector<std::string> attempts;
  client.on("connectionAttempt", [&](std::string_view ip, unsigned short, int family) {
    attempts.push_back(std::string(ip) + "/" + std::to_string(family));
  });
  bool closed = false;
  client.on("close", [&](bool) { closed = true; });
  client.on("error", [](std::error_code) {});
  REQUIRE(runUntil(loop, [&] { return closed; }));
  CHECK(attempts == std::vector<std::string>{"::1/6", "127.0.0.1/4", "127.0.0.3/4"});
  const std::string p = std::to_string(port);
  CHECK(client.autoSelectFamilyAttemptedAddresses() ==
        std::vector<std::string>{"::1:" + p, "127.0.0.1:" + p, "127.0.0.3:" + p});
  CHECK(runToCompletion(loop));
}

TEST_CASE("a lookup error is 'lookup' with the error, then error and close(true)") {
  asio::io_context loop;
  net::Socket client =
      net::connect(make([&](net::ConnectOptions& o) {
                     o.port = 1;
                     o.host = "example.org";
                     o.lookup = [&loop](const std::string&, int, auto callback) {
                       asio::post(loop, [callback] {
                         callback(std::make_error_code(std::errc::host_unreachable), {});
                       });
                     };
                   }),
                   {}, loop);
  Log log;
  recordConnect(client, log);
  runUntilClosed(loop, log);
  const std::string message = std::make_error_code(std::errc::host_unreachable).message();
  CHECK(log == Log{"lookup example.org /0 " + message, "error " + message, "close true"});
  CHECK(runToCompletion(loop));
}

#if EVNET_HAS_STOP_TOKEN  // not with libc++ before 17
TEST_CASE(
    "connect({signal}): a stop request destroys the socket with ABORT_ERR, before or "
    "after it connects (test-net-connect-abort-controller.js)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  const std::string aborted = "error " + make_error_code(evnet::Errc::aborted).message();
  SUBCASE("stopped before connect") {
    std::stop_source source;
    source.request_stop();
    net::Socket client = connectStoppable(loop, port, source);
    Log log;
    recordConnect(client, log);
    runUntilClosed(loop, log);
    CHECK(log == Log{aborted, "close true"});
  }
  SUBCASE("stopped while connecting, from another thread") {
    std::stop_source source;
    net::Socket client = connectStoppable(loop, port, source);
    Log log;
    recordConnect(client, log);
    std::thread([&source] { source.request_stop(); }).join();
    runUntilClosed(loop, log);
    CHECK(log.back() == "close true");
    CHECK(log[log.size() - 2] == aborted);
    CHECK(std::find(log.begin(), log.end(), "connect") == log.end());
  }
  SUBCASE("stopped once connected") {
    std::stop_source source;
    net::Socket client = connectStoppable(loop, port, source, [&] { source.request_stop(); });
    Log log;
    recordConnect(client, log);
    runUntilClosed(loop, log);
    CHECK(log == Log{"attempt 127.0.0.1:" + std::to_string(port) + "/4", "connect", aborted,
                     "close true"});
  }
  CHECK(closeAndRunToCompletion(loop, server));
}
#endif
