// net::BlockList, ported from Node's test-blocklist.js (the parts Node 20 has; every expected
// value was printed by Node 20), and the server's blockList option over real sockets
// (127.0.0.1, ::1, a temporary Unix path; port 0 only).
#include <evnet/net/block_list.hpp>

#include "net_test_util.hpp"

#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace net = evnet::net;
using namespace evnet_test;

namespace {
using Rules = std::vector<std::string>;

net::SocketAddress address(std::string text, std::string family = "ipv4") {
  return net::SocketAddress({.address = std::move(text), .family = std::move(family)});
}
}  // namespace

// --- test-blocklist.js ------------------------------------------------------------------------

TEST_CASE("addAddress blocks one address, and IPv4 and its IPv4-mapped form block each other") {
  net::BlockList list;
  list.addAddress("1.1.1.1");
  list.addAddress("8592:757c:efae:4e45:fb5d:d62a:0d00:8e17", "ipv6");
  list.addAddress("::ffff:1.1.1.2", "ipv6");
  CHECK(list.check("1.1.1.1"));
  CHECK(!list.check("1.1.1.1", "ipv6"));
  CHECK(!list.check("8592:757c:efae:4e45:fb5d:d62a:0d00:8e17"));
  CHECK(list.check("8592:757c:efae:4e45:fb5d:d62a:0d00:8e17", "ipv6"));
  CHECK(list.check("::ffff:1.1.1.1", "ipv6"));
  CHECK(list.check("::ffff:1.1.1.1", "IPV6"));
  CHECK(list.check("1.1.1.2"));
  CHECK(!list.check("::1.1.1.2", "ipv6"));  // IPv4-compatible is not IPv4-mapped
  CHECK(!list.check("1.2.3.4"));
  CHECK(!list.check("::1", "ipv6"));
  // SocketAddress arguments; the port does not matter.
  CHECK(list.check(net::SocketAddress({.address = "1.1.1.1", .port = 443})));
  CHECK(list.check(address("8592:757c:efae:4e45:fb5d:d62a:d00:8e17", "ipv6")));
}

TEST_CASE("rules lists every rule newest first as Node 20 prints it, duplicates included") {
  net::BlockList list;
  list.addAddress("1.1.1.1");
  list.addRange("10.0.0.1", "10.0.0.10");
  list.addSubnet("8592:757c:efae:4e45::", 64, "IpV6");  // the family in any case
  CHECK(list.rules() == Rules{"Subnet: IPv6 8592:757c:efae:4e45::/64",
                              "Range: IPv4 10.0.0.1-10.0.0.10", "Address: IPv4 1.1.1.1"});
  CHECK(list.check("1.1.1.1"));
  CHECK(list.check("10.0.0.5"));
  CHECK(list.check("::ffff:10.0.0.5", "ipv6"));
  CHECK(list.check("8592:757c:efae:4e45::f", "ipv6"));
  CHECK(!list.check("123.123.123.123"));
  CHECK(!list.check("8592:757c:efaf:4e45:fb5d:d62a:0d00:8e17", "ipv6"));
  CHECK(!list.check("::ffff:123.123.123.123", "ipv6"));

  net::BlockList twice;
  twice.addAddress("1.1.1.1");
  twice.addAddress("1.1.1.1");
  CHECK(twice.rules() == Rules{"Address: IPv4 1.1.1.1", "Address: IPv4 1.1.1.1"});

  net::BlockList normalized;  // addresses as SocketAddress prints them; zones and ports dropped
  normalized.addSubnet("1.1.1.7", 24);
  normalized.addRange("::ffff:1.2.3.4", "::ffff:1.2.3.9", "ipv6");
  normalized.addAddress("0:0::1", "ipv6");
  normalized.addAddress("fe80::1%lo", "ipv6");
  normalized.addAddress(net::SocketAddress({.address = "1.2.3.4", .port = 80}));
  CHECK(normalized.rules() ==
        Rules{"Address: IPv4 1.2.3.4", "Address: IPv6 fe80::1", "Address: IPv6 ::1",
              "Range: IPv6 ::ffff:1.2.3.4-::ffff:1.2.3.9", "Subnet: IPv4 1.1.1.7/24"});
  CHECK(net::BlockList().rules().empty());
}

