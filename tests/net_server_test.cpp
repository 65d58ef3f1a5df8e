// net::Server over real sockets (127.0.0.1, ::1, a temporary Unix path; port 0 only), each case
// bounded by a deadline. Cases name the Node behaviour (docs: node-semantics S1-S16) or the Node
// test file (test/parallel/test-net-server-*.js) whose intent they port.
#include "net_test_util.hpp"

#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace net = evnet::net;
using namespace evnet_test;

// Defined when UBSan's runtime is linked in (weak: null otherwise).
extern "C" __attribute__((weak)) void __ubsan_handle_dynamic_type_cache_miss(void*, void*, void*);

namespace {

bool underUBSan() { return &__ubsan_handle_dynamic_type_cache_miss != nullptr; }

// Connects to 127.0.0.1:port and runs the loop until connected.
net::Socket connectLocal(asio::io_context& loop, unsigned short port) {
  bool connected = false;
  auto socket = net::connect(
      port, "127.0.0.1", [&connected] { connected = true; }, {}, loop);
  REQUIRE(runUntil(loop, [&] { return connected; }));
  return socket;
}

}  // namespace

// --- listening (S1, S4, S6, S7, S8)
// ---------------------------------------------------------------

TEST_CASE(
    "listen(0) picks a free port, 'listening' comes asynchronously and runs listen's callback, and "
    "address() is empty before listening and after close (S1, S6, S8)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  CHECK(server.address() == net::AddressInfo{});
  CHECK(!server.listening());
  int callbacks = 0;
  int listeningEvents = 0;
  server.on("listening", [&] { ++listeningEvents; });
  server.listen(0, "127.0.0.1", [&] { ++callbacks; });
  CHECK(callbacks == 0);  // not synchronous
  CHECK(server.listening());
  const net::AddressInfo address = server.address();
  CHECK(address.address == "127.0.0.1");
  CHECK(address.family == "IPv4");
  CHECK(address.port != 0);
  REQUIRE(runUntil(loop, [&] { return callbacks == 1; }));
  CHECK(listeningEvents == 1);

  bool serverClosed = false;
  server.close([&] { serverClosed = true; });
  CHECK(server.address() == net::AddressInfo{});
  CHECK(!server.listening());
  REQUIRE(runUntil(loop, [&] { return serverClosed; }));
  CHECK(callbacks == 1);  // the listen callback was a once listener
  CHECK(runToCompletion(loop));
}

