// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_TLS_OPTIONS_HPP
#define EVNET_TLS_OPTIONS_HPP

#include "evnet/detail/stop_token.hpp"
#include "evnet/net/block_list.hpp"
#include "evnet/net/connect_options.hpp"
#include "evnet/net/server_options.hpp"
#include "evnet/net/socket_options.hpp"
#include "evnet/tls/secure_context.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace evnet::tls {

/// Options of a TLS server; the net options apply to every accepted connection (Node: the
/// options of tls.createServer).
struct ServerOptions : net::ServerOptions {
  SecureContext secureContext;     // the server's key and certificate (required)
  bool requestCert = false;        // ask clients for a certificate (mutual TLS)
  bool rejectUnauthorized = true;  // with requestCert: refuse clients without a valid one
  // Protocols offered by ALPN, most preferred first; a client offering none of them is refused,
  // as Node 20 does. Empty: no ALPN.
  std::vector<std::string> ALPNProtocols;
  // The context for the servername a client asks for (SNI); an empty result keeps
  // secureContext. Called during the handshake (Node: SNICallback, synchronous here).
  std::function<SecureContext(std::string_view servername)> SNICallback;
  // A client that has not finished its handshake this many milliseconds after connecting gets
  // "tlsClientError" (Errc::handshakeTimeout) and is closed; 0 disables.
  unsigned handshakeTimeout = 120000;
};

/// Options of tls::connect: everything net::connect takes, then the TLS ones (Node: the options
/// of tls.connect, a superset of net.connect's).
// The net part repeats net::ConnectOptions' own fields, with the same names, order and
// defaults, rather than deriving from it: C++20 designated initializers cannot name a base
// class's members, and `tls::connect({.port = 8443, .host = "localhost", .ca = ca})` must keep
// compiling. tls::connect hands them to the socket as a net::ConnectOptions; the test
// "tls::ConnectOptions repeats every field of net::ConnectOptions" (tests/tls_test.cpp) fails
// when net::ConnectOptions gains a field this struct lacks. The TLS options follow, from
// servername on.
struct ConnectOptions : net::SocketOptions {
  unsigned short port = 0;         // the server's port
  std::string host = "localhost";  // the server's name or IP address; with path, the name checked
  // A Unix domain socket; host and port are then not used to connect. No SNI is sent unless
  // servername is set, as in Node.
  std::string path;
  std::string localAddress;                // bind to this address first (an IP address, not a name)
  unsigned short localPort = 0;            // bind to this port first
  int family = 0;                          // 0: any; 4 or 6: resolve the host to that family only
  unsigned timeout = 0;                    // ms: socket.setTimeout(timeout) before connecting
  net::LookupFunction lookup{};            // empty: the system's resolver (getaddrinfo)
  std::optional<bool> autoSelectFamily{};  // Happy Eyeballs; empty: getDefaultAutoSelectFamily()
  std::optional<std::chrono::milliseconds> autoSelectFamilyAttemptTimeout{};  // empty: default
  std::shared_ptr<const net::BlockList> blockList{};  // addresses it blocks are not connected to
#if EVNET_HAS_STOP_TOKEN
  std::stop_token signal{};  // a stop request destroys the socket with Errc::aborted
#endif
  // SNI and the name to check; empty: host is checked, and sent as SNI unless it is an IP
  // address or path is set.
  std::string servername;
  SecureContext secureContext;  // optional; otherwise made from ca/key/cert and the versions
  std::string ca;               // PEM certificates to trust; empty: the system's store
  std::string key;              // PEM client key, for mutual TLS
  std::string cert;             // PEM client certificate, for mutual TLS
  std::string passphrase;       // of an encrypted key
  std::string ciphers;          // as SecureContextOptions::ciphers; empty: OpenSSL's defaults
  std::string minVersion = "TLSv1.2";  // the oldest protocol version accepted
  std::string maxVersion = "TLSv1.3";  // the newest protocol version offered
  // false: connect even when the certificate is not trusted or does not match the name;
  // authorized() tells.
  bool rejectUnauthorized = true;
  std::vector<std::string> ALPNProtocols;  // offered, most preferred first
  std::string session;                     // a previous connection's getSession(), to resume it
  unsigned handshakeTimeout = 120000;      // ms; 0 disables (beyond Node's tls.connect)
};

}  // namespace evnet::tls

#endif  // EVNET_TLS_OPTIONS_HPP
