// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_TLS_LAYER_HPP
#define EVNET_DETAIL_TLS_LAYER_HPP

#include "evnet/buffer.hpp"
#include "evnet/detail/loop_service.hpp"
#include "evnet/detail/socket_impl.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/tls/options.hpp"
#include "evnet/tls/secure_context.hpp"

#include <asio/ip/address.hpp>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace evnet::detail {

// What a client connection needs of its options, shared by reconnects.
struct TlsClientConfig {
  tls::SecureContext context;
  std::string servername;  // sent as SNI when not an IP
  std::string checkName;   // the name the certificate must carry
  bool rejectUnauthorized = true;
  std::string alpn;  // wire format
  std::string session;
  unsigned handshakeTimeout = 0;
};

// ALPN's wire format: each name preceded by its length.
inline std::string alpnWireFormat(const std::vector<std::string>& protocols) {
  std::string wire;
  for (const std::string& name : protocols) {
    if (name.empty() || name.size() > 255) throw std::invalid_argument("evnet: ALPN protocol name");
    wire += static_cast<char>(name.size());
    wire += name;
  }
  return wire;
}

// Node's names for the certificate verification results (its authorizationError).
inline std::string x509ErrorName(long result) {
  switch (result) {
#define EVNET_X509_ERROR(name) \
  case X509_V_ERR_##name:      \
    return #name;
    EVNET_X509_ERROR(UNABLE_TO_GET_ISSUER_CERT)
    EVNET_X509_ERROR(UNABLE_TO_GET_CRL)
    EVNET_X509_ERROR(UNABLE_TO_DECRYPT_CERT_SIGNATURE)
    EVNET_X509_ERROR(UNABLE_TO_DECRYPT_CRL_SIGNATURE)
    EVNET_X509_ERROR(UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY)
    EVNET_X509_ERROR(CERT_SIGNATURE_FAILURE)
    EVNET_X509_ERROR(CRL_SIGNATURE_FAILURE)
    EVNET_X509_ERROR(CERT_NOT_YET_VALID)
    EVNET_X509_ERROR(CERT_HAS_EXPIRED)
    EVNET_X509_ERROR(CRL_NOT_YET_VALID)
    EVNET_X509_ERROR(CRL_HAS_EXPIRED)
    EVNET_X509_ERROR(ERROR_IN_CERT_NOT_BEFORE_FIELD)
    EVNET_X509_ERROR(ERROR_IN_CERT_NOT_AFTER_FIELD)
    EVNET_X509_ERROR(ERROR_IN_CRL_LAST_UPDATE_FIELD)
    EVNET_X509_ERROR(ERROR_IN_CRL_NEXT_UPDATE_FIELD)
    EVNET_X509_ERROR(OUT_OF_MEM)
    EVNET_X509_ERROR(DEPTH_ZERO_SELF_SIGNED_CERT)
    EVNET_X509_ERROR(SELF_SIGNED_CERT_IN_CHAIN)
    EVNET_X509_ERROR(UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
    EVNET_X509_ERROR(UNABLE_TO_VERIFY_LEAF_SIGNATURE)
    EVNET_X509_ERROR(CERT_CHAIN_TOO_LONG)
    EVNET_X509_ERROR(CERT_REVOKED)
    EVNET_X509_ERROR(INVALID_CA)
    EVNET_X509_ERROR(PATH_LENGTH_EXCEEDED)
    EVNET_X509_ERROR(INVALID_PURPOSE)
    EVNET_X509_ERROR(CERT_UNTRUSTED)
    EVNET_X509_ERROR(CERT_REJECTED)
    EVNET_X509_ERROR(HOSTNAME_MISMATCH)
#undef EVNET_X509_ERROR
  }
  return "UNSPECIFIED";
}

// The socket layer of a TLS connection (Node: TLSWrap). OpenSSL reads the records that the
// socket received straight from the socket's read buffer and writes the records it makes into
// output_, which the socket sends; both through a BIO of evnet's own, so no record is copied
// into a memory BIO and nothing is kept between reads. An idle connection holds no record
// buffer: OpenSSL's own go back 100 ms after the last record (see inUse), and output_ holds
// memory only while the kernel has not taken its records (drained, it goes back to the thread's
// spares, which the next connection to make records takes: no allocation per message either).
class TlsLayer {
 public:
  static constexpr bool secure = true;
  using Emitter =
      BasicSocketEmitter<Event<"secureConnect", void()>, Event<"session", void(Buffer)>>;

  TlsLayer() = default;
  TlsLayer(const TlsLayer&) = delete;
  TlsLayer& operator=(const TlsLayer&) = delete;
  ~TlsLayer() { reset(); }

  // --- set-up -----------------------------------------------------------------------------

  // An accepted connection of a server with these options (the server outlives it).
  void serve(const tls::ServerOptions& options) noexcept { server_ = &options; }
  // A client connection.
  void client(std::shared_ptr<const TlsClientConfig> config) noexcept {
    client_ = std::move(config);
  }

  // The server side's start: the client speaks first.
  template <class Socket>
  void accept(Socket& socket) {
    if (server_->secureContext) server_->secureContext.prepareServer(installServerCallbacks);
    if (!create(socket, server_->secureContext.nativeHandle())) return;
    SSL_set_accept_state(ssl_);
    // As Node: a client without a certificate fails the handshake itself (with an alert it
    // can report) when rejectUnauthorized; an untrusted one is judged once it is done.
    if (server_->requestCert)
      SSL_set_verify(ssl_,
                     SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE |
                         (server_->rejectUnauthorized ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                     acceptAnyChain);
    startTimer(socket, server_->handshakeTimeout);
  }

  // The client side's start, once TCP is connected: the ClientHello goes out.
  template <class Socket>
  void connect(Socket& socket) {
    if (client_->context) client_->context.prepareClient(installClientCallbacks);
    if (!create(socket, client_->context.nativeHandle())) return;
    SSL_set_connect_state(ssl_);
    SSL_set_verify(ssl_, SSL_VERIFY_PEER, acceptAnyChain);  // judged once the handshake is done
    if (!client_->servername.empty()) SSL_set_tlsext_host_name(ssl_, client_->servername.c_str());
    if (!client_->alpn.empty())
      SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(client_->alpn.data()),
                          static_cast<unsigned>(client_->alpn.size()));
    inUse(socket);
    if (!client_->session.empty()) {
      const auto* bytes = reinterpret_cast<const unsigned char*>(client_->session.data());
      if (SSL_SESSION* session =
              d2i_SSL_SESSION(nullptr, &bytes, static_cast<long>(client_->session.size()))) {
        SSL_set_session(ssl_, session);
        SSL_SESSION_free(session);
      }
    }
    startTimer(socket, client_->handshakeTimeout);
    handshake(socket);
  }

  // --- reading ----------------------------------------------------------------------------

  // Records from the kernel: the handshake's, then data, handed to socket.plaintext(). The
  // plaintext of the records that came together goes on in one piece (up to kReadBatch): one
  // "data" event, so that what its listeners write back goes out as one record in one send,
  // not a record and a send per record received.
  template <class Socket>
  void received(Socket& socket, const char* data, std::size_t size) {
    if (ssl_ == nullptr) return;
    inUse(socket);
    input_ = {data, size};
    struct Done {
      std::span<const char>& input;
      ~Done() { input = {}; }  // the bytes belong to the socket's read buffer
    } done{input_};
    if (!established_ && !handshake(socket)) return;
    const std::span<char> plain = plaintextBuffer();
    std::size_t filled = 0;
    for (;;) {
      const int n = SSL_read(ssl_, plain.data() + filled, static_cast<int>(plain.size() - filled));
      // Asked before the listeners run: a write of theirs on this connection changes the answer.
      const int error = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
      const std::error_code failed =
          error == SSL_ERROR_NONE || error == SSL_ERROR_WANT_READ || error == SSL_ERROR_ZERO_RETURN
              ? std::error_code()
              : failure(error);
      if (!sessions_.empty()) {  // new tickets: after the bytes gathered so far, before these
        if (!handOn(socket, plain.data(), filled) || !emitSessions(socket)) return;
        if (n > 0) std::memmove(plain.data(), plain.data() + filled, static_cast<std::size_t>(n));
        filled = 0;
      }
      if (n > 0) {
        filled += static_cast<std::size_t>(n);
        if (filled == plain.size() && !handOn(socket, plain.data(), std::exchange(filled, 0)))
          return;
        continue;
      }
      if (!handOn(socket, plain.data(), filled)) return;
      if (error == SSL_ERROR_WANT_READ) break;
      if (error == SSL_ERROR_ZERO_RETURN) return socket.endBehindHeld();  // the peer's close_notify
      return socket.destroy(failed);
    }
    if (!output_.empty()) socket.flush();  // e.g. the answer to a key update
  }

  // Hands n bytes of plaintext to the socket; false if that destroyed it.
  template <class Socket>
  bool handOn(Socket& socket, const char* data, std::size_t n) {
    if (n != 0) socket.plaintext(data, n);
    return !socket.destroyed() && ssl_ != nullptr;
  }

  // The peer's FIN before the handshake ended (Node: ECONNRESET, "Client network socket
  // disconnected before secure TLS connection was established").
  template <class Socket>
  void endedBeforeSecure(Socket& socket) {
    fail(socket, std::make_error_code(std::errc::connection_reset));
  }

  // --- writing ----------------------------------------------------------------------------

  bool established() const noexcept { return established_; }
  std::span<const char> output() const noexcept {
    return {output_.data() + sent_, output_.size() - sent_};
  }
  void sent(std::size_t n) noexcept {
    sent_ += n;
    if (sent_ < output_.size()) return;
    sent_ = 0;
    releaseOutput();
  }
  // The records made so far, for a send that takes them along (io_uring), with the bytes of
  // them already sent in `sent`: output_ starts afresh, and what OpenSSL writes meanwhile (the
  // answer to a key update) goes after them. Their memory comes back with recycle().
  std::string takeOutput(std::size_t& sent) noexcept {
    sent = std::exchange(sent_, 0);
    return std::exchange(output_, std::string());
  }
  static void recycle(std::string& records) noexcept { release(records); }
  // Plaintext whose records have all gone out since the last call.
  std::size_t takeSentPlaintext() noexcept {
    return output_.empty() ? std::exchange(encrypted_, 0) : 0;
  }

  // Encrypts up to a batch of queued bytes into records; returns how many it took. Small
  // writes are joined into one record, as one write of theirs would be.
  template <class Socket>
  std::size_t encrypt(Socket& socket, const iovec* iov, int count) {
    inUse(socket);
    std::size_t taken = 0;
    const std::span<char> join = joinBuffer();
    int i = 0;
    std::size_t offset = 0;  // into iov[i]
    while (i < count && taken < kBatch) {
      const char* data = static_cast<const char*>(iov[i].iov_base) + offset;
      std::size_t size = iov[i].iov_len - offset;
      if (size < kJoinBelow && i + 1 < count) {  // join small buffers
        size = 0;
        while (i < count && size < join.size()) {
          const std::size_t n = std::min(iov[i].iov_len - offset, join.size() - size);
          std::memcpy(join.data() + size, static_cast<const char*>(iov[i].iov_base) + offset, n);
          size += n;
          offset += n;
          if (offset == iov[i].iov_len) ++i, offset = 0;
        }
        data = join.data();
      } else {
        size = std::min(size, kBatch - taken);
        offset += size;
        if (offset == iov[i].iov_len) ++i, offset = 0;
      }
      const int n = SSL_write(ssl_, data, static_cast<int>(size));
      if (n <= 0) {
        socket.destroy(failure(SSL_get_error(ssl_, n)));
        return taken;
      }
      taken += size;
    }
    encrypted_ += taken;
    return taken;
  }

  // Queues close_notify, once; false if the socket failed.
  template <class Socket>
  bool shutdown(Socket& socket) {
    if (closeNotify_) return true;
    closeNotify_ = true;
    inUse(socket);
    ERR_clear_error();
    if (SSL_shutdown(ssl_) < 0) {
      const int error = SSL_get_error(ssl_, -1);
      if (error != SSL_ERROR_WANT_READ) {
        socket.destroy(failure(error));
        return false;
      }
    }
    return true;
  }

  // --- closing ----------------------------------------------------------------------------

  template <class Socket>
  void destroyed(Socket& socket) noexcept {
    socket.loop().unenroll(timer_);
    socket.loop().unenroll(buffers_);
    releaseOutput();
    sent_ = encrypted_ = 0;
  }

  // For a new connection of the same socket (reconnect): the settings stay.
  void reset() noexcept {
    if (ssl_ != nullptr) SSL_free(std::exchange(ssl_, nullptr));
    established_ = closeNotify_ = authorized_ = false;
    authorizationError_.clear();
    sessions_.clear();
    output_ = std::string();
    sent_ = encrypted_ = 0;
  }

  // --- properties -------------------------------------------------------------------------

  SSL* ssl() const noexcept { return ssl_; }
  bool authorized() const noexcept { return authorized_; }
  const std::string& authorizationError() const noexcept { return authorizationError_; }
  const std::string& servername() const noexcept { return servername_; }

 private:
  static constexpr std::size_t kBatch = 64 * 1024;          // plaintext encrypted per send
  static constexpr std::size_t kJoinBelow = 4 * 1024;       // writes shorter than this are joined
  static constexpr std::size_t kKeepSpare = 96 * 1024;      // a spare output buffer, at most
  static constexpr std::size_t kSpareBytes = 256 * 1024;    // a thread's spare buffers, at most
  static constexpr std::size_t kSpareCount = 64;            // a thread's spare buffers, at most
  static constexpr std::size_t kPlaintextSize = 16 * 1024;  // a record's most
  static constexpr std::size_t kReadBatch = 64 * 1024;      // plaintext handed on at once
  static constexpr std::int64_t kKeepBuffersMs = 100;       // OpenSSL's, after the last record

  // A record is read or written now. OpenSSL's record buffers (34 KB) stay while records come
  // and go, and are freed once 100 ms have passed without one: a busy connection does not
  // allocate and free them for every record, as SSL_MODE_RELEASE_BUFFERS does (a tenth of the
  // instructions of an echoed message), and an idle one holds none. (A second instead grew a
  // server's memory after a burst of new connections, held idle, by 10% per connection: more
  // of them held their buffers at once, and the heap keeps what that took.) The timer that
  // frees them does not keep the loop running.
  template <class Socket>
  void inUse(Socket& socket) {
    if (buffers_.list != nullptr) return socket.loop().touch(buffers_);
    static const bool canFree = tls::detail::canFreeBuffers();
    if (!canFree || socket.destroyed()) return;
    buffers_.owner = this;
    buffers_.onTimeout = [](IdleEntry* entry) {
      if (SSL* ssl = static_cast<TlsLayer*>(entry->owner)->ssl_) SSL_free_buffers(ssl);
    };
    socket.loop().enroll(buffers_, kKeepBuffersMs, false);
  }

  // One buffer per thread for decrypted records, one for joined writes: a loop runs on one
  // thread, and a socket hands the plaintext on before it reads more. (A "data" listener may
  // write to another socket, which encrypts at once: the two must differ.)
  static std::span<char> plaintextBuffer() {
    thread_local const std::unique_ptr<char[]> buffer(new char[kReadBatch]);
    return {buffer.get(), kReadBatch};
  }
  static std::span<char> joinBuffer() {
    thread_local const std::unique_ptr<char[]> buffer(new char[kPlaintextSize]);
    return {buffer.get(), kPlaintextSize};
  }
  // The memory of drained output buffers, for the next ones on this thread: as many as there
  // are records on their way at once (on io_uring, each send holds its own until the kernel
  // took them: one per connection with a send in flight), within kSpareCount and kSpareBytes.
  struct SpareOutputs {
    std::array<std::string, kSpareCount> kept;
    std::size_t count = 0;
    std::size_t bytes = 0;
  };
  static SpareOutputs& spareOutputs() noexcept {
    thread_local SpareOutputs spare;
    return spare;
  }
  // Empties a buffer of records and lets its memory go: to the spares while they have room,
  // else back to the heap.
  static void release(std::string& records) noexcept {
    records.clear();
    SpareOutputs& spare = spareOutputs();
    const std::size_t size = records.capacity();
    if (size <= kKeepSpare && spare.count < kSpareCount && spare.bytes + size <= kSpareBytes) {
      spare.kept[spare.count++].swap(records);
      spare.bytes += size;
    }
    std::string().swap(records);
  }
  // Gives an empty output buffer the memory of the last spare, if it has more.
  static void takeSpare(std::string& output) noexcept {
    SpareOutputs& spare = spareOutputs();
    if (spare.count == 0 || spare.kept[spare.count - 1].capacity() <= output.capacity()) return;
    std::string& kept = spare.kept[--spare.count];
    spare.bytes -= kept.capacity();
    output.swap(kept);
    std::string().swap(kept);
  }
  void releaseOutput() noexcept { release(output_); }

  template <class Socket>
  bool create(Socket& socket, SSL_CTX* context) {
    reset();
    ssl_ = context != nullptr ? SSL_new(context) : nullptr;
    if (ssl_ == nullptr) {
      socket.destroy(context != nullptr ? tls::detail::lastSslError()
                                        : std::make_error_code(std::errc::invalid_argument));
      return false;
    }
    BIO* bio = BIO_new(bioMethod());
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl_, bio, bio);
    SSL_set_app_data(ssl_, this);
    return true;
  }

  template <class Socket>
  void startTimer(Socket& socket, unsigned ms) {
    if (ms == 0 || socket.destroyed()) return;
    timer_.owner = &socket;
    timer_.onTimeout = [](IdleEntry* entry) {
      auto& timedOut = *static_cast<Socket*>(entry->owner);
      timedOut.layer().fail(timedOut, tls::make_error_code(tls::Errc::handshakeTimeout));
    };
    socket.loop().enroll(timer_, ms);
  }

 public:
  // A failed handshake: a server's socket reports it as the server's "tlsClientError" and
  // closes; a client's emits "error".
  template <class Socket>
  void fail(Socket& socket, std::error_code ec) {
    socket.loop().unenroll(timer_);
    if (!output_.empty()) socket.flush();  // the alert that tells the peer why, if it can go
    if (server_ != nullptr && !established_) {
      if (auto* owner = socket.owner()) {
        try {
          owner->connectionFailed(socket, ec);
        } catch (...) {
          socket.destroy();
          throw;
        }
      }
      return socket.destroy();
    }
    socket.destroy(ec);
  }

 private:
  // Advances the handshake; true once it is done and the socket still open.
  template <class Socket>
  bool handshake(Socket& socket) {
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl_);
    if (result != 1) {
      const int error = SSL_get_error(ssl_, result);
      if (error != SSL_ERROR_WANT_READ) {
        fail(socket, failure(error));
        return false;
      }
      if (!output_.empty()) socket.flush();
      return false;
    }
    established_ = true;
    socket.loop().unenroll(timer_);
    if (server_ != nullptr ? !verifiedClient(socket) : !verifiedServer(socket)) return false;
    if (server_ != nullptr) {
      if (auto* owner = socket.owner()) {
        try {
          owner->connectionSecured(socket);
        } catch (...) {
          socket.destroy();
          throw;
        }
      }
    } else {
      socket.template emitOrDestroy<"secureConnect">();
      if (!sessions_.empty() && !emitSessions(socket)) return false;  // TLS 1.2's ticket
    }
    if (socket.destroyed()) return false;
    socket.flush();  // what was written meanwhile, and the handshake's last flight
    return !socket.destroyed();
  }

  // Node's onConnectSecure: the chain's verification result, then the name (unless the session
  // was resumed); rejected, or recorded in authorized() / authorizationError().
  template <class Socket>
  bool verifiedServer(Socket& socket) {
    std::error_code ec;
    const long result = SSL_get_verify_result(ssl_);
    if (result != X509_V_OK) {
      authorizationError_ = x509ErrorName(result);
      ec = {static_cast<int>(result), tls::x509Category()};
    } else if (!SSL_session_reused(ssl_) && !nameMatches()) {
      authorizationError_ = "ERR_TLS_CERT_ALTNAME_INVALID";
      ec = tls::make_error_code(tls::Errc::certAltnameInvalid);
    }
    authorized_ = !ec;
    if (ec && client_->rejectUnauthorized) {
      socket.destroy(ec);
      return false;
    }
    return true;
  }

  // Node's onServerSocketSecure: with requestCert, a client without a trusted certificate is
  // refused when rejectUnauthorized.
  template <class Socket>
  bool verifiedClient(Socket& socket) {
    if (!server_->requestCert) return true;
    X509* peer = SSL_get1_peer_certificate(ssl_);
    const long result =
        peer == nullptr ? X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT : SSL_get_verify_result(ssl_);
    X509_free(peer);
    if (peer == nullptr)
      authorizationError_ = "UNABLE_TO_GET_ISSUER_CERT";
    else if (result != X509_V_OK)
      authorizationError_ = x509ErrorName(result);
    authorized_ = peer != nullptr && result == X509_V_OK;
    if (!authorized_ && server_->rejectUnauthorized) {
      established_ = false;  // reported as a failed handshake
      fail(socket, std::error_code(static_cast<int>(result), tls::x509Category()));
      return false;
    }
    return true;
  }

  bool nameMatches() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return false;
    const std::string& name = client_->checkName;
    std::error_code ec;
    asio::ip::make_address(name, ec);
    const bool match = !ec ? X509_check_ip_asc(cert, name.c_str(), 0) == 1
                           : X509_check_host(cert, name.data(), name.size(),
                                             X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, nullptr) == 1;
    X509_free(cert);
    return match;
  }

  // OpenSSL's error for a failed call, or the system's.
  std::error_code failure(int error) const {
    if (error == SSL_ERROR_SSL) {
      std::error_code ec = tls::detail::lastSslError();
      ERR_clear_error();
      return ec;
    }
    if (error == SSL_ERROR_SYSCALL && errno != 0) return {errno, std::system_category()};
    return std::make_error_code(std::errc::connection_reset);
  }

  // The chain is judged after the handshake, as Node does (authorized / authorizationError).
  static int acceptAnyChain(int, X509_STORE_CTX*) noexcept { return 1; }

  // A client's new sessions, each in a "session" event (Node: 'session', one per TLS 1.3
  // ticket); false if the socket was destroyed.
  template <class Socket>
  bool emitSessions(Socket& socket) {
    std::vector<std::string> sessions = std::exchange(sessions_, {});
    for (const std::string& session : sessions) {
      socket.template emitOrDestroy<"session">(Buffer(session));
      if (socket.destroyed()) return false;
    }
    return true;
  }

  // --- the client's sessions, the server's SNI and ALPN -----------------------------------

  static void installClientCallbacks(SSL_CTX* context) {
    SSL_CTX_sess_set_new_cb(context, onNewSession);
  }
  // Kept until OpenSSL returns, then emitted: a listener must not run inside OpenSSL.
  static int onNewSession(SSL* ssl, SSL_SESSION* session) {
    TlsLayer* layer = of(ssl);
    if (layer == nullptr || layer->client_ == nullptr || SSL_SESSION_is_resumable(session) != 1)
      return 0;
    const int size = i2d_SSL_SESSION(session, nullptr);
    if (size <= 0) return 0;
    std::string bytes(static_cast<std::size_t>(size), '\0');
    auto* out = reinterpret_cast<unsigned char*>(bytes.data());
    i2d_SSL_SESSION(session, &out);
    layer->sessions_.push_back(std::move(bytes));
    return 0;  // not kept: the event has its bytes
  }

  static void installServerCallbacks(SSL_CTX* context) {
    SSL_CTX_set_tlsext_servername_callback(context, onServername);
    SSL_CTX_set_alpn_select_cb(context, onAlpn, nullptr);
  }
  static TlsLayer* of(SSL* ssl) noexcept { return static_cast<TlsLayer*>(SSL_get_app_data(ssl)); }

  static int onServername(SSL* ssl, int*, void*) {
    TlsLayer* layer = of(ssl);
    if (layer == nullptr || layer->server_ == nullptr) return SSL_TLSEXT_ERR_OK;
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == nullptr) return SSL_TLSEXT_ERR_OK;
    layer->servername_ = name;
    if (!layer->server_->SNICallback) return SSL_TLSEXT_ERR_OK;
    try {
      const tls::SecureContext context = layer->server_->SNICallback(layer->servername_);
      if (context) {
        context.prepareServer(installServerCallbacks);
        SSL_set_SSL_CTX(ssl, context.nativeHandle());
      }
    } catch (...) {
      return SSL_TLSEXT_ERR_ALERT_FATAL;  // the handshake fails: "tlsClientError"
    }
    return SSL_TLSEXT_ERR_OK;
  }

  static int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* outSize,
                    const unsigned char* offered, unsigned offeredSize, void*) {
    TlsLayer* layer = of(ssl);
    if (layer == nullptr || layer->server_ == nullptr || layer->server_->ALPNProtocols.empty())
      return SSL_TLSEXT_ERR_NOACK;
    for (const std::string& name : layer->server_->ALPNProtocols) {  // the server's preference
      for (unsigned i = 0; i < offeredSize; i += 1u + offered[i]) {
        if (offered[i] == name.size() && i + 1 + offered[i] <= offeredSize &&
            std::memcmp(offered + i + 1, name.data(), name.size()) == 0) {
          *out = offered + i + 1;
          *outSize = offered[i];
          return SSL_TLSEXT_ERR_OK;
        }
      }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // no protocol in common: refused, as Node 20
  }

  // --- the BIO between OpenSSL and the socket ---------------------------------------------

  static BIO_METHOD* bioMethod() {
    static BIO_METHOD* const method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "evnet socket");
      BIO_meth_set_read_ex(m, bioRead);
      BIO_meth_set_write_ex(m, bioWrite);
      BIO_meth_set_ctrl(m, bioCtrl);
      return m;
    }();
    return method;
  }
  static int bioRead(BIO* bio, char* out, std::size_t size, std::size_t* read) {
    auto* layer = static_cast<TlsLayer*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    if (layer->input_.empty()) {
      BIO_set_retry_read(bio);
      *read = 0;
      return 0;
    }
    const std::size_t n = std::min(size, layer->input_.size());
    std::memcpy(out, layer->input_.data(), n);
    layer->input_ = layer->input_.subspan(n);
    *read = n;
    return 1;
  }
  static int bioWrite(BIO* bio, const char* data, std::size_t size, std::size_t* written) {
    auto* layer = static_cast<TlsLayer*>(BIO_get_data(bio));
    BIO_clear_retry_flags(bio);
    std::string& output = layer->output_;
    if (output.empty()) takeSpare(output);
    output.append(data, size);
    *written = size;
    return 1;
  }
  static long bioCtrl(BIO*, int command, long, void*) { return command == BIO_CTRL_FLUSH ? 1 : 0; }

  SSL* ssl_ = nullptr;
  const tls::ServerOptions* server_ = nullptr;     // a server's connection
  std::shared_ptr<const TlsClientConfig> client_;  // a client
  std::span<const char> input_;                    // records received, while received() runs
  std::string output_;                             // records to send
  std::size_t sent_ = 0;                           // of output_
  std::size_t encrypted_ = 0;                      // plaintext in output_
  IdleEntry timer_;                                // the handshake's deadline
  IdleEntry buffers_;                              // OpenSSL's record buffers' (see inUse)
  std::string authorizationError_;
  std::string servername_;
  std::vector<std::string> sessions_;  // a client's new sessions, not yet emitted
  bool established_ = false;
  bool closeNotify_ = false;
  bool authorized_ = false;
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_TLS_LAYER_HPP
