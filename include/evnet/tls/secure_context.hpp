// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_TLS_SECURE_CONTEXT_HPP
#define EVNET_TLS_SECURE_CONTEXT_HPP

#include <asio/buffer.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/error.hpp>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <iterator>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace evnet::tls {

/// evnet's TLS error conditions, in the "evnet.tls" category; each names Node's error code.
enum class Errc {
  handshakeTimeout = 1,  // ERR_TLS_HANDSHAKE_TIMEOUT
  certAltnameInvalid,    // ERR_TLS_CERT_ALTNAME_INVALID
};

namespace detail {
class ErrorCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "evnet.tls"; }
  std::string message(int value) const override {
    switch (static_cast<Errc>(value)) {
      case Errc::handshakeTimeout:
        return "TLS handshake timeout";
      case Errc::certAltnameInvalid:
        return "Hostname/IP does not match certificate's altnames";
    }
    return "unknown evnet.tls error";
  }
};

// X.509 verification results (OpenSSL's X509_V_ERR_* values), worded as OpenSSL words them.
class X509Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "x509"; }
  std::string message(int value) const override { return X509_verify_cert_error_string(value); }
};
}  // namespace detail

/// The "evnet.tls" error category.
inline const std::error_category& errorCategory() noexcept {
  static const detail::ErrorCategory category;
  return category;
}
/// Makes Errc values usable as std::error_code.
inline std::error_code make_error_code(Errc e) noexcept {
  return {static_cast<int>(e), errorCategory()};
}
/// The category of certificate verification errors: the value is OpenSSL's X509_V_ERR_*, the
/// message OpenSSL's text, e.g. "self-signed certificate" (Node: the error of a rejected
/// connection).
inline const std::error_category& x509Category() noexcept {
  static const detail::X509Category category;
  return category;
}

/// Options of a SecureContext (Node: the options of tls.createSecureContext). Keys and
/// certificates are PEM text, not file names.
struct SecureContextOptions {
  std::string key{};         // private key
  std::string cert{};        // certificate chain, the leaf first
  std::string ca{};          // certificates to trust; empty: the system's store, read once
  std::string passphrase{};  // of an encrypted key
  // OpenSSL cipher names separated by ':'; names starting with "TLS_" are TLS 1.3 suites (as
  // Node splits them). A list of TLS 1.2 ciphers only allows no more than TLS 1.2, one of TLS
  // 1.3 suites only no less than TLS 1.3, as in Node. Empty: OpenSSL's defaults.
  std::string ciphers{};
  std::string minVersion = "TLSv1.2";  // "TLSv1", "TLSv1.1", "TLSv1.2" or "TLSv1.3"
  std::string maxVersion = "TLSv1.3";  // the newest version offered
};

namespace detail {
inline int protocolVersion(std::string_view name) {
  if (name == "TLSv1.3") return TLS1_3_VERSION;
  if (name == "TLSv1.2") return TLS1_2_VERSION;
  if (name == "TLSv1.1") return TLS1_1_VERSION;
  if (name == "TLSv1") return TLS1_VERSION;
  throw std::invalid_argument("evnet: \"" + std::string(name) +
                              "\" is not a valid TLS protocol version");
}

inline std::error_code lastSslError() noexcept {
  return {static_cast<int>(ERR_get_error()), asio::error::get_ssl_category()};
}

inline void check(bool ok, const char* what) {
  if (!ok) throw std::system_error(lastSslError(), what);
}

// Sets the cipher lists as Node's configSecureContext does: TLS 1.3 suites ("TLS_...") go to
// their own list; without any, TLS 1.3 is off, without TLS 1.2 ciphers, TLS 1.2 and below.
inline void setCiphers(SSL_CTX* ctx, std::string_view ciphers) {
  const std::string_view all = ciphers;
  std::string tls12;
  std::string tls13;
  while (!ciphers.empty()) {
    const std::size_t colon = ciphers.find(':');
    const std::string_view name = ciphers.substr(0, colon);
    std::string& list = name.starts_with("TLS_") ? tls13 : tls12;
    if (!name.empty()) (list.empty() ? list : list += ':') += name;
    ciphers = colon == std::string_view::npos ? std::string_view() : ciphers.substr(colon + 1);
  }
  if (tls12.empty() && tls13.empty())
    throw std::invalid_argument("evnet: ciphers \"" + std::string(all) + "\" names no cipher");
  if (!tls13.empty()) check(SSL_CTX_set_ciphersuites(ctx, tls13.c_str()) == 1, "evnet: ciphers");
  if (!tls12.empty()) check(SSL_CTX_set_cipher_list(ctx, tls12.c_str()) == 1, "evnet: ciphers");
  const int min = SSL_CTX_get_min_proto_version(ctx);
  const int max = SSL_CTX_get_max_proto_version(ctx);
  if (tls13.empty() && max > TLS1_2_VERSION && min < TLS1_3_VERSION)
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  if (tls12.empty() && min < TLS1_3_VERSION && max > TLS1_2_VERSION)
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
}

// The system's store (OpenSSL's default paths), read on first use and shared by every context
// made without `ca`, as Node shares its root store: reading the bundle in /etc/ssl/certs takes
// some 25 ms, which a tls::connect without a secureContext paid for each connection. Freed at
// exit; contexts hold references of their own.
inline X509_STORE* systemStore() {
  struct Store {
    X509_STORE* store = X509_STORE_new();
    Store() {
      if (store == nullptr || X509_STORE_set_default_paths(store) != 1) {
        X509_STORE_free(store);
        throw std::system_error(lastSslError(), "evnet: the system's certificate store");
      }
    }
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;
    ~Store() { X509_STORE_free(store); }
  };
  static const Store system;  // a throw leaves it to be tried again by the next call
  return system.store;
}

// Whether SSL_free_buffers() may be called on a connection between records: it may free a
// record that is still being read before OpenSSL 3.0.14, 3.1.6, 3.2.2 and 3.3.1
// (CVE-2024-4741). Where it may not, OpenSSL frees the buffers itself after every record
// (SSL_MODE_RELEASE_BUFFERS).
inline bool canFreeBuffers() noexcept {
  const unsigned long version = OpenSSL_version_num();  // 0xMNN00PP0
  const unsigned long major = version >> 28;
  const unsigned long minor = (version >> 20) & 0xff;
  const unsigned long patch = (version >> 4) & 0xff;
  if (major != 3) return major > 3;
  constexpr unsigned long fixedIn[] = {14, 6, 2, 1};  // the patch release of 3.0, 3.1, 3.2, 3.3
  return minor >= std::size(fixedIn) || patch >= fixedIn[minor];
}
}  // namespace detail