TEST_CASE("listen with no host listens on '::', dual-stack: IPv4 clients connect too (S6)") {
  if (!hasIPv6Loopback()) return skipTest("no IPv6 on this machine");
  asio::io_context loop;
  std::optional<net::Socket> accepted;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) { accepted = socket; });
  bool listening = false;
  server.listen(0, [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  CHECK(server.address().address == "::");
  CHECK(server.address().family == "IPv6");
  auto client = connectLocal(loop, server.address().port);
  REQUIRE(runUntil(loop, [&] { return accepted.has_value(); }));
  CHECK(accepted->remoteAddress() == "::ffff:127.0.0.1");
  CHECK(accepted->remotePort() == client.localPort());
  CHECK(accepted->localAddress() == "::ffff:127.0.0.1");  // the kernel's, not the listener's "::"
  CHECK(accepted->localPort() == server.address().port);
  client.destroy();
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("listen on a host name resolves it") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server, "localhost");
  const std::string address = server.address().address;
  CHECK((address == "127.0.0.1" || address == "::1"));
  auto client = net::connect(port, "localhost", {}, {}, loop);
  CHECK(endAndReadReply(loop, client, "via localhost") == "via localhost");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "listen while listening throws std::logic_error, and listening again after close works (S7)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  listenLocal(loop, server);
  CHECK_THROWS_AS(server.listen(0, "127.0.0.1"), std::logic_error);
  CHECK(server.listening());

  bool serverClosed = false;
  server.close([&] { serverClosed = true; });
  REQUIRE(runUntil(loop, [&] { return serverClosed; }));
  const unsigned short port = listenLocal(loop, server);
  auto client = net::connect(port, "127.0.0.1", {}, {}, loop);
  CHECK(endAndReadReply(loop, client, "again") == "again");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "EADDRINUSE arrives as 'error' with no 'close', and listening again after the error works (S4, "
    "S7, test-net-eaddrinuse.js)") {
  asio::io_context loop;
  net::Server first = echoServer(loop);
  const unsigned short port = listenLocal(loop, first);

  net::Server second = echoServer(loop);
  std::vector<std::error_code> errors;
  int secondCloses = 0;
  second.on("error", [&](std::error_code ec) { errors.push_back(ec); });
  second.on("close", [&] { ++secondCloses; });
  second.listen(port, "127.0.0.1");
  REQUIRE(runUntil(loop, [&] { return errors.size() == 1; }));
  CHECK(errors[0] == std::errc::address_in_use);
  CHECK(!second.listening());
  CHECK(second.address() == net::AddressInfo{});

  CHECK(closeAndRunToCompletion(
      loop, first));  // everything settles: still no "close" for the failed server
  CHECK(secondCloses == 0);
  CHECK(errors.size() == 1);

  // The port is free again: the same server listens on it.
  bool listening = false;
  second.listen(port, "127.0.0.1", [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  CHECK(second.address().port == port);
  auto client = connectLocal(loop, port);
  client.destroy();
  CHECK(closeAndRunToCompletion(loop, second));
  CHECK(secondCloses == 1);
}

TEST_CASE("a listen error with no 'error' listener throws std::system_error out of run()") {
  asio::io_context loop;
  net::Server first = echoServer(loop);
  const unsigned short port = listenLocal(loop, first);
  net::Server second = echoServer(loop);
  second.listen(port, "127.0.0.1");
  std::error_code thrown;
  try {
    runUntil(
        loop, [] { return false; }, 5s);
  } catch (const std::system_error& e) {
    thrown = e.code();
  }
  CHECK(thrown == std::errc::address_in_use);
  CHECK(closeAndRunToCompletion(loop, first));
}

TEST_CASE(
    "listening on an address this machine does not have gives 'error' "
    "EADDRNOTAVAIL") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  std::error_code error;
  server.on("error", [&](std::error_code ec) { error = ec; });
  server.listen(0, "192.0.2.1");  // TEST-NET-1, never assigned to a host
  REQUIRE(runUntil(loop, [&] { return static_cast<bool>(error); }));
  CHECK(error == std::errc::address_not_available);
  CHECK(!server.listening());
  CHECK(runToCompletion(loop));
}

// --- closing (S3, S9)
// -----------------------------------------------------------------------------

TEST_CASE(
    "close(cb) stops accepting at once, and 'close' and cb come only after the last connection "
    "closed (S3, S9, test-net-server-close.js)") {
  asio::io_context loop;
  std::vector<net::Socket> accepted;
  std::string receivedAfterClose;
  Log events;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    socket.on("close", [&](bool) { events.push_back("client"); });
    socket.on("data", [&](evnet::Buffer chunk) { receivedAfterClose.append(chunk); });
    accepted.push_back(socket);
  });
  server.on("close", [&] { events.push_back("server"); });
  const unsigned short port = listenLocal(loop, server);
  auto c1 = connectLocal(loop, port);
  auto c2 = connectLocal(loop, port);
  REQUIRE(runUntil(loop, [&] { return accepted.size() == 2; }));

  std::optional<std::error_code> closeResult;
  server.close([&](std::error_code ec) {
    closeResult = ec;
    events.push_back("cb");
  });
  CHECK(!server.listening());
  CHECK(server.address() == net::AddressInfo{});

  // Not accepting: a new connection is refused.
  std::error_code refused;
  bool refusedClosed = false;
  auto c3 = net::connect(port, "127.0.0.1", {}, {}, loop);
  c3.on("error", [&](std::error_code ec) { refused = ec; });
  c3.on("close", [&](bool) { refusedClosed = true; });
  REQUIRE(runUntil(loop, [&] { return refusedClosed; }));
  CHECK(refused == std::errc::connection_refused);

  // The existing connections are untouched.
  c1.write("still open");
  REQUIRE(runUntil(loop, [&] { return receivedAfterClose == "still open"; }));
  CHECK(events.empty());
  CHECK(server.getConnections() == 2);

  accepted[0].destroy();
  REQUIRE(runUntil(loop, [&] { return events.size() == 1; }));
  runFor(loop, 20ms);
  CHECK(events == Log{"client"});  // one connection left: no "close" yet
  CHECK(!closeResult.has_value());

  accepted[1].destroy();
  REQUIRE(runUntil(loop, [&] { return events.size() == 4; }));
  CHECK(events == Log{"client", "client", "server", "cb"});
  REQUIRE(closeResult.has_value());
  CHECK(!*closeResult);
  CHECK(server.getConnections() == 0);
  CHECK(runToCompletion(loop));
}

