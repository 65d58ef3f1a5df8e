// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_BLOCK_LIST_HPP
#define EVNET_NET_BLOCK_LIST_HPP

#include "evnet/detail/config.hpp"
#include "evnet/net/socket_address.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace evnet::net {

class BlockList;

namespace detail {

// Whether an IPv6 address is IPv4-mapped (::ffff:a.b.c.d).
constexpr bool isMappedIPv4(const IpBytes& ip) noexcept {
  for (std::size_t k = 0; k < 10; ++k)
    if (ip.bytes[k] != 0) return false;
  return ip.bytes[10] == 0xff && ip.bytes[11] == 0xff;
}

// The bytes to compare, as Node's SocketAddress::compare does: IPv4 against IPv6 compares the
// IPv4 address with the last 4 bytes of an IPv4-mapped one, and is not comparable otherwise.
struct Comparable {
  const std::uint8_t* a;
  const std::uint8_t* b;
  std::size_t size;
};
constexpr std::optional<Comparable> comparable(const IpBytes& a, const IpBytes& b) noexcept {
  if (a.v6 == b.v6) return Comparable{a.bytes.data(), b.bytes.data(), a.v6 ? 16u : 4u};
  if (a.v6 && isMappedIPv4(a)) return Comparable{a.bytes.data() + 12, b.bytes.data(), 4};
  if (b.v6 && isMappedIPv4(b)) return Comparable{a.bytes.data(), b.bytes.data() + 12, 4};
  return std::nullopt;
}

// -1, 0 or 1 as a is below, equal to or above b; nothing if they are not comparable.
inline std::optional<int> compareIp(const IpBytes& a, const IpBytes& b) noexcept {
  const auto c = comparable(a, b);
  if (!c) return std::nullopt;
  const int r = std::memcmp(c->a, c->b, c->size);
  return r < 0 ? -1 : r > 0 ? 1 : 0;
}

// Whether the first `bits` bits of a and b are equal.
constexpr bool samePrefix(const std::uint8_t* a, const std::uint8_t* b, int bits) noexcept {
  for (int k = 0; bits > 0; ++k, bits -= 8) {
    const auto mask = static_cast<std::uint8_t>(bits >= 8 ? 0xff : 0xff << (8 - bits));
    if ((a[k] & mask) != (b[k] & mask)) return false;
  }
  return true;
}

// Node's SocketAddress::is_in_network: an IPv4 address is checked against an IPv6 network as
// its IPv4-mapped form; an IPv6 address against an IPv4 network only if it is IPv4-mapped.
constexpr bool inSubnet(const IpBytes& address, const IpBytes& network, int prefix) noexcept {
  if (address.v6 == network.v6)
    return samePrefix(address.bytes.data(), network.bytes.data(), prefix);
  if (!address.v6) {
    IpBytes mapped{true, {}};
    mapped.bytes[10] = mapped.bytes[11] = 0xff;
    std::copy_n(address.bytes.begin(), 4, mapped.bytes.begin() + 12);
    return samePrefix(mapped.bytes.data(), network.bytes.data(), prefix);
  }
  return isMappedIPv4(address) &&
         samePrefix(address.bytes.data() + 12, network.bytes.data(), prefix);
}

// Whether the list blocks a connection's peer; only IP peers are checked (a Unix socket's never
// is), as in Node.
bool blocksPeer(const BlockList& list, const sockaddr* peer) noexcept;

}  // namespace detail

/// Rules that block IP addresses: single addresses, ranges and subnets, IPv4 and IPv6 (Node:
/// net.BlockList). An IPv4 rule also blocks the IPv4-mapped IPv6 form of its addresses
/// (::ffff:1.2.3.4), and an IPv4-mapped rule the IPv4 address, as in Node. Ports are ignored.
class BlockList {
 public:
  /// Blocks one address (Node: blockList.addAddress(address)).
  void addAddress(const SocketAddress& address);
  /// Blocks one address given as text; family "ipv4" or "ipv6". Throws std::invalid_argument
  /// for an address that is not one of that family (Node: addAddress(address, family)).
  void addAddress(std::string_view address, std::string_view family = "ipv4") {
    addAddress(make(address, family));
  }

  /// Blocks start to end, both included. Throws std::invalid_argument if start comes after end
  /// (Node: blockList.addRange(start, end)).
  void addRange(const SocketAddress& start, const SocketAddress& end);
  /// addRange with addresses as text (Node: addRange(start, end, family)).
  void addRange(std::string_view start, std::string_view end, std::string_view family = "ipv4") {
    addRange(make(start, family), make(end, family));
  }

  /// Blocks the addresses whose first prefix bits are network's. Throws std::out_of_range for a
  /// prefix outside 0-32 (IPv4) or 0-128 (IPv6) (Node: blockList.addSubnet(net, prefix)).
  void addSubnet(const SocketAddress& network, int prefix);
  /// addSubnet with the network as text (Node: addSubnet(net, prefix, family)).
  void addSubnet(std::string_view network, int prefix, std::string_view family = "ipv4") {
    addSubnet(make(network, family), prefix);
  }

  /// Whether a rule blocks the address (Node: blockList.check(address)).
  bool check(const SocketAddress& address) const noexcept { return check(address.ip_); }
  /// Whether a rule blocks the address given as text; false for text that is not an address
  /// of the family, or an unknown family (Node: check(address, family)).
  bool check(std::string_view address, std::string_view family = "ipv4") const noexcept;

  /// The rules, newest first, as Node prints them: "Address: IPv4 1.2.3.4", "Range: IPv4
  /// 10.0.0.1-10.0.0.10", "Subnet: IPv6 8592:757c:efae:4e45::/64". A rule added twice is
  /// listed twice, as in Node 20 (Node: blockList.rules).
  std::vector<std::string> rules() const;

 private:
  friend bool detail::blocksPeer(const BlockList&, const sockaddr*) noexcept;

  enum class Kind { address, range, subnet };
  struct Rule {
    Kind kind;
    detail::IpBytes first;  // the address, the range's start or the network
    detail::IpBytes last;   // the range's end
    int prefix;
    std::string text;
  };

  static SocketAddress make(std::string_view address, std::string_view family) {
    return SocketAddress({.address = std::string(address), .family = std::string(family)});
  }
  static std::string label(const SocketAddress& address);

  bool check(const detail::IpBytes& ip) const noexcept;

  std::vector<Rule> rules_;  // oldest first
};

}  // namespace evnet::net

#ifndef EVNET_SEPARATE_COMPILATION
#include "evnet/detail/impl/block_list.ipp"
#endif

#endif  // EVNET_NET_BLOCK_LIST_HPP