TEST_CASE("addRange blocks both ends and what lies between, for IPv4 and IPv6") {
  net::BlockList list;
  list.addRange("1.1.1.1", "1.1.1.10");
  list.addRange(address("::1", "ipv6"), address("::f", "ipv6"));
  CHECK(!list.check("1.1.1.0"));
  for (int n = 1; n <= 10; ++n) CHECK(list.check("1.1.1." + std::to_string(n)));
  CHECK(!list.check("1.1.1.11"));
  CHECK(!list.check("::0", "ipv6"));
  for (const char* a : {"::1", "::2", "::9", "::a", "::f"}) CHECK(list.check(a, "ipv6"));
  CHECK(!list.check("::10", "ipv6"));

  net::BlockList equal;
  equal.addRange("1.2.3.4", "1.2.3.4");
  CHECK(equal.check("1.2.3.4"));
}

TEST_CASE("an IPv4 range holds the IPv4-mapped addresses, not other IPv6 ones (nodejs#39074)") {
  net::BlockList list;
  list.addRange("10.0.0.2", "10.0.0.10");
  CHECK(list.check("10.0.0.2"));
  CHECK(list.check("10.0.0.10"));
  CHECK(!list.check("192.168.0.3"));
  CHECK(!list.check("2.2.2.2"));
  CHECK(!list.check("255.255.255.255"));
  CHECK(list.check("::ffff:0a00:0002", "ipv6"));
  CHECK(list.check("::ffff:0a00:000a", "ipv6"));
  CHECK(!list.check("::ffff:c0a8:0003", "ipv6"));
  CHECK(!list.check("::ffff:0202:0202", "ipv6"));
  CHECK(!list.check("::ffff:ffff:ffff", "ipv6"));

  net::BlockList all6;  // IPv4 addresses are not comparable with :: (not IPv4-mapped)
  all6.addRange("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ipv6");
  CHECK(!all6.check("1.2.3.4"));
  CHECK(all6.check("::1", "ipv6"));

  net::BlockList mixed;  // an IPv4 start with an IPv4-mapped end, as Node allows
  mixed.addRange(address("1.2.3.4"), address("::ffff:1.2.3.9", "ipv6"));
  CHECK(mixed.rules() == Rules{"Range: IPv4 1.2.3.4-::ffff:1.2.3.9"});
  CHECK(mixed.check("1.2.3.5"));
  CHECK(mixed.check("::ffff:1.2.3.5", "ipv6"));
  CHECK(!mixed.check("1.2.3.10"));

  net::BlockList incomparable;  // accepted, and matches nothing
  incomparable.addRange(address("1.2.3.4"), address("::9", "ipv6"));
  CHECK(incomparable.rules() == Rules{"Range: IPv4 1.2.3.4-::9"});
  CHECK(!incomparable.check("1.2.3.5"));
  CHECK(!incomparable.check("::5", "ipv6"));
}

TEST_CASE("addRange refuses a start after its end") {
  net::BlockList list;
  CHECK_THROWS_AS(list.addRange("1.1.1.2", "1.1.1.1"), std::invalid_argument);
  CHECK_THROWS_AS(list.addRange("::5", "::4", "ipv6"), std::invalid_argument);
  CHECK_THROWS_AS(list.addRange(address("1.2.3.9"), address("::ffff:1.2.3.4", "ipv6")),
                  std::invalid_argument);
  CHECK(list.rules().empty());
}

TEST_CASE("addSubnet blocks a network, IPv4-mapped addresses included") {
  net::BlockList list;
  list.addSubnet("1.1.1.0", 16);
  list.addSubnet(address("8592:757c:efae:4e45::", "ipv6"), 64);
  CHECK(list.check("1.1.0.1"));
  CHECK(list.check(address("1.1.1.1")));
  CHECK(!list.check("1.2.0.1"));
  CHECK(list.check("::ffff:1.1.0.1", "ipv6"));
  CHECK(list.check("8592:757c:efae:4e45:f::", "ipv6"));
  CHECK(list.check("8592:757c:efae:4e45::f", "ipv6"));
  CHECK(!list.check("8592:757c:efae:4f45::f", "ipv6"));

  net::BlockList unaligned;  // prefixes that are not a multiple of 8
  unaligned.addSubnet("10.0.0.0", 27);
  unaligned.addSubnet("8592:757c:efaf::", 51, "ipv6");
  for (int n = 0; n <= 31; ++n) CHECK(unaligned.check("10.0.0." + std::to_string(n)));
  CHECK(!unaligned.check("10.0.0.32"));
  CHECK(unaligned.check("8592:757c:efaf:0:0:0:0:0", "ipv6"));
  CHECK(unaligned.check("8592:757c:efaf:1fff:ffff:ffff:ffff:ffff", "ipv6"));
  CHECK(!unaligned.check("8592:757c:efaf:2fff:ffff:ffff:ffff:ffff", "ipv6"));
}