TEST_CASE("close on a server that is not listening calls back with Errc::serverNotRunning (S9)") {
  asio::io_context loop;
  net::Server server = echoServer(loop);
  std::optional<std::error_code> result;
  server.close([&](std::error_code ec) { result = ec; });
  REQUIRE(runUntil(loop, [&] { return result.has_value(); }));
  CHECK(*result == evnet::Errc::serverNotRunning);

  // Also after it was closed once already.
  listenLocal(loop, server);
  std::optional<std::error_code> first;
  std::optional<std::error_code> second;
  server.close([&](std::error_code ec) { first = ec; });
  REQUIRE(runUntil(loop, [&] { return first.has_value(); }));
  CHECK(!*first);
  server.close([&](std::error_code ec) { second = ec; });
  REQUIRE(runUntil(loop, [&] { return second.has_value(); }));
  CHECK(*second == evnet::Errc::serverNotRunning);
  CHECK(runToCompletion(loop));
}

TEST_CASE("closeAllConnections destroys every open connection, so close(cb) completes") {
  asio::io_context loop;
  int serverSideCloses = 0;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    socket.on("close", [&](bool hadError) {
      CHECK(!hadError);
      ++serverSideCloses;
    });
  });
  const unsigned short port = listenLocal(loop, server);
  int clientCloses = 0;
  std::vector<net::Socket> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(connectLocal(loop, port));
    clients.back().on("data", [](evnet::Buffer) {});
    clients.back().on("close", [&](bool hadError) {
      CHECK(!hadError);
      ++clientCloses;
    });
  }
  REQUIRE(runUntil(loop, [&] { return server.getConnections() == 3; }));
  bool closed = false;
  server.close([&] { closed = true; }).closeAllConnections();
  REQUIRE(runUntil(loop, [&] { return closed && clientCloses == 3; }));
  CHECK(serverSideCloses == 3);
  CHECK(server.getConnections() == 0);
  CHECK(runToCompletion(loop));
}

// --- connections (S11, S13-S16)
// -------------------------------------------------------------------

TEST_CASE("getConnections counts the open connections") {
  asio::io_context loop;
  int serverSideCloses = 0;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    socket.on("data", [](evnet::Buffer) {});
    socket.on("close", [&](bool) { ++serverSideCloses; });
  });
  CHECK(server.getConnections() == 0);
  const unsigned short port = listenLocal(loop, server);
  std::vector<net::Socket> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(connectLocal(loop, port));
  REQUIRE(runUntil(loop, [&] { return server.getConnections() == 3; }));
  clients[0].end();
  REQUIRE(runUntil(loop, [&] { return serverSideCloses == 1; }));
  CHECK(server.getConnections() == 2);
  clients[1].destroy();
  REQUIRE(runUntil(loop, [&] { return serverSideCloses == 2; }));
  CHECK(server.getConnections() == 1);
  bool closed = false;
  server.close([&] { closed = true; }).closeAllConnections();
  REQUIRE(runUntil(loop, [&] { return closed; }));
  CHECK(server.getConnections() == 0);
  CHECK(runToCompletion(loop));
}

