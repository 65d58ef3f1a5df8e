// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_TLS_HPP
#define EVNET_TLS_HPP

/// Node's tls module: tls::Server, tls::Socket, createServer, connect, createSecureContext.
/// Needs OpenSSL 3: link the CMake target evnet::tls. <evnet/evnet.hpp> does not include it.
#include "evnet/evnet.hpp"
#include "evnet/tls/options.hpp"
#include "evnet/tls/secure_context.hpp"
#include "evnet/tls/server.hpp"
#include "evnet/tls/socket.hpp"

#endif  // EVNET_TLS_HPP