TEST_CASE("addSubnet across families and at the edges of the prefix, as Node 20") {
  // An IPv4 address is checked against an IPv6 network as its IPv4-mapped form; an IPv6 address
  // against an IPv4 network only if it is IPv4-mapped.
  struct Case {
    const char* network;
    int prefix;
    const char* networkFamily;
    const char* address;
    const char* family;
    bool blocked;
  };
  constexpr Case kCases[] = {
      {"1.2.3.4", 0, "ipv4", "9.9.9.9", "ipv4", true},
      {"1.2.3.4", 0, "ipv4", "::ffff:9.9.9.9", "ipv6", true},
      {"1.2.3.4", 0, "ipv4", "::1", "ipv6", false},
      {"::", 0, "ipv6", "9.9.9.9", "ipv4", true},
      {"::", 0, "ipv6", "::1", "ipv6", true},
      {"::ffff:10.0.0.0", 104, "ipv6", "10.1.2.3", "ipv4", true},
      {"::ffff:10.0.0.0", 104, "ipv6", "11.1.2.3", "ipv4", false},
      {"::ffff:10.0.0.0", 80, "ipv6", "11.1.2.3", "ipv4", true},
      {"::ffff:10.0.0.0", 80, "ipv6", "::1", "ipv6", true},
      {"::", 8, "ipv6", "10.1.2.3", "ipv4", true},
      {"1.2.3.4", 32, "ipv4", "1.2.3.4", "ipv4", true},
      {"1.2.3.4", 32, "ipv4", "1.2.3.5", "ipv4", false},
      {"1.2.3.4", 32, "ipv4", "::ffff:1.2.3.4", "ipv6", true},
      {"::1", 128, "ipv6", "::1", "ipv6", true},
      {"::1", 128, "ipv6", "::2", "ipv6", false},
      {"128.0.0.0", 1, "ipv4", "200.2.3.4", "ipv4", true},
      {"128.0.0.0", 1, "ipv4", "1.2.3.5", "ipv4", false},
      {"128.0.0.0", 1, "ipv4", "::ffff:200.2.3.4", "ipv6", true},
      {"10.1.2.3", 8, "ipv4", "10.9.9.9", "ipv4", true},  // the network need not be masked
  };
  for (const Case& c : kCases) {
    CAPTURE(c.network);
    CAPTURE(c.prefix);
    CAPTURE(c.address);
    net::BlockList list;
    list.addSubnet(c.network, c.prefix, c.networkFamily);
    CHECK(list.check(c.address, c.family) == c.blocked);
  }
  net::BlockList notMasked;
  notMasked.addSubnet("10.1.2.3", 8);
  CHECK(notMasked.rules() == Rules{"Subnet: IPv4 10.1.2.3/8"});
}

TEST_CASE("bad arguments throw as Node's do, and check answers false for what is not an address") {
  net::BlockList list;
  CHECK_THROWS_AS(list.addAddress("1.1.1.1", "foo"), std::invalid_argument);
  CHECK_THROWS_AS(list.addAddress("1.2.3"), std::invalid_argument);
  CHECK_THROWS_AS(list.addAddress("::1"), std::invalid_argument);  // not ipv4
  CHECK_THROWS_AS(list.addRange("1.1.1.1", "1.1.1.2", "foo"), std::invalid_argument);
  CHECK_THROWS_AS(list.addSubnet("", 1, ""), std::invalid_argument);
  CHECK_THROWS_AS(list.addSubnet("1.1.1.1", -1, "ipv4"), std::out_of_range);
  CHECK_THROWS_AS(list.addSubnet("1.1.1.1", 33, "ipv4"), std::out_of_range);
  CHECK_THROWS_AS(list.addSubnet("::", -1, "ipv6"), std::out_of_range);
  CHECK_THROWS_AS(list.addSubnet("::", 129, "ipv6"), std::out_of_range);
  CHECK(list.rules().empty());

  list.addAddress("1.1.1.2");
  CHECK(!list.check("bogus"));
  CHECK(!list.check(""));
  CHECK(!list.check("1.1.1.2", "foo"));
  CHECK(list.check("1.1.1.2", "IPV4"));
}

// --- the server's blockList option ------------------------------------------------------------