TEST_CASE(
    "maxConnections: excess connections are closed at once and 'drop' reports them "
    "(S5, S11, test-net-server-max-connections.js)") {
  asio::io_context loop;
  constexpr int kClients = 20;
  constexpr int kMax = kClients / 2;
  net::Server server({}, loop);
  server.setMaxConnections(kMax);
  CHECK(server.maxConnections() == kMax);
  int connections = 0;
  std::vector<net::Socket> waits;
  server.on("connection", [&](net::Socket socket) {
    ++connections;
    socket.write("hello");
    waits.push_back(socket);
  });
  std::vector<net::DropInfo> drops;
  server.on("drop", [&](const net::DropInfo& drop) { drops.push_back(drop); });
  bool serverClosed = false;
  server.on("close", [&] { serverClosed = true; });
  const unsigned short port = listenLocal(loop, server);

  struct Client {
    net::Socket socket;
    bool gotData = false;
    std::error_code error;
  };
  std::vector<std::unique_ptr<Client>> clients;
  int closes = 0;
  std::function<void(int)> makeConnection = [&](int index) {
    clients.push_back(std::make_unique<Client>());
    Client* client = clients.back().get();
    client->socket = net::connect(port, "127.0.0.1", {}, {}, loop);
    client->socket.on("connect", [&, index] {
      if (index + 1 < kClients) makeConnection(index + 1);
    });
    client->socket.on("data", [client](evnet::Buffer chunk) {
      CHECK(chunk.size() > 0);
      client->gotData = true;
    });
    client->socket.on("error", [client](std::error_code ec) { client->error = ec; });
    client->socket.on("close", [&, client, index](bool) {
      ++closes;
      if (closes < kMax) CHECK_MESSAGE(index >= kMax, index, " closed among the first");
      if (closes == kMax) {
        for (net::Socket& socket : waits) socket.end();
        waits.clear();
        server.close();
      }
      if (index < kMax)
        CHECK_MESSAGE(client->gotData, index, " got no data but should have");
      else
        CHECK_MESSAGE(!client->gotData, index, " got data but should not have");
    });
  };
  makeConnection(0);
  REQUIRE(runUntil(loop, [&] { return closes == kClients && serverClosed; }));
  CHECK(connections == kMax);
  REQUIRE(drops.size() == kMax);
  for (int i = 0; i < kMax; ++i) {
    const net::DropInfo& drop = drops[static_cast<std::size_t>(i)];
    CHECK(drop.local == net::AddressInfo{"127.0.0.1", "IPv4", port});
    CHECK(drop.remote.address == "127.0.0.1");
    CHECK(drop.remote.family == "IPv4");
    CHECK(drop.remote.port == clients[static_cast<std::size_t>(kMax + i)]->socket.localPort());
  }
  for (const auto& client : clients) CHECK_MESSAGE(!client->error, client->error.message());
  CHECK(runToCompletion(loop));
}

