// net_listen_test — server.listen(options): ipv6Only, backlog, readableAll / writableAll for
// Unix sockets, and the signal option (a std::stop_token) that closes the server. Each case
// names the Node test it is modeled on.
#include "net_test_util.hpp"

#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <stdio.h>
#include <sys/stat.h>

#include <string>
#include <system_error>

namespace net = evnet::net;
using namespace evnet_test;

namespace {

// Whether a client reaches host:port: "connect" or the error's message.
std::string tryConnect(asio::io_context& loop, const std::string& host, unsigned short port) {
  std::string outcome;
  net::Socket client = net::connect(port, host, {}, {}, loop);
  client.on("connect", [&] {
    outcome = "connect";
    client.destroy();
  });
  client.on("error", [&](std::error_code ec) { outcome = ec.message(); });
  bool closed = false;
  client.on("close", [&](bool) { closed = true; });
  REQUIRE(runUntil(loop, [&] { return closed; }));
  return outcome;
}

}  // namespace

TEST_CASE("listen({ipv6Only}) on '::' takes IPv6 clients only (test-net-listen-ipv6only.js)") {
  if (!hasIPv6Loopback()) return skipTest("no IPv6 loopback");
  asio::io_context loop;
  net::Server server = echoServer(loop);
  bool listening = false;
  net::ListenOptions options;
  options.ipv6Only = true;
  server.listen(options, [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  const unsigned short port = server.address().port;
  CHECK(server.address().address == "::");
  CHECK(tryConnect(loop, "::1", port) == "connect");
  CHECK(tryConnect(loop, "127.0.0.1", port) ==
        std::make_error_code(std::errc::connection_refused).message());
  server.close();
  // Without ipv6Only, "::" takes both, as before.
  net::Server dual = echoServer(loop);
  listening = false;
  dual.listen(net::ListenOptions{}, [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  CHECK(tryConnect(loop, "127.0.0.1", dual.address().port) == "connect");
  CHECK(closeAndRunToCompletion(loop, dual));
}

TEST_CASE("listen({backlog}) gives the kernel that backlog (ss reports it)") {
  if (std::system("ss -V >/dev/null 2>&1") != 0) return skipTest("ss is not installed");
  asio::io_context loop;
  net::Server server = echoServer(loop);
  bool listening = false;
  // Designated, as a Node user writes {host, backlog}: warning-free (-Wextra) with GCC too.
  server.listen({.host = "127.0.0.1", .backlog = 7}, [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  // For a listening socket, ss's Send-Q column is the backlog.
  const std::string command =
      "ss -Hltn 'sport = :" + std::to_string(server.address().port) + "' | awk '{print $3}'";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char line[64] = {};
  const bool read = ::fgets(line, sizeof line, pipe) != nullptr;
  ::pclose(pipe);
  REQUIRE(read);
  CHECK(std::string(line) == "7\n");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "listen({path, readableAll, writableAll}) makes the socket a+rw "
    "(test-pipe-file-to-http.js, test-net-listen-ipc.js's chmod)") {
  asio::io_context loop;
  TempDir dir;
  const mode_t old = ::umask(077);  // without the options, nobody else may read or write it
  for (const auto& [readable, writable] : {std::pair{false, false}, std::pair{true, false},
                                           std::pair{false, true}, std::pair{true, true}}) {
    net::Server server = echoServer(loop);
    const std::string path = dir.file("s" + std::to_string(readable) + std::to_string(writable));
    bool listening = false;
    net::ListenOptions options;
    options.path = path;
    options.readableAll = readable;
    options.writableAll = writable;
    server.listen(options, [&] { listening = true; });
    REQUIRE(runUntil(loop, [&] { return listening; }));
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(((st.st_mode & S_IROTH) != 0) == readable);
    CHECK(((st.st_mode & S_IRGRP) != 0) == readable);
    CHECK(((st.st_mode & S_IWOTH) != 0) == writable);
    CHECK(((st.st_mode & S_IWGRP) != 0) == writable);
    CHECK(closeAndRunToCompletion(loop, server));
  }
  ::umask(old);
}

#if EVNET_HAS_STOP_TOKEN  // not with libc++ before 17
TEST_CASE(
    "listen({signal}): a stop request closes the server, a stopped one closes it at once "
    "(test-net-server-listen-options-signal.js)") {
  asio::io_context loop;
  {
    net::Server server = echoServer(loop);
    std::stop_source source;
    bool listening = false;
    bool closed = false;
    server.on("close", [&] { closed = true; });
    net::ListenOptions options;
    options.host = "127.0.0.1";
    options.signal = source.get_token();
    server.listen(options, [&] { listening = true; });
    REQUIRE(runUntil(loop, [&] { return listening; }));
    const unsigned short port = server.address().port;
    source.request_stop();
    REQUIRE(runUntil(loop, [&] { return closed; }));
    CHECK(!server.listening());
    CHECK(tryConnect(loop, "127.0.0.1", port) ==
          std::make_error_code(std::errc::connection_refused).message());
  }
  {
    net::Server server = echoServer(loop);
    std::stop_source source;
    source.request_stop();
    bool closed = false;
    server.on("close", [&] { closed = true; });
    net::ListenOptions options;
    options.host = "127.0.0.1";
    options.signal = source.get_token();
    server.listen(options);
    REQUIRE(runUntil(loop, [&] { return closed; }));
    CHECK(!server.listening());
  }
  CHECK(runToCompletion(loop));
}
#endif

TEST_CASE(
    "close() from a client's 'connect' still accepts that connection: 'connection', its "
    "data, then 'close' (test-net-socket-reset-send.js)") {
  asio::io_context loop;
  Log log;
  net::Server server = net::createServer(
      [&](net::Socket socket) {
        log.push_back("connection");
        socket.on("data",
                  [&](evnet::Buffer chunk) { log.push_back("data " + std::string(chunk)); });
        socket.on("close", [&](bool hadError) {
          log.push_back(hadError ? "socket close true" : "socket close false");
        });
      },
      loop);
  const unsigned short port = listenLocal(loop, server);
  for (int round = 0; round < 20; ++round) {  // whichever of the two readiness events comes first
    log.clear();
    if (round != 0) {
      bool listening = false;
      server.listen(port, "127.0.0.1", [&] { listening = true; });
      REQUIRE(runUntil(loop, [&] { return listening; }));
    }
    bool serverClosed = false;
    net::Socket client = net::connect(port, "127.0.0.1", {}, {}, loop);
    client.on("connect", [&] {
      server.close([&] { serverClosed = true; });
      client.end("hi");
    });
    client.on("error", [&](std::error_code ec) { log.push_back("client error " + ec.message()); });
    bool clientClosed = false;
    client.on("close", [&](bool) { clientClosed = true; });
    client.on("data", [](evnet::Buffer) {});
    REQUIRE(runUntil(loop, [&] { return serverClosed && clientClosed; }));
    CHECK(log == Log{"connection", "data hi", "socket close false"});
  }
  CHECK(runToCompletion(loop));
}
