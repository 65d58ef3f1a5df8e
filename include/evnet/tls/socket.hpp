// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_TLS_SOCKET_HPP
#define EVNET_TLS_SOCKET_HPP

#include "evnet/detail/socket_handle.hpp"
#include "evnet/detail/socket_impl.hpp"
#include "evnet/detail/tls_layer.hpp"
#include "evnet/loop.hpp"
#include "evnet/tls/options.hpp"
#include "evnet/tls/secure_context.hpp"

#include <asio/ip/address.hpp>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

namespace evnet::detail {
using TlsSocketImpl = SocketImpl<TlsLayer>;
#ifdef EVNET_SEPARATE_COMPILATION
extern template class SocketImpl<TlsLayer>;  // compiled by <evnet/impl/tls_src.hpp>
#endif

// OpenSSL's text for what it prints into a memory BIO.
template <class Print>
std::string printed(Print print) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  print(bio);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string text(data, size > 0 ? static_cast<std::size_t>(size) : 0);
  BIO_free(bio);
  return text;
}

inline std::map<std::string, std::string> nameFields(const X509_NAME* name) {
  std::map<std::string, std::string> fields;
  for (int i = 0; i < X509_NAME_entry_count(name); ++i) {
    const X509_NAME_ENTRY* entry = X509_NAME_get_entry(name, i);
    const int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(entry);
    fields[nid != NID_undef ? OBJ_nid2sn(nid) : "UNDEF"] =
        std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                    static_cast<std::size_t>(ASN1_STRING_length(value)));
  }
  return fields;
}
}  // namespace evnet::detail

namespace evnet::tls {

/// The peer's certificate, with Node's field names (Node: tlsSocket.getPeerCertificate()).
/// Empty (no subject) when the peer sent none.
struct PeerCertificate {
  std::map<std::string, std::string> subject;  // short names: CN, O, OU, C, ST, L...
  std::map<std::string, std::string> issuer;   // the same, of the issuer
  std::string subjectaltname;  // "DNS:localhost, IP Address:127.0.0.1", as Node prints it
  std::string valid_from;      // "Dec  2 02:11:47 2026 GMT"
  std::string valid_to;        // the same form
  std::string fingerprint256;  // SHA-256 of the DER, "AB:CD:..."
  std::string serialNumber;    // upper-case hex
  std::string raw;             // the DER bytes
};

/// The negotiated cipher (Node: tlsSocket.getCipher()).
struct CipherInfo {
  std::string name;          // OpenSSL's name, e.g. "TLS_AES_256_GCM_SHA384"
  std::string standardName;  // the IETF name
  std::string version;       // the protocol version that defined it, e.g. "TLSv1.3"
};

/// A TLS connection: everything a net::Socket has (events, write and backpressure, end,
/// destroy, pause, setTimeout, pipe, addresses and counters, which count plaintext), plus the
/// event secureConnect and the TLS properties below (Node: tls.TLSSocket).
class Socket : public evnet::detail::SocketHandle<Socket, evnet::detail::TlsSocketImpl> {
 public:
  /// A handle to no socket; only assignment and comparison are valid on it.
  Socket() = default;
  explicit Socket(std::shared_ptr<evnet::detail::TlsSocketImpl> impl)
      : SocketHandle(std::move(impl)) {}

  /// Always true (Node: tlsSocket.encrypted).
  static constexpr bool encrypted = true;