TEST_CASE(
    "pauseOnConnect: accepted sockets start paused, bytesRead stays 0 until resume() "
    "(S15)") {
  asio::io_context loop;
  net::ServerOptions options;
  options.pauseOnConnect = true;
  std::optional<net::Socket> accepted;
  std::string received;
  net::Server server(options, loop);
  server.on("connection", [&](net::Socket socket) {
    CHECK(socket.isPaused());
    accepted = socket;
    socket.on("data", [&](evnet::Buffer chunk) { received.append(chunk); });
  });
  const unsigned short port = listenLocal(loop, server);
  bool written = false;
  auto client = net::connect(port, "127.0.0.1", {}, {}, loop);
  client.on("connect", [&] { client.write("hello", [&](std::error_code ec) { written = !ec; }); });
  REQUIRE(runUntil(loop, [&] { return written && accepted.has_value(); }));
  runFor(loop, 50ms);
  CHECK(accepted->bytesRead() == 0);
  CHECK(received.empty());
  accepted->resume();
  REQUIRE(runUntil(loop, [&] { return received == "hello"; }));
  CHECK(accepted->bytesRead() == 5);
  client.destroy();
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("the server's highWaterMark applies to its accepted sockets (S16)") {
  asio::io_context loop;
  net::ServerOptions options;
  options.highWaterMark = 8;
  std::vector<bool> writeResults;
  int drains = 0;
  net::Server server(options, loop);
  server.on("connection", [&](net::Socket socket) {
    socket.on("drain", [&] { ++drains; });
    socket.on("data", [&, socket](evnet::Buffer chunk) mutable {
      writeResults.push_back(socket.write(chunk));  // 11 bytes >= 8: "wait for drain"
    });
  });
  const unsigned short port = listenLocal(loop, server);
  std::string reply;
  auto client = net::connect(port, "127.0.0.1", {}, {}, loop);
  client.on("connect", [&] { client.write("hello world"); });
  client.on("data", [&](evnet::Buffer chunk) { reply.append(chunk); });
  REQUIRE(runUntil(loop, [&] { return reply == "hello world" && drains == 1; }));
  CHECK(writeResults == std::vector<bool>{false});
  client.destroy();
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "out of file descriptors (EMFILE) the server backs off without spinning, and accepts "
    "once descriptors are free again") {
  if (underUBSan()) {
    // UBSan's vptr check opens a pipe to probe memory, and reports false errors when no
    // descriptor is left; this case runs in the builds without UBSan.
    return skipTest("UBSan cannot run with every file descriptor taken");
  }
  asio::io_context loop;        // the server's
  asio::io_context clientLoop;  // the client's: it connects while the server's loop stands still
  net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
  bool connected = false;
  auto client = net::connect(
      port, "127.0.0.1", [&] { connected = true; }, {}, clientLoop);
  REQUIRE(runUntil(clientLoop, [&] { return connected; }));  // in the backlog, not accepted yet

  // Lower the descriptor limit (restored on every path out) and take every free descriptor.
  rlimit original{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
  struct Descriptors {
    rlimit original;
    std::vector<int> spare;
    void release() {
      for (int fd : spare) ::close(fd);
      spare.clear();
    }
    ~Descriptors() {
      release();
      ::setrlimit(RLIMIT_NOFILE, &original);
    }
  } descriptors{original, {}};
  rlimit lowered = original;
  lowered.rlim_cur = std::min<rlim_t>(original.rlim_cur, 512);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &lowered) == 0);
  for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;)
    descriptors.spare.push_back(fd);
  REQUIRE(errno == EMFILE);

  // The server cannot accept: it must wait, not spin.
  rusage before{};
  rusage after{};
  ::getrusage(RUSAGE_SELF, &before);
  runFor(loop, 300ms);
  ::getrusage(RUSAGE_SELF, &after);
  const auto cpuMs = [](const rusage& r) {
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000.0 +
           static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1000.0;
  };
  CHECK(cpuMs(after) - cpuMs(before) < 100.0);
  CHECK(server.getConnections() == 0);
  CHECK(server.listening());

  descriptors.release();
  REQUIRE(runUntil(loop, [&] { return server.getConnections() == 1; }));
  client.destroy();
  CHECK(runToCompletion(clientLoop));
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "an exception thrown by a 'connection' listener leaves run(), closes that connection, and the "
    "server keeps accepting") {
  asio::io_context loop;
  int connections = 0;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    if (++connections == 1) throw std::runtime_error("connection listener failed");
    echoBack(socket);
  });
  const unsigned short port = listenLocal(loop, server);
  bool firstClosed = false;
  auto first = net::connect(port, "127.0.0.1", {}, {}, loop);
  first.on("data", [](evnet::Buffer) {});
  first.on("close", [&](bool) { firstClosed = true; });
  CHECK_THROWS_WITH_AS(runUntil(loop, [&] { return firstClosed; }), "connection listener failed",
                       std::runtime_error);
  REQUIRE(runUntil(loop, [&] { return firstClosed; }));

  auto second = net::connect(port, "127.0.0.1", {}, {}, loop);
  CHECK(endAndReadReply(loop, second, "still accepting") == "still accepting");
  CHECK(connections == 2);
  CHECK(closeAndRunToCompletion(loop, server));
}