namespace {

// Connects a client to 127.0.0.1:port (or ::1) and runs the loop until it closed; returns
// whether it was connected first and closed without an error.
struct ClientResult {
  bool connected = false;
  bool closed = false;
  bool hadError = false;
};
ClientResult connectAndWaitClose(asio::io_context& loop, unsigned short port,
                                 const std::string& host, net::Socket* keep = nullptr) {
  auto result = std::make_shared<ClientResult>();
  net::Socket client = net::connect(
      port, host, [result] { result->connected = true; }, {}, loop);
  client.on("close", [result](bool hadError) {
    result->closed = true;
    result->hadError = hadError;
  });
  if (keep != nullptr) {
    *keep = client;
    REQUIRE(runUntil(loop, [&] { return result->connected; }));
  } else {
    REQUIRE(runUntil(loop, [&] { return result->closed; }));
  }
  return *result;
}

}  // namespace

TEST_CASE(
    "server blockList: a blocked peer is closed before any listener runs and reported as "
    "'drop', and rules added while listening apply to the next connection") {
  asio::io_context loop;
  auto blockList = std::make_shared<net::BlockList>();
  blockList->addSubnet("10.0.0.0", 8);
  net::ServerOptions options;
  options.blockList = blockList;
  net::Server server(options, loop);
  std::vector<net::Socket> accepted;
  server.on("connection", [&](net::Socket socket) { accepted.push_back(socket); });
  std::vector<net::DropInfo> drops;
  server.on("drop", [&](const net::DropInfo& drop) { drops.push_back(drop); });
  const unsigned short port = listenLocal(loop, server);

  net::Socket first;
  connectAndWaitClose(loop, port, "127.0.0.1", &first);
  REQUIRE(runUntil(loop, [&] { return accepted.size() == 1; }));
  CHECK(drops.empty());

  blockList->addAddress("127.0.0.1");
  const ClientResult blocked = connectAndWaitClose(loop, port, "127.0.0.1");
  CHECK(blocked.connected);  // the kernel accepted it; the server closed it at once
  CHECK(blocked.closed);
  CHECK(accepted.size() == 1);
  REQUIRE(drops.size() == 1);
  CHECK(drops[0].remote.address == "127.0.0.1");
  CHECK(drops[0].remote.family == "IPv4");
  CHECK(drops[0].remote.port != 0);
  CHECK(server.getConnections() == 1);

  first.destroy();
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("server blockList: an IPv4 rule blocks an IPv4 client of a dual-stack server (::)") {
  asio::io_context loop;
  auto blockList = std::make_shared<net::BlockList>();
  blockList->addAddress("127.0.0.1");
  net::ServerOptions options;
  options.blockList = blockList;
  net::Server server(options, loop);
  int connections = 0;
  server.on("connection", [&](net::Socket socket) {
    ++connections;
    socket.destroy();
  });
  std::vector<net::DropInfo> drops;
  server.on("drop", [&](const net::DropInfo& drop) { drops.push_back(drop); });
  const unsigned short port = listenLocal(loop, server, "::");

  // The peer is ::ffff:127.0.0.1 here (127.0.0.1 where there is no IPv6): blocked either way.
  connectAndWaitClose(loop, port, "127.0.0.1");
  REQUIRE(drops.size() == 1);
  CHECK(connections == 0);
  if (hasIPv6Loopback()) {
    connectAndWaitClose(loop, port, "::1");  // an IPv6 peer the IPv4 rule does not name
    CHECK(drops.size() == 1);
    CHECK(runUntil(loop, [&] { return connections == 1; }));
  }
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("server blockList: a Unix socket's peer is never blocked") {
  asio::io_context loop;
  auto blockList = std::make_shared<net::BlockList>();
  blockList->addSubnet("0.0.0.0", 0);
  blockList->addSubnet("::", 0, "ipv6");
  net::ServerOptions options;
  options.blockList = blockList;
  net::Server server(options, loop);
  int connections = 0;
  int drops = 0;
  server.on("connection", [&](net::Socket socket) {
    ++connections;
    socket.destroy();
  });
  server.on("drop", [&](const net::DropInfo&) { ++drops; });
  const TempDir dir;
  const std::string path = dir.file("s.sock");
  bool listening = false;
  server.listenPath(path, [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  bool closed = false;
  net::Socket client = net::connectPath(path, {}, {}, loop);
  client.on("close", [&](bool) { closed = true; });
  REQUIRE(runUntil(loop, [&] { return closed && connections == 1; }));
  CHECK(drops == 0);
  CHECK(closeAndRunToCompletion(loop, server));
}
