// Helpers of the TLS tests: a small PKI made at run time with OpenSSL (no key or certificate is
// committed), written to PEM text and to files for the peers that want files (Node, openssl).
#ifndef EVNET_TESTS_TLS_TEST_UTIL_HPP
#define EVNET_TESTS_TLS_TEST_UTIL_HPP

#include <evnet/tls.hpp>

#include "net_test_util.hpp"

#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace evnet_test {

/// A key and its certificate, PEM text.
struct Credentials {
  std::string key;
  std::string cert;
};

namespace detail {
struct KeyFree {
  void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const noexcept { X509_free(cert); }
};
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

inline std::string pem(const std::function<void(BIO*)>& write) {
  BIO* bio = BIO_new(BIO_s_mem());
  write(bio);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(size));
  BIO_free(bio);
  return text;
}

inline void addExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX context;
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value);
  REQUIRE(extension != nullptr);
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}
}  // namespace detail

/// An issuer: a CA's key and certificate (or a leaf's, to sign nothing).
struct Issued {
  detail::Key key;
  detail::Cert cert;
  Credentials pem() const {
    return {detail::pem([&](BIO* bio) {
              PEM_write_bio_PrivateKey(bio, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
            }),
            detail::pem([&](BIO* bio) { PEM_write_bio_X509(bio, cert.get()); })};
  }
};

/// What a certificate says.
struct CertSpec {
  std::string commonName;
  std::string altNames;  // "DNS:localhost,IP:127.0.0.1"; empty: none
  bool ca = false;
  long validFromSeconds = -3600;  // relative to now
  long validToSeconds = 24 * 3600;
};

/// Makes a P-256 key and a certificate signed by issuer (self-signed without one).
inline Issued issue(const CertSpec& spec, const Issued* issuer = nullptr) {
  static long serial = 1000;
  Issued made{detail::Key(EVP_EC_gen("P-256")), detail::Cert(X509_new())};
  REQUIRE(made.key != nullptr);
  X509* cert = made.cert.get();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), ++serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), spec.validFromSeconds);
  X509_gmtime_adj(X509_getm_notAfter(cert), spec.validToSeconds);
  X509_set_pubkey(cert, made.key.get());
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("evnet tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(spec.commonName.c_str()), -1,
                             -1, 0);
  X509* signer = issuer != nullptr ? issuer->cert.get() : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(signer));
  detail::addExtension(cert, signer, NID_basic_constraints,
                       spec.ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
  if (spec.ca) detail::addExtension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  if (!spec.altNames.empty())
    detail::addExtension(cert, signer, NID_subject_alt_name, spec.altNames.c_str());
  REQUIRE(X509_sign(cert, issuer != nullptr ? issuer->key.get() : made.key.get(), EVP_sha256()) >
          0);
  return made;
}
inline CertSpec leaf(std::string commonName, std::string altNames) {
  CertSpec spec;
  spec.commonName = std::move(commonName);
  spec.altNames = std::move(altNames);
  return spec;
}
inline CertSpec authority(std::string commonName) {
  CertSpec spec;
  spec.commonName = std::move(commonName);
  spec.ca = true;
  return spec;
}
inline CertSpec expiredLeaf() {
  CertSpec spec = leaf("localhost", "DNS:localhost,IP:127.0.0.1");
  spec.validFromSeconds = -2 * 24 * 3600;
  spec.validToSeconds = -24 * 3600;
  return spec;
}

/// The certificates the TLS tests use, made once per process.
struct TestPki {
  Issued ca = issue(authority("evnet test CA"));
  Issued otherCa = issue(authority("another CA"));
  Credentials server = issue(leaf("localhost", "DNS:localhost,IP:127.0.0.1,IP:::1"), &ca).pem();
  Credentials client = issue(leaf("evnet client", ""), &ca).pem();
  Credentials otherName = issue(leaf("example.com", "DNS:example.com"), &ca).pem();
  Credentials expired = issue(expiredLeaf(), &ca).pem();
  Credentials untrusted = issue(leaf("localhost", "DNS:localhost,IP:127.0.0.1"), &otherCa).pem();
  Credentials selfSigned = issue(leaf("localhost", "DNS:localhost,IP:127.0.0.1")).pem();
  std::string caPem = ca.pem().cert;