// --- transports -------------------------------------------------------------------------------

TEST_CASE(
    "a Unix domain socket server: address() is the path, clients connect by path, close() "
    "unlinks it (S6)") {
  asio::io_context loop;
  TempDir dir;
  const std::string path = dir.file("server.sock");
  net::Server server = echoServer(loop);
  bool listening = false;
  server.listenPath(path, [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  CHECK(server.address().address == path);
  CHECK(server.address().family == "Unix");
  CHECK(std::filesystem::is_socket(path));

  auto client = net::connectPath(path, {}, {}, loop);
  client.on("close", [](bool hadError) { CHECK(!hadError); });
  CHECK(endAndReadReply(loop, client, "over a unix socket") == "over a unix socket");
  CHECK(client.remoteFamily() == "Unix");
  CHECK(client.remoteAddress() == path);

  bool serverClosed = false;
  server.close([&] { serverClosed = true; });
  CHECK(!std::filesystem::exists(path));
  REQUIRE(runUntil(loop, [&] { return serverClosed; }));
  CHECK(runToCompletion(loop));
}

TEST_CASE(
    "destroying the loop of a Unix domain socket server that was not closed unlinks its path") {
  TempDir dir;
  const std::string path = dir.file("server.sock");
  {
    asio::io_context loop;
    net::Server server = echoServer(loop);
    bool listening = false;
    server.listenPath(path, [&] { listening = true; });
    REQUIRE(runUntil(loop, [&] { return listening; }));
    CHECK(std::filesystem::is_socket(path));
  }
  CHECK(!std::filesystem::exists(path));
}

TEST_CASE("connecting to a Unix path nobody listens on gives 'error' then close(true)") {
  asio::io_context loop;
  TempDir dir;
  std::error_code error;
  bool hadError = false;
  bool clientClosed = false;
  auto client = net::connectPath(dir.file("nobody.sock"), {}, {}, loop);
  client.on("error", [&](std::error_code ec) { error = ec; });
  client.on("close", [&](bool e) {
    hadError = e;
    clientClosed = true;
  });
  REQUIRE(runUntil(loop, [&] { return clientClosed; }));
  CHECK(error == std::errc::no_such_file_or_directory);
  CHECK(hadError);
  CHECK(runToCompletion(loop));
}

TEST_CASE("an IPv6 server on ::1 reports IPv6 addresses on both ends") {
  if (!hasIPv6Loopback()) return skipTest("::1 cannot be bound on this machine");
  asio::io_context loop;
  std::optional<net::Socket> accepted;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    accepted = socket;
    echoBack(socket);
  });
  const unsigned short port = listenLocal(loop, server, "::1");
  CHECK(server.address() == net::AddressInfo{"::1", "IPv6", port});
  auto client = net::connect(port, "::1", {}, {}, loop);
  CHECK(endAndReadReply(loop, client, "six") == "six");
  CHECK(client.remoteAddress() == "::1");
  CHECK(client.remoteFamily() == "IPv6");
  CHECK(client.localAddress() == "::1");
  REQUIRE(accepted.has_value());
  CHECK(accepted->remoteAddress() == "::1");
  CHECK(accepted->remoteFamily() == "IPv6");
  CHECK(accepted->remotePort() == client.localPort());
  CHECK(accepted->address() == net::AddressInfo{"::1", "IPv6", port});
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("a connection accepted on 0.0.0.0 has the address it was made to as its local one") {
  asio::io_context loop;
  std::optional<net::Socket> accepted;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) { accepted = socket; });
  const unsigned short port = listenLocal(loop, server, "0.0.0.0");
  CHECK(server.address() == net::AddressInfo{"0.0.0.0", "IPv4", port});
  auto client = connectLocal(loop, port);
  REQUIRE(runUntil(loop, [&] { return accepted.has_value(); }));
  CHECK(accepted->address() == net::AddressInfo{"127.0.0.1", "IPv4", port});
  CHECK(accepted->remotePort() == client.localPort());
  client.destroy();
  CHECK(closeAndRunToCompletion(loop, server));
}