  /// Whether the peer's certificate was verified: trusted chain, and for a client the name
  /// (Node: tlsSocket.authorized).
  bool authorized() const noexcept { return layer().authorized(); }
  /// Why not, as Node names it: "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_HAS_EXPIRED",
  /// "ERR_TLS_CERT_ALTNAME_INVALID"...; empty if authorized (Node: authorizationError).
  const std::string& authorizationError() const noexcept { return layer().authorizationError(); }
  /// The protocol ALPN agreed on; empty if none (Node: alpnProtocol, false then).
  std::string alpnProtocol() const {
    const unsigned char* name = nullptr;
    unsigned size = 0;
    if (ssl() != nullptr) SSL_get0_alpn_selected(ssl(), &name, &size);
    return name != nullptr ? std::string(reinterpret_cast<const char*>(name), size) : "";
  }
  /// On a server, the name the client asked for by SNI; on a client, the name it sent (Node:
  /// tlsSocket.servername).
  std::string servername() const {
    if (!layer().servername().empty() || ssl() == nullptr) return layer().servername();
    const char* name = SSL_get_servername(ssl(), TLSEXT_NAMETYPE_host_name);
    return name != nullptr ? name : "";
  }
  /// "TLSv1.3", "TLSv1.2"...; empty before the handshake (Node: getProtocol(), null then).
  std::string getProtocol() const {
    return ssl() != nullptr && layer().established() ? SSL_get_version(ssl()) : "";
  }
  /// The cipher in use; empty before the handshake (Node: getCipher()).
  CipherInfo getCipher() const {
    const SSL_CIPHER* cipher = ssl() != nullptr ? SSL_get_current_cipher(ssl()) : nullptr;
    if (cipher == nullptr) return {};
    return {SSL_CIPHER_get_name(cipher), SSL_CIPHER_standard_name(cipher),
            SSL_CIPHER_get_version(cipher)};
  }
  /// The session, to resume with the `session` option of tls::connect; empty if none yet (TLS
  /// 1.3 sends it after the handshake, with the first data) (Node: getSession()).
  std::string getSession() const {
    SSL_SESSION* session = ssl() != nullptr ? SSL_get1_session(ssl()) : nullptr;
    if (session == nullptr) return {};
    std::string bytes;
    if (SSL_SESSION_is_resumable(session) == 1) {
      const int size = i2d_SSL_SESSION(session, nullptr);
      bytes.resize(size > 0 ? static_cast<std::size_t>(size) : 0);
      auto* out = reinterpret_cast<unsigned char*>(bytes.data());
      if (size > 0) i2d_SSL_SESSION(session, &out);
    }
    SSL_SESSION_free(session);
    return bytes;
  }
  /// Whether the handshake resumed a session (Node: isSessionReused()).
  bool isSessionReused() const { return ssl() != nullptr && SSL_session_reused(ssl()) == 1; }
  /// The peer's certificate (Node: getPeerCertificate()).
  PeerCertificate getPeerCertificate() const {
    X509* cert = ssl() != nullptr ? SSL_get1_peer_certificate(ssl()) : nullptr;
    if (cert == nullptr) return {};
    PeerCertificate info;
    info.subject = evnet::detail::nameFields(X509_get_subject_name(cert));
    info.issuer = evnet::detail::nameFields(X509_get_issuer_name(cert));
    info.valid_from =
        evnet::detail::printed([&](BIO* bio) { ASN1_TIME_print(bio, X509_get0_notBefore(cert)); });
    info.valid_to =
        evnet::detail::printed([&](BIO* bio) { ASN1_TIME_print(bio, X509_get0_notAfter(cert)); });
    const int san = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1);
    if (san >= 0)
      info.subjectaltname = evnet::detail::printed(
          [&](BIO* bio) { X509V3_EXT_print(bio, X509_get_ext(cert, san), 0, 0); });
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned size = 0;
    X509_digest(cert, EVP_sha256(), digest, &size);
    static constexpr char kHex[] = "0123456789ABCDEF";
    for (unsigned i = 0; i < size; ++i) {
      if (i != 0) info.fingerprint256 += ':';
      info.fingerprint256 += kHex[digest[i] >> 4];
      info.fingerprint256 += kHex[digest[i] & 15];
    }
    if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
      char* hex = BN_bn2hex(serial);
      info.serialNumber = hex;
      OPENSSL_free(hex);
      BN_free(serial);
    }
    const int der = i2d_X509(cert, nullptr);
    if (der > 0) {
      info.raw.resize(static_cast<std::size_t>(der));
      auto* out = reinterpret_cast<unsigned char*>(info.raw.data());
      i2d_X509(cert, &out);
    }
    X509_free(cert);
    return info;
  }

 private:
  const evnet::detail::TlsLayer& layer() const noexcept { return impl_->layer(); }
  SSL* ssl() const noexcept { return layer().ssl(); }
};

/// Connects as net::connect does with the same options (host and port, or path; localAddress,
/// localPort, family, lookup, Happy Eyeballs, timeout, blockList, signal) and starts the
/// handshake; "secureConnect" (and the listener) follows a successful one, "error" then "close"
/// a failed one or a certificate that rejectUnauthorized refuses. Writes made meanwhile are
/// queued. Throws what createSecureContext throws for bad keys, and std::invalid_argument as
/// net::connect does (Node: tls.connect).
inline Socket connect(ConnectOptions options, std::function<void()> secureConnectListener = {},
                      LoopRef loop = {}) {
  auto config = std::make_shared<evnet::detail::TlsClientConfig>();
  config->context = options.secureContext ? options.secureContext
                                          : createSecureContext({.key = options.key,
                                                                 .cert = options.cert,
                                                                 .ca = options.ca,
                                                                 .passphrase = options.passphrase,
                                                                 .ciphers = options.ciphers,
                                                                 .minVersion = options.minVersion,
                                                                 .maxVersion = options.maxVersion});
  // Node 20 checks servername || host || "localhost"; evnet also sends host as SNI when it is a
  // name and the connection is not to a path (Node sends servername only; see the README).
  std::error_code notAnIp;
  asio::ip::make_address(options.host, notAnIp);
  config->servername = !options.servername.empty()       ? options.servername
                       : notAnIp && options.path.empty() ? options.host
                                                         : std::string();
  config->checkName = !options.servername.empty() ? options.servername
                      : !options.host.empty()     ? options.host
                                                  : std::string("localhost");
  config->rejectUnauthorized = options.rejectUnauthorized;
  config->alpn = evnet::detail::alpnWireFormat(options.ALPNProtocols);
  config->session = std::move(options.session);
  config->handshakeTimeout = options.handshakeTimeout;
  auto impl = std::make_shared<evnet::detail::TlsSocketImpl>(loop.executor(), options);
  impl->layer().client(std::move(config));
  Socket socket(impl);
  if (secureConnectListener) socket.once("secureConnect", std::move(secureConnectListener));
  // net.connect's part, as net::ConnectOptions (the test "tls::ConnectOptions repeats every
  // field of net::ConnectOptions" fails when that struct gains a field that this one lacks).
  net::ConnectOptions connectOptions;
  static_cast<net::SocketOptions&>(connectOptions) = options;
  connectOptions.port = options.port;
  connectOptions.host = std::move(options.host);
  connectOptions.path = std::move(options.path);
  connectOptions.localAddress = std::move(options.localAddress);
  connectOptions.localPort = options.localPort;
  connectOptions.family = options.family;
  connectOptions.timeout = options.timeout;
  connectOptions.lookup = std::move(options.lookup);
  connectOptions.autoSelectFamily = options.autoSelectFamily;
  connectOptions.autoSelectFamilyAttemptTimeout = options.autoSelectFamilyAttemptTimeout;
  connectOptions.blockList = std::move(options.blockList);
#if EVNET_HAS_STOP_TOKEN
  connectOptions.signal = std::move(options.signal);
#endif
  impl->connect(impl, std::move(connectOptions));
  return socket;
}

}  // namespace evnet::tls

#endif  // EVNET_TLS_SOCKET_HPP