/// Keys, certificates and protocol settings shared by many connections, on any number of
/// threads (Node: tls.SecureContext). A cheap handle; copies share one OpenSSL SSL_CTX.
class SecureContext {
 public:
  /// A handle to no context; only assignment and comparison are valid on it.
  SecureContext() = default;

  /// The OpenSSL context, for settings evnet has no option for. A context made without `ca`
  /// shares the system's certificate store with every other such context (Node: the root
  /// store): what is added to it is trusted by all of them.
  SSL_CTX* nativeHandle() const noexcept {
    return state_ ? state_->context.native_handle() : nullptr;
  }
  /// Whether the handle refers to a context.
  explicit operator bool() const noexcept { return state_ != nullptr; }
  friend bool operator==(const SecureContext&, const SecureContext&) = default;

  /// Internal: installs a server's handshake callbacks once, whichever thread's server comes first.
  void prepareServer(void (*install)(SSL_CTX*)) const {
    std::call_once(state_->serverPrepared, install, state_->context.native_handle());
  }
  /// Internal: installs a client's session callback once.
  void prepareClient(void (*install)(SSL_CTX*)) const {
    std::call_once(state_->clientPrepared, install, state_->context.native_handle());
  }

 private:
  friend SecureContext createSecureContext(const SecureContextOptions& options);
  struct State {
    asio::ssl::context context{asio::ssl::context::tls};
    std::once_flag serverPrepared;
    std::once_flag clientPrepared;
  };
  std::shared_ptr<State> state_;
};

/// Creates a SecureContext; throws std::system_error for a key or certificate OpenSSL rejects,
/// std::invalid_argument for an unknown protocol version (Node: tls.createSecureContext).
inline SecureContext createSecureContext(const SecureContextOptions& options = {}) {
  SecureContext result;
  result.state_ = std::make_shared<SecureContext::State>();
  asio::ssl::context* context = &result.state_->context;
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Idle connections hold no record buffers: a connection gives them back 100 ms after its
  // last record (detail::TlsLayer), or, with an older OpenSSL, after every record.
  if (!detail::canFreeBuffers()) SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // Node's: a client's new sessions (tickets) reach the "session" event, and nothing is cached
  // in the context (a server resumes by session tickets, which are on).
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_SERVER |
                                          SSL_SESS_CACHE_NO_INTERNAL |
                                          SSL_SESS_CACHE_NO_AUTO_CLEAR);
  detail::check(
      SSL_CTX_set_min_proto_version(ctx, detail::protocolVersion(options.minVersion)) == 1,
      "evnet: minVersion");
  detail::check(
      SSL_CTX_set_max_proto_version(ctx, detail::protocolVersion(options.maxVersion)) == 1,
      "evnet: maxVersion");
  if (!options.ciphers.empty()) detail::setCiphers(ctx, options.ciphers);
  static constexpr unsigned char kSessionIdContext[] = "evnet";
  SSL_CTX_set_session_id_context(ctx, kSessionIdContext, sizeof kSessionIdContext - 1);
  if (!options.passphrase.empty())
    context->set_password_callback(
        [passphrase = options.passphrase](std::size_t, asio::ssl::context::password_purpose) {
          return passphrase;
        });
  if (!options.cert.empty()) context->use_certificate_chain(asio::buffer(options.cert));
  if (!options.key.empty()) context->use_private_key(asio::buffer(options.key), context->pem);
  if (!options.ca.empty())
    context->add_certificate_authority(asio::buffer(options.ca));
  else
    SSL_CTX_set1_cert_store(ctx, detail::systemStore());
  if (!options.cert.empty()) {
    // The chain a server sends is built once, here: `cert`, then its issuers found in the store
    // (as Node adds them from `ca`), without the root. OpenSSL's default builds it again for
    // every handshake, a scan of /etc/ssl/certs each time with the system's store.
    ERR_set_mark();
    SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_UNTRUSTED | SSL_BUILD_CHAIN_FLAG_NO_ROOT |
                                      SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR);
    ERR_pop_to_mark();
    SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
  }
  return result;
}

}  // namespace evnet::tls

template <>
struct std::is_error_code_enum<evnet::tls::Errc> : std::true_type {};

#endif  // EVNET_TLS_SECURE_CONTEXT_HPP