// --- interop ------------------------------------------------------------------------------------

TEST_CASE(
    "interop: Node.js's net client sends 1 MiB to an evnet echo server and gets every byte "
    "back") {
  const std::string node = nodeExecutable();
  if (node.empty()) return skipTest("node is not installed");
  asio::io_context loop;
  constexpr std::size_t kSize = 1 << 20;
  PatternStream received;
  bool serverSideClosed = false;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    socket.on("data", [&, socket](evnet::Buffer chunk) mutable {
      received.add(chunk);
      socket.write(chunk);
    });
    expectCleanClose(socket, serverSideClosed);
  });
  const unsigned short port = listenLocal(loop, server);
  ChildProcess child(
      loop, node,
      {"-e",
       "const net = require('net');"
       "const port = Number(process.argv[1]);"
       "const N = 1 << 20;"
       "const out = Buffer.alloc(N);"
       "for (let i = 0; i < N; i++) out[i] = (i * 31 + (i >> 8)) & 255;"
       "const chunks = [];"
       "const s = net.connect(port, '127.0.0.1', () => s.end(out));"
       "s.on('data', (d) => chunks.push(d));"
       "s.on('end', () => {"
       "  const all = Buffer.concat(chunks);"
       "  console.log(all.equals(out) ? 'OK ' + all.length : 'MISMATCH ' + all.length);"
       "});"
       "s.on('error', (e) => { console.log('ERROR ' + e.code); process.exitCode = 1; });",
       std::to_string(port)});
  REQUIRE(runUntil(loop, [&] { return child.outputEnded() && serverSideClosed; }));
  CHECK(child.firstLine() == "OK 1048576");
  CHECK(received.size() == kSize);
  CHECK(received.intact());
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "'drop' reports the dropped connection's own local address, not the listener's "
    "(test-net-server-drop-connections.js)") {
  if (!hasIPv6Loopback()) return skipTest("no IPv6 loopback");
  asio::io_context loop;
  net::Server server({}, loop);
  server.setMaxConnections(1);
  std::vector<net::Socket> kept;
  server.on("connection", [&](net::Socket socket) { kept.push_back(socket); });
  std::vector<net::DropInfo> drops;
  server.on("drop", [&](const net::DropInfo& drop) { drops.push_back(drop); });
  const unsigned short port = listenLocal(loop, server, "::");
  net::Socket first = net::connect(port, "127.0.0.1", {}, {}, loop);
  REQUIRE(runUntil(loop, [&] { return kept.size() == 1; }));
  bool secondConnected = false;
  net::Socket second = net::connect(
      port, "127.0.0.1", [&] { secondConnected = true; }, {}, loop);
  // Which comes first, the server's accept or the client's "connect", is the transport's choice.
  REQUIRE(runUntil(loop, [&] { return drops.size() == 1 && secondConnected; }));
  CHECK(drops[0].local == net::AddressInfo{"::ffff:127.0.0.1", "IPv6", port});
  CHECK(drops[0].remote.address == "::ffff:127.0.0.1");
  CHECK(drops[0].remote.port == second.localPort());
  first.destroy();
  second.destroy();
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("createServer(options, loop) without a listener takes the loop as its loop") {
  asio::io_context loop;
  net::Server server = net::createServer(net::ServerOptions{}, loop);
  int connections = 0;
  server.on("connection", [&](net::Socket socket) {
    ++connections;
    socket.destroy();
  });
  const unsigned short port = listenLocal(loop, server);  // runs `loop`: the server is on it
  net::Socket client = net::connect(port, "127.0.0.1", {}, {}, loop);
  REQUIRE(runUntil(loop, [&] { return connections == 1; }));
  client.destroy();
  CHECK(closeAndRunToCompletion(loop, server));
}
