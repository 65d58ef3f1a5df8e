// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_SOCKET_ADDRESS_HPP
#define EVNET_NET_SOCKET_ADDRESS_HPP

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace evnet::net {

namespace detail {

// An IPv4 or IPv6 address in network byte order (an IPv4 one in the first 4 bytes).
struct IpBytes {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};

  friend bool operator==(const IpBytes&, const IpBytes&) = default;
};

constexpr bool isDigit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr int hexValue(char c) noexcept {
  if (isDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Node's dotted quad: exactly four decimal parts of 0-255, none with a leading zero.
constexpr bool parseIPv4(std::string_view s, std::uint8_t* out) noexcept {
  std::size_t i = 0;
  for (int part = 0;; ++part) {
    std::size_t j = i;
    unsigned value = 0;
    while (j < s.size() && j - i < 4 && isDigit(s[j])) value = value * 10 + unsigned(s[j++] - '0');
    const std::size_t digits = j - i;
    if (digits == 0 || digits > 3 || value > 255 || (digits > 1 && s[i] == '0')) return false;
    out[part] = static_cast<std::uint8_t>(value);
    if (part == 3) return j == s.size();
    if (j == s.size() || s[j] != '.') return false;
    i = j + 1;
  }
}

// Node's IPv6 text without a zone: eight groups of 1-4 hex digits, the last two of which may be
// a dotted quad, and at most one "::" standing for one or more zero groups.
constexpr bool parseIPv6(std::string_view s, std::uint8_t* out) noexcept {
  std::array<std::uint16_t, 8> groups{};
  std::size_t count = 0;
  std::size_t gap = 8;  // where "::" stands; 8: nowhere
  std::size_t i = 0;
  if (s.starts_with("::")) {
    gap = 0;
    i = 2;
  } else if (s.starts_with(":")) {
    return false;
  }
  while (i < s.size()) {
    if (count == 8) return false;
    std::size_t j = i;
    unsigned value = 0;
    while (j < s.size() && j - i < 5 && hexValue(s[j]) >= 0)
      value = value * 16 + unsigned(hexValue(s[j++]));
    if (j < s.size() && s[j] == '.') {  // a dotted quad ends the address
      std::uint8_t quad[4] = {};
      if (count > 6 || !parseIPv4(s.substr(i), quad)) return false;
      groups[count++] = static_cast<std::uint16_t>(quad[0] << 8 | quad[1]);
      groups[count++] = static_cast<std::uint16_t>(quad[2] << 8 | quad[3]);
      break;
    }
    if (j == i || j - i > 4) return false;
    groups[count++] = static_cast<std::uint16_t>(value);
    if (j == s.size()) break;
    if (s[j] != ':' || j + 1 == s.size()) return false;
    i = j + 1;
    if (s[i] == ':') {
      if (gap != 8) return false;
      gap = count;
      ++i;
    }
  }
  if (gap == 8 ? count != 8 : count > 7) return false;
  std::array<std::uint16_t, 8> full{};
  for (std::size_t k = 0; k < count; ++k) full[k < gap ? k : k + 8 - count] = groups[k];
  for (std::size_t k = 0; k < 8; ++k) {
    out[2 * k] = static_cast<std::uint8_t>(full[k] >> 8);
    out[2 * k + 1] = static_cast<std::uint8_t>(full[k] & 0xff);
  }
  return true;
}

// A zone ("%eth0") as Node's isIPv6 accepts it: letters, digits, '-', '.' and ':'.
constexpr bool isZone(std::string_view zone) noexcept {
  if (zone.empty()) return false;
  for (const char c : zone)
    if (!isDigit(c) && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && c != '-' && c != '.' &&
        c != ':')
      return false;
  return true;
}

// Whether a family as Node's SocketAddress takes it ("ipv4" or "ipv6", in any case) is IPv6;
// nothing for any other text.
constexpr std::optional<bool> isIPv6Family(std::string_view family) noexcept {
  const auto is = [family](std::string_view lower) {
    return std::equal(family.begin(), family.end(), lower.begin(), lower.end(), [](char a, char b) {
      return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
    });
  };
  if (is("ipv6")) return true;
  if (is("ipv4")) return false;
  return std::nullopt;
}

// The text Node prints for an address (libuv's inet_ntop: "::ffff:1.2.3.4", "1::2").
inline std::string formatIp(const IpBytes& ip) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(ip.v6 ? AF_INET6 : AF_INET, ip.bytes.data(), text, sizeof text);
  return text;
}

// An address as Node's SocketAddress reads it: IPv4 strict; IPv6 with any zone after '%'
// ignored, and, as libuv, the part before a zone cut to 39 characters.
constexpr std::optional<IpBytes> toIpBytes(std::string_view address, bool v6) noexcept {
  IpBytes ip{v6, {}};
  if (!v6) return parseIPv4(address, ip.bytes.data()) ? std::optional(ip) : std::nullopt;
  if (const std::size_t zone = address.find('%'); zone != std::string_view::npos)
    address = address.substr(0, zone < 39 ? zone : 39);
  return parseIPv6(address, ip.bytes.data()) ? std::optional(ip) : std::nullopt;
}

// The IPv4 address parser of the WHATWG URL standard (what Node's URL does with a host that
// ends in a number): one to four parts, each decimal, octal (leading 0) or hex (0x).
constexpr std::optional<IpBytes> parseUrlIPv4(std::string_view host) noexcept {
  std::array<std::uint64_t, 4> numbers{};
  std::size_t count = 0;
  if (host.ends_with('.')) host.remove_suffix(1);
  while (true) {
    const std::size_t dot = host.find('.');
    std::string_view part = host.substr(0, dot);
    if (count == 4) return std::nullopt;
    unsigned radix = 10;
    if (part.size() >= 2 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X')) {
      radix = 16;
      part.remove_prefix(2);
    } else if (part.size() >= 2 && part[0] == '0') {
      radix = 8;
      part.remove_prefix(1);
    } else if (part.empty()) {
      return std::nullopt;
    }
    std::uint64_t value = 0;
    for (const char c : part) {
      const int digit = hexValue(c);
      if (digit < 0 || unsigned(digit) >= radix) return std::nullopt;
      value = value * radix + unsigned(digit);
      if (value > 0xffffffffu) value = std::uint64_t(1) << 33;  // too large either way
    }
    numbers[count++] = value;
    if (dot == std::string_view::npos) break;
    host.remove_prefix(dot + 1);
  }
  for (std::size_t k = 0; k + 1 < count; ++k)
    if (numbers[k] > 255) return std::nullopt;
  if (numbers[count - 1] >= (std::uint64_t(1) << (8 * (5 - count)))) return std::nullopt;
  std::uint64_t value = numbers[count - 1];
  for (std::size_t k = 0; k + 1 < count; ++k) value += numbers[k] << (8 * (3 - k));
  IpBytes ip;
  for (std::size_t k = 0; k < 4; ++k)
    ip.bytes[k] = static_cast<std::uint8_t>(value >> (24 - 8 * k));
  return ip;
}

}  // namespace detail

/// Whether text is an IPv4 address in dotted-quad form, without leading zeros (Node:
/// net.isIPv4).
constexpr bool isIPv4(std::string_view text) noexcept {
  std::uint8_t bytes[4] = {};
  return detail::parseIPv4(text, bytes);
}

/// Whether text is an IPv6 address, optionally with a zone such as "%eth0" (Node: net.isIPv6).
constexpr bool isIPv6(std::string_view text) noexcept {
  std::uint8_t bytes[16] = {};
  const std::size_t zone = text.find('%');
  if (zone != std::string_view::npos && !detail::isZone(text.substr(zone + 1))) return false;
  return detail::parseIPv6(text.substr(0, zone), bytes);
}

/// 4 for an IPv4 address, 6 for an IPv6 one, 0 otherwise (Node: net.isIP).
constexpr int isIP(std::string_view text) noexcept {
  if (isIPv4(text)) return 4;
  if (isIPv6(text)) return 6;
  return 0;
}

/// What a SocketAddress is made of (Node: the options of new net.SocketAddress). Without an
/// address, it is "127.0.0.1" when family is exactly "ipv4" and "::" otherwise, as in Node.
struct SocketAddressOptions {
  std::optional<std::string> address{};  // an IP address, no name
  unsigned short port = 0;               // Node: port
  std::string family = "ipv4";           // "ipv4" or "ipv6", in any case
  std::uint32_t flowlabel = 0;           // IPv6 only, 20 bits
};

class BlockList;

/// An IP address with a port, validated and normalized (Node: net.SocketAddress).
class SocketAddress {
 public:
  /// 127.0.0.1, port 0 (Node: new net.SocketAddress()).
  SocketAddress() : SocketAddress(SocketAddressOptions{}) {}

  /// Throws std::invalid_argument if family is neither "ipv4" nor "ipv6" (Node:
  /// ERR_INVALID_ARG_VALUE) or the address is not one of that family (Node:
  /// ERR_INVALID_ADDRESS), std::out_of_range for a flow label above 20 bits (Node aborts).
  explicit SocketAddress(const SocketAddressOptions& options) : port_(options.port) {
    const std::optional<bool> v6 = detail::isIPv6Family(options.family);
    if (!v6)
      throw std::invalid_argument("evnet: The property 'options.family' is invalid. Received '" +
                                  options.family + "'");
    const std::string_view text =
        options.address ? std::string_view(*options.address)
                        : std::string_view(options.family == "ipv4" ? "127.0.0.1" : "::");
    const auto ip = detail::toIpBytes(text, *v6);
    if (!ip) throw std::invalid_argument("evnet: Invalid socket address");
    if (options.flowlabel > 0xfffff)
      throw std::out_of_range("evnet: a flow label has 20 bits; got " +
                              std::to_string(options.flowlabel));
    ip_ = *ip;
    address_ = detail::formatIp(ip_);
    flowlabel_ = *v6 ? options.flowlabel : 0;
  }

  /// Reads "address:port" or "[address]:port" as the host and port of "http://" + text, or
  /// nothing if that is not an IP address (Node 22: net.SocketAddress.parse; Node 20 lacks
  /// it). As Node's URL parser: "127.1" and "0x7f.0.0.1" are 127.0.0.1; "user@" is skipped;
  /// tabs and newlines are ignored; the text ends at '/', '?', '#' or '\'. An explicit port 80
  /// stays 80, as Node's test-socketaddress.js now expects (released Node 22 reads it as 0,
  /// http's default: nodejs/node#62906). Unlike Node, a host that is not ASCII after
  /// percent-decoding gives nothing (Node maps, for example, full-width digits to ASCII).
  static std::optional<SocketAddress> parse(std::string_view input) {
    std::string text;  // without tabs and newlines, and without trailing spaces or controls
    for (const char c : input)
      if (c != '\t' && c != '\n' && c != '\r') text += c;
    while (!text.empty() && static_cast<unsigned char>(text.back()) <= 0x20) text.pop_back();
    std::string_view authority(text);
    authority = authority.substr(0, authority.find_first_of("/?#\\"));
    if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
      authority.remove_prefix(at + 1);
      if (authority.empty()) return std::nullopt;
    }
    bool inBrackets = false;
    std::size_t colon = 0;
    while (colon < authority.size() && (authority[colon] != ':' || inBrackets)) {
      if (authority[colon] == '[') inBrackets = true;
      if (authority[colon] == ']') inBrackets = false;
      ++colon;
    }
    const std::string_view host = authority.substr(0, colon);
    if (host.empty()) return std::nullopt;
    unsigned port = 0;
    for (const char c : authority.substr(colon < authority.size() ? colon + 1 : colon)) {
      if (!detail::isDigit(c)) return std::nullopt;
      port = port * 10 + unsigned(c - '0');
      if (port > 65535) return std::nullopt;
    }
    SocketAddress result;
    result.port_ = static_cast<unsigned short>(port);
    if (host.front() == '[') {
      if (host.size() < 2 || host.back() != ']' ||
          !detail::parseIPv6(host.substr(1, host.size() - 2), result.ip_.bytes.data()))
        return std::nullopt;
      result.ip_.v6 = true;
    } else {
      std::string decoded;
      for (std::size_t k = 0; k < host.size(); ++k) {
        if (host[k] == '%' && k + 2 < host.size() && detail::hexValue(host[k + 1]) >= 0 &&
            detail::hexValue(host[k + 2]) >= 0) {
          decoded +=
              static_cast<char>(detail::hexValue(host[k + 1]) * 16 + detail::hexValue(host[k + 2]));
          k += 2;
        } else {
          decoded += host[k];
        }
      }
      const auto ip = detail::parseUrlIPv4(decoded);
      if (!ip) return std::nullopt;
      result.ip_ = *ip;
    }
    result.address_ = detail::formatIp(result.ip_);
    return result;
  }

  /// The address as Node prints it: "1.2.3.4", "::1", "::ffff:1.2.3.4" (Node: address).
  const std::string& address() const noexcept { return address_; }
  /// Node: port.
  unsigned short port() const noexcept { return port_; }
  /// "ipv4" or "ipv6" (Node: family).
  std::string_view family() const noexcept { return ip_.v6 ? "ipv6" : "ipv4"; }
  /// The IPv6 flow label; 0 for IPv4 (Node: flowlabel).
  std::uint32_t flowlabel() const noexcept { return flowlabel_; }

  friend bool operator==(const SocketAddress&, const SocketAddress&) = default;

 private:
  friend class BlockList;

  detail::IpBytes ip_;
  std::string address_;
  unsigned short port_ = 0;
  std::uint32_t flowlabel_ = 0;
};

}  // namespace evnet::net

#endif  // EVNET_NET_SOCKET_ADDRESS_HPP
