// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_ADDRESS_HPP
#define EVNET_NET_ADDRESS_HPP

#include <string>

namespace evnet::net {

/// An address as Node's server.address() and socket properties give it: "IPv4", "IPv6", or
/// "Unix" with the path in address (Node returns the bare path string for those).
struct AddressInfo {
  std::string address;      // "127.0.0.1", "::1", or a Unix socket's path
  std::string family;       // "IPv4", "IPv6" or "Unix"
  unsigned short port = 0;  // 0 for a Unix socket

  friend bool operator==(const AddressInfo&, const AddressInfo&) = default;
};

}  // namespace evnet::net

#endif  // EVNET_NET_ADDRESS_HPP
