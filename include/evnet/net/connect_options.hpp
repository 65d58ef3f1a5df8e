// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_CONNECT_OPTIONS_HPP
#define EVNET_NET_CONNECT_OPTIONS_HPP

#include "evnet/detail/stop_token.hpp"
#include "evnet/net/block_list.hpp"
#include "evnet/net/socket_options.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace evnet::net {

/// One address a name resolves to (Node: an entry of dns.lookup's result with all: true).
struct LookupAddress {
  std::string address;  // an IP address in text
  int family = 0;       // 4 or 6
};

/// A name resolver replacing the system's (Node: connect's lookup option): called with the host
/// and the family asked for (0, 4 or 6); calls back once with the addresses, in the order they
/// are to be tried, or an error. It may call back at once or later, on the socket's loop.
using LookupFunction =
    std::function<void(const std::string& host, int family,
                       std::function<void(std::error_code, std::vector<LookupAddress>)> callback)>;

/// Options of net::connect and socket.connect (Node: the options object of net.connect and
/// socket.connect). The SocketOptions part is the new socket's (Node's new net.Socket options):
/// socket.connect(options) on an existing socket keeps the socket's own.
// tls::ConnectOptions repeats these fields, in this order (see evnet/tls/options.hpp): a field
// added here belongs there too.
struct ConnectOptions : SocketOptions {
  unsigned short port = 0;                 // the server's port
  std::string host = "localhost";          // the server's name or IP address
  std::string path;                        // a Unix domain socket; host and port are then not used
  std::string localAddress;                // bind to this address first (an IP address, not a name)
  unsigned short localPort = 0;            // bind to this port first
  int family = 0;                          // 0: any; 4 or 6: resolve the host to that family only
  unsigned timeout = 0;                    // ms: socket.setTimeout(timeout) before connecting
  LookupFunction lookup{};                 // empty: the system's resolver (getaddrinfo)
  std::optional<bool> autoSelectFamily{};  // Happy Eyeballs; empty: getDefaultAutoSelectFamily()
  std::optional<std::chrono::milliseconds> autoSelectFamilyAttemptTimeout{};  // empty: default
  std::shared_ptr<const BlockList> blockList{};  // addresses it blocks are not connected to
#if EVNET_HAS_STOP_TOKEN
  std::stop_token signal{};  // a stop request destroys the socket with Errc::aborted
#endif
};

}  // namespace evnet::net

#endif  // EVNET_NET_CONNECT_OPTIONS_HPP