  static const TestPki& get() {
    static const TestPki pki;
    return pki;
  }
};

/// A context with these credentials (a server's, or a client's for mutual TLS).
inline evnet::tls::SecureContext contextFor(const Credentials& credentials,
                                            const std::string& ca = TestPki::get().caPem) {
  evnet::tls::SecureContextOptions options;
  options.key = credentials.key;
  options.cert = credentials.cert;
  options.ca = ca;
  return evnet::tls::createSecureContext(options);
}

/// Client options for 127.0.0.1:port trusting the test CA, checking the name "localhost".
inline evnet::tls::ConnectOptions clientOptions(unsigned short port) {
  evnet::tls::ConnectOptions options;
  options.port = port;
  options.host = "127.0.0.1";
  options.servername = "localhost";
  options.ca = TestPki::get().caPem;
  return options;
}

/// Server options with the test server's credentials.
inline evnet::tls::ServerOptions serverOptions(
    const Credentials& credentials = TestPki::get().server) {
  evnet::tls::ServerOptions options;
  options.secureContext = contextFor(credentials);
  return options;
}

/// The key, encrypted with a passphrase (AES-256-CBC), PEM text.
inline std::string encryptedKey(const std::string& keyPem, const std::string& passphrase) {
  BIO* in = BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size()));
  detail::Key key(PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr));
  BIO_free(in);
  REQUIRE(key != nullptr);
  return detail::pem([&](BIO* bio) {
    PEM_write_bio_PrivateKey(bio, key.get(), EVP_aes_256_cbc(),
                             reinterpret_cast<const unsigned char*>(passphrase.data()),
                             static_cast<int>(passphrase.size()), nullptr, nullptr);
  });
}

/// A peer of OpenSSL's own, blocking on a thread of its own: for what evnet's API does not do
/// (a client that renegotiates, a server that sends close_notify and keeps TCP open). `body`
/// gets a connected TCP socket whose reads time out after 5 s, and an SSL on it; the thread is
/// joined when this goes. Connects to `port`, or with port 0 listens and accepts one
/// connection (port() says where).
class RawTlsPeer {
 public:
  using Body = std::function<void(int fd, SSL* ssl)>;
  RawTlsPeer(SSL_CTX* context, unsigned short port, Body body) : context_(context) {
    SSL_CTX_up_ref(context_);
    if (port == 0) {
      listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in address = loopback(0);
      socklen_t size = sizeof address;
      REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
      REQUIRE(::listen(listener_, 1) == 0);
      REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &size) == 0);
      port_ = ntohs(address.sin_port);
    }
    thread_ = std::thread([this, port, body = std::move(body)] {
      sigset_t pipe;  // a write to a closed connection fails with EPIPE, not the process
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      int fd = -1;
      if (port == 0) {
        fd = ::accept(listener_, nullptr, nullptr);
      } else {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const sockaddr_in address = loopback(port);
        if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
          ::close(fd);
          fd = -1;
        }
      }
      if (fd < 0) return;
      const timeval timeout{5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
      SSL* ssl = SSL_new(context_);
      SSL_set_fd(ssl, fd);
      body(fd, ssl);
      SSL_free(ssl);
      ::close(fd);
    });
  }
  RawTlsPeer(const RawTlsPeer&) = delete;
  RawTlsPeer& operator=(const RawTlsPeer&) = delete;
  ~RawTlsPeer() {
    if (listener_ >= 0) ::shutdown(listener_, SHUT_RDWR);  // an accept() that waits ends
    thread_.join();
    if (listener_ >= 0) ::close(listener_);
    SSL_CTX_free(context_);
  }
  unsigned short port() const noexcept { return port_; }

 private:
  static sockaddr_in loopback(unsigned short port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
  }
  SSL_CTX* context_;
  int listener_ = -1;
  unsigned short port_ = 0;
  std::thread thread_;
};

/// Writes text to a file.
inline void writeFile(const std::string& path, std::string_view text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace evnet_test

#endif  // EVNET_TESTS_TLS_TEST_UTIL_HPP
