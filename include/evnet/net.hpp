// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_HPP
#define EVNET_NET_HPP

/// Node's net module: net::Server, net::Socket, createServer, connect, isIP, SocketAddress,
/// BlockList; with the default loop, timers and evnet::once for coroutines.
#include "evnet/buffer.hpp"
#include "evnet/error.hpp"
#include "evnet/loop.hpp"
#include "evnet/net/auto_select_family.hpp"
#include "evnet/net/block_list.hpp"
#include "evnet/net/connect_options.hpp"
#include "evnet/net/server.hpp"
#include "evnet/net/socket.hpp"
#include "evnet/net/socket_address.hpp"
#include "evnet/once.hpp"
#include "evnet/timers.hpp"

#endif  // EVNET_NET_HPP
