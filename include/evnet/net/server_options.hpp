// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_SERVER_OPTIONS_HPP
#define EVNET_NET_SERVER_OPTIONS_HPP

#include "evnet/net/address.hpp"
#include "evnet/net/block_list.hpp"
#include "evnet/net/socket_options.hpp"

#include <memory>

namespace evnet::net {

/// Options of a server; the socket options apply to every accepted connection (Node: the
/// options of net.createServer).
struct ServerOptions : SocketOptions {
  bool pauseOnConnect = false;  // accepted sockets start paused: nothing is read until resume()
  bool reusePort = false;       // SO_REUSEPORT: several servers (one per loop) share a port
  std::shared_ptr<const BlockList> blockList{};  // peers it blocks: closed, reported as "drop"
};

/// A connection the server refused: maxConnections or blockList (Node: the 'drop' event's data).
struct DropInfo {
  AddressInfo local;   // the server's address (Node: localAddress, localPort, localFamily)
  AddressInfo remote;  // the refused peer (Node: remoteAddress, remotePort, remoteFamily)
};

}  // namespace evnet::net

#endif  // EVNET_NET_SERVER_OPTIONS_HPP
