// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_IMPL_BLOCK_LIST_IPP
#define EVNET_DETAIL_IMPL_BLOCK_LIST_IPP

// BlockList's functions that are not inline: included by net/block_list.hpp, or in compiled mode
// by <evnet/impl/src.hpp> only.
#include "evnet/net/block_list.hpp"

namespace evnet::net {

EVNET_DECL void BlockList::addAddress(const SocketAddress& address) {
  rules_.push_back({Kind::address, address.ip_, {}, 0, "Address: " + label(address)});
}

EVNET_DECL void BlockList::addRange(const SocketAddress& start, const SocketAddress& end) {
  if (detail::compareIp(start.ip_, end.ip_) == 1)
    throw std::invalid_argument("evnet: The argument 'start' must come before end. Received " +
                                start.address());
  rules_.push_back(
      {Kind::range, start.ip_, end.ip_, 0, "Range: " + label(start) + "-" + end.address()});
}

EVNET_DECL void BlockList::addSubnet(const SocketAddress& network, int prefix) {
  const int max = network.ip_.v6 ? 128 : 32;
  if (prefix < 0 || prefix > max)
    throw std::out_of_range(
        "evnet: The value of \"prefix\" is out of range. It must be >= 0 "
        "&& <= " +
        std::to_string(max) + ". Received " + std::to_string(prefix));
  rules_.push_back({Kind::subnet,
                    network.ip_,
                    {},
                    prefix,
                    "Subnet: " + label(network) + "/" + std::to_string(prefix)});
}

EVNET_DECL bool BlockList::check(std::string_view address, std::string_view family) const noexcept {
  const std::optional<bool> v6 = detail::isIPv6Family(family);
  if (!v6) return false;
  const auto ip = detail::toIpBytes(address, *v6);
  return ip && check(*ip);
}

EVNET_DECL std::vector<std::string> BlockList::rules() const {
  std::vector<std::string> texts;
  texts.reserve(rules_.size());
  for (auto rule = rules_.rbegin(); rule != rules_.rend(); ++rule) texts.push_back(rule->text);
  return texts;
}

EVNET_DECL std::string BlockList::label(const SocketAddress& address) {
  return (address.ip_.v6 ? "IPv6 " : "IPv4 ") + address.address();
}

EVNET_DECL bool BlockList::check(const detail::IpBytes& ip) const noexcept {
  return std::any_of(rules_.begin(), rules_.end(), [&ip](const Rule& rule) {
    switch (rule.kind) {
      case Kind::address:
        return detail::compareIp(ip, rule.first) == 0;
      case Kind::range: {
        const auto low = detail::compareIp(ip, rule.first);
        const auto high = detail::compareIp(ip, rule.last);
        return low && high && *low >= 0 && *high <= 0;
      }
      case Kind::subnet:
        return detail::inSubnet(ip, rule.first, rule.prefix);
    }
    return false;
  });
}

namespace detail {

EVNET_DECL bool blocksPeer(const BlockList& list, const sockaddr* peer) noexcept {
  IpBytes ip;
  if (peer->sa_family == AF_INET) {
    std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in*>(peer)->sin_addr, 4);
  } else if (peer->sa_family == AF_INET6) {
    ip.v6 = true;
    std::memcpy(ip.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr, 16);
  } else {
    return false;
  }
  return list.check(ip);
}

}  // namespace detail

}  // namespace evnet::net

#endif  // EVNET_DETAIL_IMPL_BLOCK_LIST_IPP
