// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_SERVER_OPTIONS_HPP
#define EVNET_NET_SERVER_OPTIONS_HPP

#include "evnet/detail/stop_token.hpp"
#include "evnet/net/address.hpp"
#include "evnet/net/block_list.hpp"
#include "evnet/net/socket_options.hpp"

#include <memory>
#include <string>

namespace evnet::net {

/// Options of a server; the socket options apply to every accepted connection (Node: the
/// options of net.createServer).
struct ServerOptions : SocketOptions {
  bool pauseOnConnect = false;  // accepted sockets start paused: nothing is read until resume()
  bool reusePort = false;       // SO_REUSEPORT: several servers (one per loop) share a port
  std::shared_ptr<const BlockList> blockList{};  // peers it blocks: closed, reported as "drop"
};

/// Options of server.listen(options) (Node: the options object of server.listen).
struct ListenOptions {
  unsigned short port = 0;   // 0: an ephemeral port
  std::string host{};        // empty: "::", IPv4 and IPv6 (IPv6 only with ipv6Only)
  std::string path{};        // a Unix domain socket; host and port are then not used
  int backlog = 511;         // the kernel's queue of connections not accepted yet
  bool ipv6Only = false;     // on "::" (or no host): IPv6 only, no IPv4 (IPV6_V6ONLY)
  bool readableAll = false;  // a Unix socket: readable by every user (chmod a+r)
  bool writableAll = false;  // a Unix socket: writable by every user (chmod a+w)
#if EVNET_HAS_STOP_TOKEN
  std::stop_token signal{};  // a stop request closes the server (server.close())
#endif
};

/// A connection the server refused: maxConnections or blockList (Node: the 'drop' event's data).
struct DropInfo {
  AddressInfo local;   // the server's address (Node: localAddress, localPort, localFamily)
  AddressInfo remote;  // the refused peer (Node: remoteAddress, remotePort, remoteFamily)
};

}  // namespace evnet::net

#endif  // EVNET_NET_SERVER_OPTIONS_HPP
