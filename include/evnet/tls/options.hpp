// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_TLS_OPTIONS_HPP
#define EVNET_TLS_OPTIONS_HPP

#include "evnet/net/server_options.hpp"
#include "evnet/net/socket_options.hpp"
#include "evnet/tls/secure_context.hpp"

#include <functional>
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

/// Options of tls::connect (Node: the options of tls.connect).
struct ConnectOptions : net::SocketOptions {
  unsigned short port = 0;         // the server's port
  std::string host = "localhost";  // the server's name or IP address
  std::string servername;          // SNI and the name to check; empty: host, unless host is an IP
  SecureContext secureContext;     // optional; otherwise made from ca/key/cert and the versions
  std::string ca;                  // PEM certificates to trust; empty: the system's store
  std::string key;                 // PEM client key, for mutual TLS
  std::string cert;                // PEM client certificate, for mutual TLS
  std::string passphrase;          // of an encrypted key
  std::string ciphers;             // as SecureContextOptions::ciphers; empty: OpenSSL's defaults
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
