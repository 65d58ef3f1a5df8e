// evnet::tls: handshakes, verification, ALPN, SNI, mutual TLS, sessions, the net::Socket
// behaviour (backpressure, half-close, pipe) over TLS, and net.connect's options on tls::connect
// (localAddress, family, lookup, Happy Eyeballs, blockList, timeout, path, signal). Certificates
// are made at run time.
#include <evnet/tls.hpp>

#include "tls_test_util.hpp"

#include <doctest/doctest.h>

#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <sys/syscall.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

using namespace evnet_test;
namespace tls = evnet::tls;
namespace net = evnet::net;

namespace {

// A TLS echo server on the loop, listening on 127.0.0.1.
struct TlsEchoFixture {
  asio::io_context loop;
  tls::Server server = tls::createServer(
      serverOptions(), [](tls::Socket socket) { socket.pipe(socket); }, loop);
  unsigned short port = listenLocal(loop, server);
};

// The first line a program prints, without its newline (REQUIRE: it ran and printed one).
std::string firstLineOf(const std::string& executable, const std::vector<std::string>& args) {
  asio::io_context loop;
  ChildProcess child(loop, executable, args);
  REQUIRE(runUntil(loop, [&] { return child.outputEnded(); }));
  REQUIRE(!child.firstLine().empty());
  return child.firstLine();
}

// A server on the loop whose context options `configure` sets (with the test PKI's server
// credentials), recording its tlsClientErrors; echoes.
struct ContextServer {
  using Configure = std::function<void(tls::SecureContextOptions&)>;
  ContextServer(asio::io_context& loop, const Configure& configure)
      : server(tls::createServer(
            with(configure), [](tls::Socket socket) { socket.pipe(socket); }, loop)) {
    server.on("tlsClientError", [this](std::error_code ec, tls::Socket) { errors.push_back(ec); });
    port = listenLocal(loop, server);
  }
  static tls::ServerOptions with(const Configure& configure) {
    tls::SecureContextOptions context;
    configure(context);
    context.key = TestPki::get().server.key;
    context.cert = TestPki::get().server.cert;
    context.ca = TestPki::get().caPem;
    tls::ServerOptions options;
    options.secureContext = tls::createSecureContext(context);
    return options;
  }
  tls::Server server;
  unsigned short port = 0;
  std::vector<std::error_code> errors;
};

// Connects with these options and runs the loop until the client closed; its error, if any.
struct Outcome {
  bool secure = false;
  std::string protocol;
  std::string cipher;
  std::error_code error;
};
Outcome handshake(asio::io_context& loop, const tls::ConnectOptions& options) {
  Outcome outcome;
  tls::Socket client = tls::connect(options, {}, loop);
  client.on("secureConnect", [&] {
    outcome.secure = true;
    outcome.protocol = client.getProtocol();
    outcome.cipher = client.getCipher().name;
    client.end();
  });
  client.on("error", [&](std::error_code ec) { outcome.error = ec; });
  bool closed = false;
  client.on("close", [&](bool) { closed = true; });
  REQUIRE(runUntil(loop, [&] { return closed; }));
  return outcome;
}

}  // namespace

TEST_CASE_FIXTURE(TlsEchoFixture, "a TLS client and server exchange data after the handshake") {
  Log log;
  std::string reply;
  bool closed = false;
  tls::Socket client = tls::connect(
      clientOptions(port), [&] { log.push_back("secureConnect"); }, loop);
  client.on("connect", [&] { log.push_back("connect"); });
  client.on("secureConnect", [&] {
    CHECK(client.authorized());
    CHECK(client.authorizationError().empty());
    CHECK(client.getProtocol() == "TLSv1.3");
    CHECK(!client.getCipher().name.empty());
    CHECK(client.getCipher().version == "TLSv1.3");
    client.end("hello over TLS");
  });
  client.on("data", [&](evnet::Buffer chunk) { reply.append(chunk); });
  client.on("end", [&] { log.push_back("end"); });
  client.on("close", [&](bool hadError) {
    CHECK(!hadError);
    closed = true;
  });
  REQUIRE(runUntil(loop, [&] { return closed; }));
  CHECK(reply == "hello over TLS");
  CHECK(log == Log{"connect", "secureConnect", "end"});
  CHECK(client.bytesWritten() == 14);  // plaintext, as Node counts
  CHECK(client.bytesRead() == 14);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE_FIXTURE(TlsEchoFixture, "the server emits connection, then secureConnection") {
  Log log;
  server.on("connection", [&](tls::Socket) { log.push_back("connection"); });
  server.on("secureConnection", [&](tls::Socket socket) {
    log.push_back("secureConnection");
    CHECK(socket.getProtocol() == "TLSv1.3");
    CHECK(socket.servername() == "localhost");
    CHECK(!socket.authorized());  // no client certificate was asked for
  });
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  CHECK(endAndReadReply(loop, client, "x") == "x");
  CHECK(log == Log{"connection", "secureConnection"});
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE_FIXTURE(TlsEchoFixture,
                  "getPeerCertificate gives subject, issuer, names and fingerprint") {
  tls::PeerCertificate cert;
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  client.on("secureConnect", [&] {
    cert = client.getPeerCertificate();
    client.destroy();
  });
  REQUIRE(runUntil(loop, [&] { return client.destroyed(); }));
  CHECK(cert.subject.at("CN") == "localhost");
  CHECK(cert.issuer.at("CN") == "evnet test CA");
  CHECK(cert.subjectaltname == "DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1");
  // Node's exact format, as Node and openssl print the same certificate's.
  const TempDir dir;
  const std::string file = dir.file("cert.pem");
  writeFile(file, TestPki::get().server.cert);
  const std::string openssl =
      firstLineOf("/usr/bin/openssl", {"x509", "-noout", "-fingerprint", "-sha256", "-in", file});
  CHECK(openssl.substr(openssl.find('=') + 1) == cert.fingerprint256);  // "sha256 Fingerprint=.."
  CHECK(cert.fingerprint256.size() == 32 * 3 - 1);
  if (const std::string node = nodeExecutable(); !node.empty()) {
    CHECK(firstLineOf(node, {"-e",
                             "const {X509Certificate} = require('crypto');"
                             "console.log(new X509Certificate(require('fs')"
                             ".readFileSync(process.argv[1])).fingerprint256)",
                             file}) == cert.fingerprint256);
  }
  CHECK(cert.valid_to.ends_with(" GMT"));
  CHECK(!cert.serialNumber.empty());
  CHECK(!cert.raw.empty());
  CHECK(closeAndRunToCompletion(loop, server));
}

namespace {
// Connects to a server presenting `credentials` with the test CA trusted; returns the client's
// error and what it says of the certificate.
struct Rejection {
  std::error_code error;
  bool secureConnect = false;
  bool authorized = true;
  std::string authorizationError;
};
Rejection connectTo(const Credentials& credentials, bool rejectUnauthorized,
                    const std::string& servername = "localhost") {
  asio::io_context loop;
  tls::Server server = tls::createServer(
      serverOptions(credentials), [](tls::Socket socket) { socket.pipe(socket); }, loop);
  const unsigned short port = listenLocal(loop, server);
  tls::ConnectOptions options = clientOptions(port);
  options.servername = servername;
  options.rejectUnauthorized = rejectUnauthorized;
  Rejection result;
  tls::Socket client = tls::connect(options, {}, loop);
  client.on("secureConnect", [&] {
    result.secureConnect = true;
    client.end();
  });
  client.on("error", [&](std::error_code ec) { result.error = ec; });
  bool closed = false;
  client.on("close", [&](bool) { closed = true; });
  REQUIRE(runUntil(loop, [&] { return closed; }));
  result.authorized = client.authorized();
  result.authorizationError = client.authorizationError();
  CHECK(closeAndRunToCompletion(loop, server));
  return result;
}
}  // namespace

TEST_CASE("a certificate from an unknown CA fails with UNABLE_TO_VERIFY_LEAF_SIGNATURE") {
  const Rejection result = connectTo(TestPki::get().untrusted, true);
  CHECK(!result.secureConnect);
  CHECK(result.error ==
        std::error_code(X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, tls::x509Category()));
  CHECK(result.error.message() == "unable to verify the first certificate");
  CHECK(result.authorizationError == "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
}

TEST_CASE("a self-signed certificate fails with DEPTH_ZERO_SELF_SIGNED_CERT") {
  const Rejection result = connectTo(TestPki::get().selfSigned, true);
  CHECK(!result.secureConnect);
  CHECK(result.error.value() == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
  CHECK(result.error.message() == "self-signed certificate");
  CHECK(result.authorizationError == "DEPTH_ZERO_SELF_SIGNED_CERT");
}

TEST_CASE("an expired certificate fails with CERT_HAS_EXPIRED") {
  const Rejection result = connectTo(TestPki::get().expired, true);
  CHECK(!result.secureConnect);
  CHECK(result.error.value() == X509_V_ERR_CERT_HAS_EXPIRED);
  CHECK(result.authorizationError == "CERT_HAS_EXPIRED");
}

TEST_CASE("a certificate for another name fails with ERR_TLS_CERT_ALTNAME_INVALID") {
  const Rejection result = connectTo(TestPki::get().otherName, true);
  CHECK(!result.secureConnect);
  CHECK(result.error == tls::Errc::certAltnameInvalid);
  CHECK(result.authorizationError == "ERR_TLS_CERT_ALTNAME_INVALID");
}

TEST_CASE("rejectUnauthorized false connects, with authorized false and the reason") {
  const Rejection wrongName = connectTo(TestPki::get().otherName, false);
  CHECK(wrongName.secureConnect);
  CHECK(!wrongName.error);
  CHECK(!wrongName.authorized);
  CHECK(wrongName.authorizationError == "ERR_TLS_CERT_ALTNAME_INVALID");
  const Rejection selfSigned = connectTo(TestPki::get().selfSigned, false);
  CHECK(selfSigned.secureConnect);
  CHECK(selfSigned.authorizationError == "DEPTH_ZERO_SELF_SIGNED_CERT");
}

TEST_CASE("contexts without ca share the system's store, which learns no ca of another") {
  const tls::SecureContext first = tls::createSecureContext();
  const tls::SecureContext second = tls::createSecureContext({.minVersion = "TLSv1.3"});
  const tls::SecureContext withCa = tls::createSecureContext({.ca = TestPki::get().caPem});
  X509_STORE* system = SSL_CTX_get_cert_store(first.nativeHandle());
  CHECK(system != nullptr);
  CHECK(SSL_CTX_get_cert_store(second.nativeHandle()) == system);
  CHECK(SSL_CTX_get_cert_store(withCa.nativeHandle()) != system);
  // A client with the system's store still rejects the test CA's server, which a context with
  // that CA, made just before, trusts.
  asio::io_context loop;
  tls::Server server = tls::createServer(
      serverOptions(), [](tls::Socket socket) { socket.pipe(socket); }, loop);
  tls::ConnectOptions options = clientOptions(listenLocal(loop, server));
  options.ca.clear();
  std::error_code error;
  bool closed = false;
  tls::Socket client = tls::connect(options, {}, loop);
  client.on("error", [&](std::error_code ec) { error = ec; });
  client.on("close", [&](bool) { closed = true; });
  REQUIRE(runUntil(loop, [&] { return closed; }));
  CHECK(error == std::error_code(X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, tls::x509Category()));
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("the name is checked against IP addresses as well as DNS names") {
  const Rejection byIp = connectTo(TestPki::get().server, true, "");  // host 127.0.0.1
  CHECK(byIp.secureConnect);
  CHECK(byIp.authorized);
  const Rejection wrongIp = connectTo(TestPki::get().otherName, true, "");
  CHECK(wrongIp.error == tls::Errc::certAltnameInvalid);
}

TEST_CASE_FIXTURE(TlsEchoFixture, "plaintext sent to the TLS port closes that connection only") {
  std::vector<std::error_code> clientErrors;
  server.on("tlsClientError", [&](std::error_code ec, tls::Socket) { clientErrors.push_back(ec); });
  Received junk;
  net::Socket plain = net::connect(port, "127.0.0.1", {}, {}, loop);
  collect(plain, junk);
  plain.write("PING\r\nGET / HTTP/1.1\r\n\r\n");
  REQUIRE(runUntil(loop, [&] { return junk.closed; }));
  REQUIRE(clientErrors.size() == 1);
  CHECK(clientErrors[0].category() == asio::error::get_ssl_category());
  CHECK(!clientErrors[0].message().empty());
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  CHECK(endAndReadReply(loop, client, "still serving") == "still serving");
  CHECK(closeAndRunToCompletion(loop, server));
}

// pauseOnConnect pauses the socket before its handshake, which reads on: an end read then is
// the handshake's failure, not an end held for resume().
TEST_CASE("a client that ends during the handshake is reported, also with pauseOnConnect") {
  for (const bool pauseOnConnect : {false, true}) {
    CAPTURE(pauseOnConnect);
    asio::io_context loop;
    tls::ServerOptions options = serverOptions();
    options.pauseOnConnect = pauseOnConnect;
    tls::Server server = tls::createServer(
        options, [](tls::Socket) {}, loop);
    const unsigned short port = listenLocal(loop, server);
    std::vector<std::error_code> clientErrors;
    server.on("tlsClientError",
              [&](std::error_code ec, tls::Socket) { clientErrors.push_back(ec); });
    Received silent;
    net::Socket plain = net::connect(port, "127.0.0.1", {}, {}, loop);
    collect(plain, silent);
    plain.end(std::string("\x16\x03\x01", 3));  // the start of a record, then the end
    REQUIRE(runUntil(loop, [&] { return silent.closed && server.getConnections() == 0; }));
    CHECK(clientErrors.size() == 1);
    CHECK(closeAndRunToCompletion(loop, server));
  }
}

TEST_CASE("a client that does not finish its handshake is cut at handshakeTimeout") {
  asio::io_context loop;
  tls::ServerOptions options = serverOptions();
  options.handshakeTimeout = 100;
  tls::Server server = tls::createServer(
      options, [](tls::Socket) {}, loop);
  const unsigned short port = listenLocal(loop, server);
  std::vector<std::error_code> clientErrors;
  server.on("tlsClientError", [&](std::error_code ec, tls::Socket) { clientErrors.push_back(ec); });
  Received silent;
  net::Socket plain = net::connect(port, "127.0.0.1", {}, {}, loop);
  collect(plain, silent);
  plain.write(std::string("\x16\x03\x01", 3));  // the start of a record, and nothing more
  const auto start = Clock::now();
  REQUIRE(runUntil(loop, [&] { return silent.closed; }));
  CHECK(Clock::now() - start >= 90ms);
  REQUIRE(clientErrors.size() == 1);
  CHECK(clientErrors[0] == tls::Errc::handshakeTimeout);
  CHECK(clientErrors[0].message() == "TLS handshake timeout");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("ALPN agrees on the server's most preferred protocol the client offers") {
  asio::io_context loop;
  tls::ServerOptions options = serverOptions();
  options.ALPNProtocols = {"h2", "http/1.1"};
  std::string serverSide;
  tls::Server server = tls::createServer(
      options, [&](tls::Socket socket) { serverSide = socket.alpnProtocol(); }, loop);
  const unsigned short port = listenLocal(loop, server);
  tls::ConnectOptions client = clientOptions(port);
  client.ALPNProtocols = {"http/1.1", "h2"};
  std::string clientSide;
  tls::Socket socket = tls::connect(client, {}, loop);
  socket.on("secureConnect", [&] {
    clientSide = socket.alpnProtocol();
    socket.end();
  });
  REQUIRE(runUntil(loop, [&] { return socket.destroyed(); }));
  CHECK(clientSide == "h2");
  CHECK(serverSide == "h2");

  SUBCASE("no protocol in common fails the handshake on both sides") {
    std::vector<std::error_code> clientErrors;
    server.on("tlsClientError",
              [&](std::error_code ec, tls::Socket) { clientErrors.push_back(ec); });
    client.ALPNProtocols = {"spdy/1"};
    std::error_code error;
    tls::Socket refused = tls::connect(client, {}, loop);
    bool closed = false;
    refused.on("error", [&](std::error_code ec) { error = ec; });
    refused.on("close", [&](bool hadError) { closed = hadError; });
    REQUIRE(runUntil(loop, [&] { return closed && !clientErrors.empty(); }));
    CHECK(error.category() == asio::error::get_ssl_category());
    CHECK(error.message().find("no application protocol") != std::string::npos);
  }
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("SNICallback chooses the context for the servername the client asks for") {
  asio::io_context loop;
  tls::ServerOptions options = serverOptions(TestPki::get().server);
  std::vector<std::string> asked;
  options.SNICallback = [&](std::string_view name) {
    asked.emplace_back(name);
    return name == "example.com" ? contextFor(TestPki::get().otherName) : tls::SecureContext();
  };
  std::string serverSaw;
  tls::Server server = tls::createServer(
      options, [&](tls::Socket socket) { serverSaw = socket.servername(); }, loop);
  const unsigned short port = listenLocal(loop, server);
  tls::ConnectOptions client = clientOptions(port);
  client.servername = "example.com";
  tls::PeerCertificate cert;
  tls::Socket socket = tls::connect(client, {}, loop);
  socket.on("secureConnect", [&] {
    cert = socket.getPeerCertificate();
    socket.end();
  });
  REQUIRE(runUntil(loop, [&] { return socket.destroyed(); }));
  CHECK(asked == std::vector<std::string>{"example.com"});
  CHECK(serverSaw == "example.com");
  CHECK(cert.subject.at("CN") == "example.com");
  CHECK(socket.authorized());
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("mutual TLS: requestCert with rejectUnauthorized admits only trusted clients") {
  asio::io_context loop;
  tls::ServerOptions options = serverOptions();
  options.requestCert = true;
  std::vector<std::string> admitted;
  std::vector<std::error_code> clientErrors;
  tls::Server server = tls::createServer(
      options,
      [&](tls::Socket socket) {
        CHECK(socket.authorized());
        admitted.push_back(socket.getPeerCertificate().subject.at("CN"));
        socket.pipe(socket);
      },
      loop);
  server.on("tlsClientError", [&](std::error_code ec, tls::Socket) { clientErrors.push_back(ec); });
  const unsigned short port = listenLocal(loop, server);

  tls::ConnectOptions withCert = clientOptions(port);
  withCert.key = TestPki::get().client.key;
  withCert.cert = TestPki::get().client.cert;
  tls::Socket trusted = tls::connect(withCert, {}, loop);
  CHECK(endAndReadReply(loop, trusted, "mutual") == "mutual");
  CHECK(admitted == std::vector<std::string>{"evnet client"});

  tls::Socket anonymous = tls::connect(clientOptions(port), {}, loop);
  std::string reply;
  anonymous.on("secureConnect", [&] { anonymous.write("let me in"); });
  anonymous.on("data", [&](evnet::Buffer chunk) { reply.append(chunk); });
  std::error_code refusal;
  bool closed = false;
  anonymous.on("error", [&](std::error_code ec) { refusal = ec; });
  anonymous.on("close", [&](bool) { closed = true; });
  REQUIRE(runUntil(loop, [&] { return closed && !clientErrors.empty(); }));
  CHECK(reply.empty());
  CHECK(admitted.size() == 1);
  // As Node (SSL_VERIFY_FAIL_IF_NO_PEER_CERT): the handshake itself fails, and the client is
  // told why by an alert instead of seeing its connection dropped.
  INFO("server: ", clientErrors.front().message(), "; client: ", refusal.message());
  CHECK(clientErrors.front().message().find("peer did not return a certificate") !=
        std::string::npos);
  CHECK(refusal.message().find("certificate required") != std::string::npos);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE_FIXTURE(TlsEchoFixture, "a second connection resumes the first one's session") {
  std::string session;
  tls::Socket first = tls::connect(clientOptions(port), {}, loop);
  first.on("data", [&](evnet::Buffer) { session = first.getSession(); });
  CHECK(endAndReadReply(loop, first, "one") == "one");
  CHECK(!first.isSessionReused());
  REQUIRE(!session.empty());

  tls::ConnectOptions again = clientOptions(port);
  again.session = session;
  tls::Socket second = tls::connect(again, {}, loop);
  bool reused = false;
  second.on("secureConnect", [&] { reused = second.isSessionReused(); });
  CHECK(endAndReadReply(loop, second, "two") == "two");
  CHECK(reused);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE_FIXTURE(TlsEchoFixture, "TLS 1.2 is negotiated when the client allows no more") {
  tls::ConnectOptions options = clientOptions(port);
  options.maxVersion = "TLSv1.2";
  std::string protocol;
  tls::Socket client = tls::connect(options, {}, loop);
  client.on("secureConnect", [&] { protocol = client.getProtocol(); });
  CHECK(endAndReadReply(loop, client, "twelve") == "twelve");
  CHECK(protocol == "TLSv1.2");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE_FIXTURE(TlsEchoFixture, "megabytes cross with backpressure and arrive intact") {
  // More than loopback's socket buffers take (up to 4 MiB to send and 6 MiB to receive).
  constexpr std::size_t kSize = 16 * 1024 * 1024;
  const std::string data = pattern(kSize);
  PatternStream received;
  bool ended = false;
  unsigned drains = 0;
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  std::size_t offset = 0;
  const std::function<void()> writeMore = [&] {
    while (offset < kSize) {
      // Writes of 1 MiB: more than the kernel takes at once, so write() returns false.
      const std::size_t n = std::min<std::size_t>(1024 * 1024, kSize - offset);
      const bool below = client.write(std::string_view(data).substr(offset, n));
      offset += n;
      if (!below) return;
    }
    client.end();
  };
  client.on("secureConnect", [&] { writeMore(); });
  client.on("drain", [&] {
    ++drains;
    writeMore();
  });
  client.on("data", [&](evnet::Buffer chunk) { received.add(chunk); });
  client.on("end", [&] { ended = true; });
  client.on("error", [&](std::error_code ec) { FAIL_CHECK(ec.message()); });
  REQUIRE(runUntil(loop, [&] { return client.destroyed(); }));
  CHECK(ended);
  CHECK(received.size() == kSize);
  CHECK(received.intact());
  CHECK(drains > 0);
  CHECK(client.bytesWritten() == kSize);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("a client paused before it connects does its handshake, and reads on resume()") {
  // As Node's: pause() stops "data", not the handshake (it once stopped both, for good).
  asio::io_context loop;
  tls::Server server = tls::createServer(
      serverOptions(), [](tls::Socket socket) { socket.end("hello"); }, loop);
  tls::Socket client = tls::connect(clientOptions(listenLocal(loop, server)), {}, loop);
  client.pause();
  bool secure = false;
  bool ended = false;
  std::string received;
  client.on("secureConnect", [&] { secure = true; });
  client.on("data", [&](evnet::Buffer chunk) { received.append(chunk.data(), chunk.size()); });
  client.on("end", [&] { ended = true; });
  REQUIRE(runUntil(loop, [&] { return secure; }));
  CHECK(received.empty());
  client.resume();
  REQUIRE(runUntil(loop, [&] { return ended; }));
  CHECK(received == "hello");
  CHECK(closeAndRunToCompletion(loop, server));
}

// The server writes more than the kernel takes while the client is paused: its records wait for
// room. On io_uring that is the first wait of an accepted connection through asio's reactor,
// which registers its descriptor only then (SocketImpl::adopt).
TEST_CASE("a server's reply to a paused client waits for room, then arrives whole") {
  asio::io_context loop;
  constexpr std::size_t kSize = 16 * 1024 * 1024;  // more than loopback's socket buffers take
  const std::string data = pattern(kSize);
  std::optional<tls::Socket> accepted;
  bool written = false;
  bool below = true;
  unsigned drains = 0;
  tls::Server server = tls::createServer(
      serverOptions(),
      [&](tls::Socket socket) {
        accepted = socket;
        socket.on("drain", [&drains, socket]() mutable {
          ++drains;
          socket.end();
        });
      },
      loop);
  server.on("secureConnection", [&](tls::Socket socket) {
    below = socket.write(data);
    written = true;
  });
  tls::Socket client = tls::connect(clientOptions(listenLocal(loop, server)), {}, loop);
  PatternStream received;
  bool ended = false;
  client.on("data", [&](evnet::Buffer chunk) { received.add(chunk); });
  client.on("end", [&] { ended = true; });
  client.on("secureConnect", [&] { client.pause(); });  // before the server writes
  REQUIRE(runUntil(loop, [&] { return written; }));
  CHECK_FALSE(below);
  CHECK(accepted->writableLength() > 0);  // what the kernel did not take
  client.resume();
  REQUIRE(runUntil(loop, [&] { return ended; }));
  CHECK(received.size() == kSize);
  CHECK(received.intact());
  CHECK(drains == 1);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("records split into 1-byte TCP writes are reassembled, both ways") {
  asio::io_context loop;
  tls::Server server = tls::createServer(
      serverOptions(), [](tls::Socket socket) { socket.pipe(socket); }, loop);
  const unsigned short tlsPort = listenLocal(loop, server);
  // A plain relay that forwards each byte in a write of its own, each way.
  auto trickle = [](net::Socket from, net::Socket to) {
    from.on("data", [to](evnet::Buffer chunk) mutable {
      for (char c : chunk) to.write(std::string_view(&c, 1));
    });
    from.on("end", [to]() mutable { to.end(); });
  };
  net::ServerOptions halfOpen;
  halfOpen.allowHalfOpen = true;  // each side ends when its own peer does
  net::Server relay = net::createServer(
      halfOpen,
      [&](net::Socket inbound) {
        net::Socket outbound = net::connect(tlsPort, "127.0.0.1", {}, halfOpen, loop);
        trickle(inbound, outbound);
        trickle(outbound, inbound);
      },
      loop);
  const unsigned short relayPort = listenLocal(loop, relay);
  tls::Socket client = tls::connect(clientOptions(relayPort), {}, loop);
  const std::string message = pattern(3000);
  CHECK(endAndReadReply(loop, client, message) == message);
  CHECK(client.authorized());
  server.close();
  CHECK(closeAndRunToCompletion(loop, relay));
}

#if EVNET_HAS_IO_URING
TEST_CASE("on io_uring, TLS sockets receive from the ring: no recv system call") {
  // As for plain sockets (net_transport_test): recvfrom and recvmsg fail with EPERM in a child
  // process, so the handshakes and the echo work on io_uring only, and fail on epoll.
  const tls::ServerOptions options = serverOptions();  // the test PKI is made before the fork
  const std::string message = pattern(100 * 1024);
  const auto echoForbiddingRecv = [&](evnet::Transport transport) {
    return inChildForbidding({__NR_recvfrom, __NR_recvmsg}, [&] {
      asio::io_context loop;
      evnet::setTransport(loop, transport);
      tls::Server server = tls::createServer(
          options, [](tls::Socket socket) { socket.pipe(socket); }, loop);
      server.on("tlsClientError", [](std::error_code, tls::Socket) {});
      tls::Socket client = tls::connect(clientOptions(listenLocal(loop, server)), {}, loop);
      client.on("error", [](std::error_code) {});
      const bool echoed = endAndReadReply(loop, client, message) == message;
      server.close();
      return echoed && client.authorized() ? 0 : 1;
    });
  };
  CHECK(echoForbiddingRecv(evnet::Transport::ioUring) == 0);
  CHECK(echoForbiddingRecv(evnet::Transport::epoll) != 0);
}
#endif

TEST_CASE("pipe joins a TLS socket and a plain one: TLS termination in front of TCP") {
  EchoServerFixture plain;
  tls::ServerOptions options = serverOptions();
  options.allowHalfOpen = true;  // the reply comes after the client's end
  net::SocketOptions halfOpen;
  halfOpen.allowHalfOpen = true;
  tls::Server terminator = tls::createServer(
      options,
      [&](tls::Socket inbound) {
        net::Socket outbound = net::connect(plain.port, "127.0.0.1", {}, halfOpen, plain.loop);
        inbound.pipe(outbound);
        outbound.pipe(inbound);
      },
      plain.loop);
  const unsigned short port = listenLocal(plain.loop, terminator);
  tls::Socket client = tls::connect(clientOptions(port), {}, plain.loop);
  const std::string message = pattern(200 * 1024);
  CHECK(endAndReadReply(plain.loop, client, message) == message);
  terminator.close();
  CHECK(closeAndRunToCompletion(plain.loop, plain.server));
}

TEST_CASE_FIXTURE(TlsEchoFixture, "writes made before the handshake is done are sent after it") {
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  client.write("early ");
  CHECK(client.writableLength() == 6);
  client.end("bird");
  std::string reply;
  client.on("data", [&](evnet::Buffer chunk) { reply.append(chunk); });
  REQUIRE(runUntil(loop, [&] { return client.destroyed(); }));
  CHECK(reply == "early bird");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE_FIXTURE(TlsEchoFixture, "setTimeout and pause work on a TLS socket as on a net one") {
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  bool timedOut = false;
  client.setTimeout(50, [&] { timedOut = true; });
  REQUIRE(runUntil(loop, [&] { return timedOut; }));
  CHECK(!client.destroyed());
  std::string reply;
  client.on("data", [&](evnet::Buffer chunk) {
    reply.append(chunk);
    if (reply == "abc") client.pause();  // paused, the "end" after "def" would wait (as in Node)
  });
  client.write("abc");
  REQUIRE(runUntil(loop, [&] { return !reply.empty(); }));
  CHECK(client.isPaused());
  client.resume();
  client.end("def");
  REQUIRE(runUntil(loop, [&] { return client.destroyed(); }));
  CHECK(reply == "abcdef");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("one SecureContext serves servers on several threads (reusePort)") {
  const tls::ServerOptions shared = [] {
    tls::ServerOptions options = serverOptions();
    options.reusePort = true;
    return options;
  }();
  constexpr int kThreads = 2;
  constexpr int kClients = 8;
  asio::io_context first;
  tls::Server primary = tls::createServer(
      shared, [](tls::Socket socket) { socket.pipe(socket); }, first);
  const unsigned short port = listenLocal(first, primary);
  std::vector<std::thread> threads;
  std::atomic<int> served{0};
  std::atomic<bool> stop{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      asio::io_context loop;
      tls::Server server = tls::createServer(
          shared,
          [&](tls::Socket socket) {
            ++served;
            socket.pipe(socket);
          },
          loop);
      server.listen(port, "127.0.0.1");
      while (!stop) loop.run_for(10ms);
      server.close().closeAllConnections();
      loop.run_for(100ms);
    });
  }
  asio::io_context clients;
  int done = 0;
  for (int i = 0; i < kClients; ++i) {
    tls::Socket client = tls::connect(clientOptions(port), {}, clients);
    client.on("secureConnect", [client]() mutable { client.end("x"); });
    client.on("data", [](evnet::Buffer) {});  // without one, "end" waits for it (as in Node)
    client.on("close", [&](bool hadError) {
      CHECK(!hadError);
      ++done;
    });
  }
  std::thread primaryThread([&] {
    while (!stop) first.run_for(10ms);  // as long as the workers: its clients may come last
  });
  CHECK(runUntil(clients, [&] { return done == kClients; }));
  stop = true;
  for (auto& thread : threads) thread.join();
  primaryThread.join();
  CHECK(done == kClients);
}

TEST_CASE("a client that gets no handshake reply is cut at its handshakeTimeout") {
  asio::io_context loop;
  std::vector<net::Socket> held;  // a server that accepts and never answers
  net::Server silent = net::createServer([&](net::Socket socket) { held.push_back(socket); }, loop);
  const unsigned short port = listenLocal(loop, silent);
  tls::ConnectOptions options = clientOptions(port);
  options.handshakeTimeout = 100;
  tls::Socket client = tls::connect(options, {}, loop);
  std::error_code error;
  bool secure = false;
  bool hadError = false;
  client.on("secureConnect", [&] { secure = true; });
  client.on("error", [&](std::error_code ec) { error = ec; });
  client.on("close", [&](bool withError) { hadError = withError; });
  const auto start = Clock::now();
  REQUIRE(runUntil(loop, [&] { return hadError; }));  // "error", then "close"
  CHECK(Clock::now() - start >= 90ms);
  CHECK(!secure);
  CHECK(error == tls::Errc::handshakeTimeout);
  REQUIRE(held.size() == 1);
  held[0].destroy();
  CHECK(closeAndRunToCompletion(loop, silent));
}

TEST_CASE("a key protected by a passphrase is read with the right one, refused with another") {
  const std::string key = encryptedKey(TestPki::get().server.key, "correct horse");
  tls::SecureContextOptions context;
  context.key = key;
  context.cert = TestPki::get().server.cert;
  context.passphrase = "battery staple";
  CHECK_THROWS_AS(tls::createSecureContext(context), std::system_error);
  context.passphrase = "correct horse";
  asio::io_context loop;
  tls::ServerOptions options;
  options.secureContext = tls::createSecureContext(context);
  tls::Server server = tls::createServer(
      options, [](tls::Socket socket) { socket.pipe(socket); }, loop);
  const unsigned short port = listenLocal(loop, server);
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  CHECK(endAndReadReply(loop, client, "unlocked") == "unlocked");
  CHECK(client.authorized());
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("ciphers: a TLS 1.2 list limits the server, and a client offering none of it fails") {
  asio::io_context loop;
  ContextServer server(loop,
                       [](auto& context) { context.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256"; });
  // Only TLS 1.2 ciphers: TLS 1.3 is off, as in Node.
  const Outcome agreed = handshake(loop, clientOptions(server.port));
  CHECK(agreed.secure);
  CHECK(agreed.protocol == "TLSv1.2");
  CHECK(agreed.cipher == "ECDHE-ECDSA-AES128-GCM-SHA256");

  tls::ConnectOptions other = clientOptions(server.port);
  other.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305";
  const Outcome refused = handshake(loop, other);
  CHECK(!refused.secure);
  CHECK(refused.error.category() == asio::error::get_ssl_category());
  CHECK(refused.error.message().find("handshake failure") != std::string::npos);
  REQUIRE(runUntil(loop, [&] { return server.errors.size() == 1; }));
  CHECK(server.errors[0].message().find("no shared cipher") != std::string::npos);

  tls::SecureContextOptions none;
  none.ciphers = ":";
  CHECK_THROWS_AS(tls::createSecureContext(none), std::invalid_argument);
  CHECK(closeAndRunToCompletion(loop, server.server));
}

TEST_CASE("minVersion TLSv1.3 refuses a peer of TLS 1.2 only, on either side") {
  asio::io_context loop;
  SUBCASE("a server with minVersion TLSv1.3, a client of TLS 1.2") {
    ContextServer server(loop, [](auto& context) { context.minVersion = "TLSv1.3"; });
    tls::ConnectOptions old = clientOptions(server.port);
    old.maxVersion = "TLSv1.2";
    const Outcome refused = handshake(loop, old);
    CHECK(!refused.secure);
    CHECK(refused.error.message().find("protocol version") != std::string::npos);
    REQUIRE(runUntil(loop, [&] { return server.errors.size() == 1; }));
    CHECK(server.errors[0].message().find("unsupported protocol") != std::string::npos);
    CHECK(handshake(loop, clientOptions(server.port)).protocol == "TLSv1.3");
    CHECK(closeAndRunToCompletion(loop, server.server));
  }
  SUBCASE("a client with minVersion TLSv1.3, a server of TLS 1.2") {
    ContextServer server(loop, [](auto& context) { context.maxVersion = "TLSv1.2"; });
    tls::ConnectOptions strict = clientOptions(server.port);
    strict.minVersion = "TLSv1.3";
    const Outcome refused = handshake(loop, strict);
    CHECK(!refused.secure);
    CHECK(refused.error.category() == asio::error::get_ssl_category());
    REQUIRE(runUntil(loop, [&] { return server.errors.size() == 1; }));
    CHECK(handshake(loop, clientOptions(server.port)).protocol == "TLSv1.2");
    CHECK(closeAndRunToCompletion(loop, server.server));
  }
}

// OpenSSL 3 refuses a client's renegotiation unless SSL_OP_ALLOW_CLIENT_RENEGOTIATION; evnet
// also sets SSL_OP_NO_RENEGOTIATION. With the former set, this fails.
TEST_CASE("a TLS 1.2 client's renegotiation is refused, and the server serves the others") {
  asio::io_context loop;
  std::vector<std::error_code> socketErrors;
  tls::Server server = tls::createServer(
      serverOptions(),
      [&](tls::Socket socket) {
        socket.pipe(socket);
        socket.on("error", [&](std::error_code ec) { socketErrors.push_back(ec); });
      },
      loop);
  const unsigned short port = listenLocal(loop, server);
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_max_proto_version(context, TLS1_2_VERSION);
  auto work = asio::make_work_guard(loop);  // the loop waits for the peer's thread
  bool done = false;
  bool echoed = false;
  int renegotiation = 0;
  std::string why;
  {
    RawTlsPeer client(context, port, [&](int, SSL* ssl) {
      char byte = 0;
      echoed = SSL_connect(ssl) == 1 && SSL_write(ssl, "a", 1) == 1 &&
               SSL_read(ssl, &byte, 1) == 1 && byte == 'a';
      ERR_clear_error();
      if (echoed && SSL_renegotiate(ssl) == 1) renegotiation = SSL_do_handshake(ssl);
      why = ERR_reason_error_string(ERR_peek_error()) != nullptr
                ? ERR_reason_error_string(ERR_peek_error())
                : "";
      asio::post(loop, [&] { done = true; });
    });
    REQUIRE(runUntil(loop, [&] { return done; }));
  }
  work.reset();
  SSL_CTX_free(context);
  CHECK(echoed);
  CHECK(renegotiation != 1);
  CHECK(why == "no renegotiation");
  tls::Socket other = tls::connect(clientOptions(port), {}, loop);
  CHECK(endAndReadReply(loop, other, "still serving") == "still serving");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "data that arrives with no 'data' listener is held, and the close_notify behind it waits "
    "too, until a listener is added (as net's N3)") {
  asio::io_context loop;
  tls::Server server = tls::createServer(
      serverOptions(), [](tls::Socket socket) { socket.end("held bytes"); }, loop);
  const unsigned short port = listenLocal(loop, server);
  // The record and the close_notify after it leave in one send: the client reads them at once.
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  expectHeldUntilListened(loop, client, "held bytes");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("close_notify before the FIN: 'end', then 'close', without an error") {
  asio::io_context loop;
  const tls::SecureContext context = contextFor(TestPki::get().server);
  auto work = asio::make_work_guard(loop);  // the loop waits for the peer's thread
  bool done = false;
  int shutdown = 0;
  bool fin = false;
  Log log;
  {
    // Sends close_notify and keeps TCP open until evnet's own close_notify and FIN.
    RawTlsPeer server(context.nativeHandle(), 0, [&](int fd, SSL* ssl) {
      if (SSL_accept(ssl) == 1 && SSL_shutdown(ssl) == 0) shutdown = SSL_shutdown(ssl);
      char byte = 0;
      fin = ::recv(fd, &byte, 1, 0) == 0;
      asio::post(loop, [&] { done = true; });
    });
    tls::Socket client = tls::connect(clientOptions(server.port()), {}, loop);
    client.on("secureConnect", [&] { log.push_back("secureConnect"); });
    client.on("end", [&] { log.push_back("end"); });
    client.on("error", [&](std::error_code ec) { log.push_back("error " + ec.message()); });
    bool closed = false;
    client.on("close", [&](bool hadError) {
      log.push_back(hadError ? "close error" : "close");
      closed = true;
    });
    REQUIRE(runUntil(loop, [&] { return done && closed; }));
  }
  work.reset();
  CHECK(log == Log{"secureConnect", "end", "close"});
  CHECK(shutdown == 1);  // evnet answered with its own close_notify
  CHECK(fin);
}

TEST_CASE_FIXTURE(TlsEchoFixture, "a client emits 'session' for each new session, as Node") {
  Log log;
  std::string last;
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  client.on("secureConnect", [&] { log.push_back("secureConnect"); });
  client.on("session", [&](evnet::Buffer session) {
    log.push_back("session");
    last = session.toString();
  });
  client.on("data", [&](evnet::Buffer) { log.push_back("data"); });
  CHECK(endAndReadReply(loop, client, "x") == "x");
  // TLS 1.3: OpenSSL's server sends two tickets after the handshake, before the data.
  CHECK(log == Log{"secureConnect", "session", "session", "data"});
  REQUIRE(!last.empty());
  tls::ConnectOptions again = clientOptions(port);
  again.session = last;
  tls::Socket second = tls::connect(again, {}, loop);
  bool reused = false;
  second.on("secureConnect", [&] { reused = second.isSessionReused(); });
  CHECK(endAndReadReply(loop, second, "y") == "y");
  CHECK(reused);

  SUBCASE("TLS 1.2: one session, its ticket, after secureConnect") {
    tls::ConnectOptions twelve = clientOptions(port);
    twelve.maxVersion = "TLSv1.2";
    Log events;
    tls::Socket old = tls::connect(twelve, {}, loop);
    old.on("secureConnect", [&] { events.push_back("secureConnect"); });
    old.on("session", [&](evnet::Buffer) { events.push_back("session"); });
    CHECK(endAndReadReply(loop, old, "z") == "z");
    CHECK(events == Log{"secureConnect", "session"});
  }
  CHECK(closeAndRunToCompletion(loop, server));
}

// --- interop with Node's tls ------------------------------------------------------------------

namespace {
// The test PKI's server credentials and CA as files, for a Node peer.
struct PemFiles {
  TempDir dir;
  std::string key = dir.file("key.pem");
  std::string cert = dir.file("cert.pem");
  std::string ca = dir.file("ca.pem");
  PemFiles() {
    writeFile(key, TestPki::get().server.key);
    writeFile(cert, TestPki::get().server.cert);
    writeFile(ca, TestPki::get().caPem);
  }
};
}  // namespace

TEST_CASE("interop: an evnet client talks to Node's tls.createServer") {
  const std::string node = nodeExecutable();
  if (node.empty()) return skipTest("node is not installed");
  const PemFiles files;
  asio::io_context loop;
  ChildProcess child(
      loop, node,
      {"-e",
       "const tls = require('tls'), fs = require('fs');"
       "const server = tls.createServer({key: fs.readFileSync(process.argv[1]),"
       "  cert: fs.readFileSync(process.argv[2]), ALPNProtocols: ['evnet']},"
       "  (s) => { s.write(s.alpnProtocol + ' ' + s.getProtocol() + ';'); s.pipe(s); });"
       "server.listen(0, '127.0.0.1', () => console.log(server.address().port));",
       files.key, files.cert});
  REQUIRE(runUntil(loop, [&] { return !child.firstLine().empty() || child.outputEnded(); }));
  const int port = std::stoi(child.firstLine());
  tls::ConnectOptions options = clientOptions(static_cast<unsigned short>(port));
  options.ALPNProtocols = {"evnet"};
  tls::Socket client = tls::connect(options, {}, loop);
  const std::string message = pattern(256 * 1024);
  const std::string reply = endAndReadReply(loop, client, message);
  CHECK(client.authorized());
  CHECK(client.alpnProtocol() == "evnet");
  CHECK(reply.substr(0, reply.find(';')) == "evnet TLSv1.3");
  CHECK(reply.substr(reply.find(';') + 1) == message);
}

TEST_CASE("interop: Node's tls.connect talks to an evnet server") {
  const std::string node = nodeExecutable();
  if (node.empty()) return skipTest("node is not installed");
  const PemFiles files;
  asio::io_context loop;
  tls::ServerOptions options = serverOptions();
  options.ALPNProtocols = {"evnet"};
  tls::Server server = tls::createServer(
      options, [](tls::Socket socket) { socket.pipe(socket); }, loop);
  const unsigned short port = listenLocal(loop, server);
  ChildProcess child(
      loop, node,
      {"-e",
       "const tls = require('tls'), fs = require('fs');"
       "const s = tls.connect({port: +process.argv[1], host: '127.0.0.1', servername: 'localhost',"
       "  ca: fs.readFileSync(process.argv[2]), ALPNProtocols: ['evnet']}, () => {"
       "  let got = 0; const size = 1 << 20; s.on('data', (d) => { got += d.length; });"
       "  s.on('end', () => console.log([s.authorized, s.alpnProtocol, s.getProtocol(), got]"
       "    .join(' ')));"
       "  s.end(Buffer.alloc(size, 7)); });",
       std::to_string(port), files.ca});
  REQUIRE(runUntil(loop, [&] { return child.outputEnded(); }));
  CHECK(child.output() == "true evnet TLSv1.3 1048576\n");
  CHECK(closeAndRunToCompletion(loop, server));
}

// --- net.connect's options on tls::connect (as tests/net_connect_test.cpp has them for net) ---

namespace {

// Records a TLS client's connect-time events as recordConnect() does, and "secureConnect".
void record(tls::Socket& socket, Log& log) {
  recordConnect(socket, log);
  socket.on("secureConnect", [&log] { log.push_back("secureConnect"); });
}

std::string attempt(const std::string& ip, unsigned short port, int family = 4) {
  return "attempt " + ip + ":" + std::to_string(port) + "/" + std::to_string(family);
}

}  // namespace

TEST_CASE(
    "tls::connect: localAddress and localPort bind the client, and a bad localAddress or family "
    "throws (test-net-local-address-port.js)") {
  asio::io_context loop;
  std::string peerAddress;
  unsigned short peerPort = 0;
  tls::Server server = tls::createServer(
      serverOptions(),
      [&](tls::Socket socket) {
        peerAddress = socket.remoteAddress();
        peerPort = socket.remotePort();
        socket.end();
      },
      loop);
  const unsigned short port = listenLocal(loop, server);
  const unsigned short localPort = closedPort();
  tls::ConnectOptions options = clientOptions(port);
  options.localAddress = "127.0.0.1";
  options.localPort = localPort;
  tls::Socket client = tls::connect(options, {}, loop);
  Log log;
  record(client, log);
  client.on("data", [](evnet::Buffer) {});
  runUntilClosed(loop, log);
  CHECK(log == Log{attempt("127.0.0.1", port), "connect", "secureConnect", "close false"});
  CHECK(peerAddress == "127.0.0.1");
  CHECK(peerPort == localPort);
  CHECK(client.localPort() == localPort);
  tls::ConnectOptions badAddress = clientOptions(port);
  badAddress.localAddress = "not-an-ip";
  CHECK_THROWS_AS(tls::connect(badAddress, {}, loop), std::invalid_argument);
  tls::ConnectOptions badFamily = clientOptions(port);
  badFamily.family = 5;
  CHECK_THROWS_AS(tls::connect(badFamily, {}, loop), std::invalid_argument);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "tls::connect: family 4 resolves localhost to IPv4 only, sent as SNI, and timeout sets the "
    "idle "
    "timeout (test-net-connect-options-ipv6.js, test-net-socket-timeout.js)") {
  asio::io_context loop;
  std::string serverSaw;
  tls::Server server = tls::createServer(
      serverOptions(), [&](tls::Socket socket) { serverSaw = socket.servername(); },
      loop);  // never writes
  const unsigned short port = listenLocal(loop, server);
  tls::ConnectOptions options = clientOptions(port);
  options.host = "localhost";
  options.servername.clear();
  options.family = 4;
  options.timeout = 200;
  tls::Socket client = tls::connect(options, {}, loop);
  CHECK(client.timeout() == 200);
  Log log;
  record(client, log);
  client.on("timeout", [&] {
    log.push_back("timeout");
    client.destroy();
  });
  runUntilClosed(loop, log);
  CHECK(log == Log{"lookup localhost 127.0.0.1/4", attempt("127.0.0.1", port), "connect",
                   "secureConnect", "timeout", "close false"});
  CHECK(client.authorized());
  CHECK(client.servername() == "localhost");
  CHECK(serverSaw == "localhost");
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE("tls::connect: family 6 resolves localhost to IPv6 only") {
  if (!hasIPv6Loopback()) return skipTest("no IPv6 loopback");
  asio::io_context loop;
  tls::Server server = tls::createServer(
      serverOptions(), [](tls::Socket socket) { socket.pipe(socket); }, loop);
  const unsigned short port = listenLocal(loop, server, "::1");
  // What the system's resolver makes of localhost in IPv6 (some hosts files have no ::1).
  std::error_code ec;
  asio::ip::tcp::resolver resolver(loop);
  const auto results = resolver.resolve(asio::ip::tcp::v6(), "localhost", "0", ec);
  const bool localhostIsV6Loopback =
      !ec && !results.empty() && results.begin()->endpoint().address().to_string() == "::1";
  tls::ConnectOptions options = clientOptions(port);
  options.host = "localhost";
  options.servername.clear();
  options.family = 6;
  tls::Socket client = tls::connect(options, {}, loop);
  Log log;
  record(client, log);
  client.on("secureConnect", [&] { client.end(); });
  client.on("data", [](evnet::Buffer) {});
  runUntilClosed(loop, log);
  for (const std::string& entry : log) CHECK(!entry.ends_with("/4"));  // no IPv4 address
  if (localhostIsV6Loopback) {
    CHECK(log.front() == "lookup localhost ::1/6");
    CHECK(std::find(log.begin(), log.end(), "secureConnect") != log.end());
    CHECK(log.back() == "close false");
    CHECK(client.remoteFamily() == "IPv6");
  } else {
    MESSAGE("localhost has no ::1 here: family 6 finds no address");
    CHECK(log.back() == "close true");
    CHECK(std::find(log.begin(), log.end(), "connect") == log.end());
  }
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "tls::connect: lookup resolves the host, and Happy Eyeballs tries the next address, or only "
    "the first with autoSelectFamily false or a family (test-net-autoselectfamily.js)") {
  TlsEchoFixture fixture;
  asio::io_context& loop = fixture.loop;
  const unsigned short port = fixture.port;
  std::vector<std::string> asked;
  tls::ConnectOptions options = clientOptions(port);
  options.host = "evnet-lookup.test";  // no resolver knows it; the name checked is servername
  options.lookup = [&](const std::string& host, int family, auto callback) {
    asked.push_back(host + "/" + std::to_string(family));
    asio::post(loop, [callback] {
      callback({}, {{"127.0.0.3", 4}, {"127.0.0.1", 4}});  // 127.0.0.3 refuses
    });
  };
  const std::string refused = "failed 127.0.0.3:" + std::to_string(port) + "/4 " +
                              std::make_error_code(std::errc::connection_refused).message();
  const Log lookups{"lookup evnet-lookup.test 127.0.0.3/4", "lookup evnet-lookup.test 127.0.0.1/4"};
  Log log;
  SUBCASE("autoSelectFamily default (true)") {
    tls::Socket client = tls::connect(options, {}, loop);
    record(client, log);
    client.on("secureConnect", [&] { client.end(); });
    client.on("data", [](evnet::Buffer) {});
    runUntilClosed(loop, log);
    CHECK(log == Log{lookups[0], lookups[1], attempt("127.0.0.3", port), refused,
                     attempt("127.0.0.1", port), "connect", "secureConnect", "close false"});
    CHECK(client.autoSelectFamilyAttemptedAddresses().size() == 2);
    CHECK(client.authorized());
    CHECK(asked == std::vector<std::string>{"evnet-lookup.test/0"});
  }
  const Log firstOnly{lookups[0], attempt("127.0.0.3", port), refused,
                      "error " + std::make_error_code(std::errc::connection_refused).message(),
                      "close true"};
  SUBCASE("autoSelectFamily false") {
    options.autoSelectFamily = false;
    tls::Socket client = tls::connect(options, {}, loop);
    record(client, log);
    runUntilClosed(loop, log);
    CHECK(log == firstOnly);
    CHECK(asked == std::vector<std::string>{"evnet-lookup.test/0"});
  }
  SUBCASE("family 4: the lookup is asked for IPv4 addresses; no Happy Eyeballs, as in Node") {
    options.family = 4;
    tls::Socket client = tls::connect(options, {}, loop);
    record(client, log);
    runUntilClosed(loop, log);
    CHECK(log == firstOnly);
    CHECK(asked == std::vector<std::string>{"evnet-lookup.test/4"});
  }
  CHECK(closeAndRunToCompletion(loop, fixture.server));
}

TEST_CASE(
    "tls::connect: an address that does not answer is left after autoSelectFamilyAttemptTimeout "
    "and the next one connects (test-net-autoselectfamily.js)") {
  TlsEchoFixture fixture;
  asio::io_context& loop = fixture.loop;
  const unsigned short port = fixture.port;
  // 127.0.0.2:port drops SYNs: a listener with a full accept queue, never accepting.
  asio::ip::tcp::acceptor blackhole(loop);
  blackhole.open(asio::ip::tcp::v4());
  std::error_code ec;
  blackhole.bind({asio::ip::make_address("127.0.0.2"), port}, ec);
  if (ec)
    return skipTest("127.0.0.2:" + std::to_string(port) + " cannot be bound: " + ec.message());
  blackhole.listen(0);
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> fillers;
  for (int i = 0; i < 4; ++i) {
    fillers.push_back(std::make_unique<asio::ip::tcp::socket>(loop));
    fillers.back()->async_connect({asio::ip::make_address("127.0.0.2"), port}, [](auto) {});
  }
  runFor(loop, std::chrono::milliseconds(20));
  // The default is beyond the test's deadline: only the option can move on in time.
  struct RestoreDefault {
    std::chrono::milliseconds saved = net::getDefaultAutoSelectFamilyAttemptTimeout();
    ~RestoreDefault() { net::setDefaultAutoSelectFamilyAttemptTimeout(saved); }
  } restore;
  net::setDefaultAutoSelectFamilyAttemptTimeout(std::chrono::minutes(10));
  const auto attemptTimeout = std::chrono::milliseconds(100);
  tls::ConnectOptions options = clientOptions(port);
  options.host = "evnet-lookup.test";
  options.lookup = [&loop](const std::string&, int, auto callback) {
    asio::post(loop, [callback] { callback({}, {{"127.0.0.2", 4}, {"127.0.0.1", 4}}); });
  };
  options.autoSelectFamilyAttemptTimeout = attemptTimeout;
  tls::Socket client = tls::connect(options, {}, loop);
  Log log;
  record(client, log);
  const auto began = Clock::now();
  auto connectedAfter = Clock::duration();
  client.on("secureConnect", [&] {
    connectedAfter = Clock::now() - began;
    client.destroy();
  });
  runUntilClosed(loop, log);
  const std::string p = std::to_string(port);
  CHECK(log == Log{"lookup evnet-lookup.test 127.0.0.2/4", "lookup evnet-lookup.test 127.0.0.1/4",
                   attempt("127.0.0.2", port), "timeout 127.0.0.2:" + p + "/4",
                   attempt("127.0.0.1", port), "connect", "secureConnect", "close false"});
  CHECK(connectedAfter >= attemptTimeout);
  fillers.clear();
  blackhole.close();
  CHECK(closeAndRunToCompletion(loop, fixture.server));
}

TEST_CASE(
    "tls::connect: a blockList address is refused with Errc::ipBlocked before any packet "
    "leaves (Node: ERR_IP_BLOCKED)") {
  TlsEchoFixture fixture;
  bool accepted = false;
  fixture.server.on("connection", [&](tls::Socket) { accepted = true; });
  auto blockList = std::make_shared<net::BlockList>();
  blockList->addAddress("127.0.0.1");
  tls::ConnectOptions options = clientOptions(fixture.port);
  options.blockList = blockList;
  tls::Socket client = tls::connect(options, {}, fixture.loop);
  std::error_code error;
  client.on("error", [&](std::error_code ec) { error = ec; });
  Log log;
  record(client, log);
  runUntilClosed(fixture.loop, log);
  CHECK(error == evnet::Errc::ipBlocked);
  CHECK(log == Log{"error IP is blocked by net.BlockList", "close true"});
  runFor(fixture.loop, std::chrono::milliseconds(50));
  CHECK(!accepted);
  CHECK(closeAndRunToCompletion(fixture.loop, fixture.server));
}

TEST_CASE(
    "tls::connect: path connects over a Unix domain socket, with no SNI unless servername and "
    "host as the name checked, as in Node 20") {
  asio::io_context loop;
  const TempDir dir;
  const std::string path = dir.file("tls.sock");
  std::vector<std::string> serverSaw;
  tls::Server server = tls::createServer(
      serverOptions(),
      [&](tls::Socket socket) {
        serverSaw.push_back(socket.servername());
        socket.pipe(socket);
      },
      loop);
  bool listening = false;
  server.listenPath(path, [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  tls::ConnectOptions options;  // host stays "localhost", the name checked
  options.path = path;
  options.ca = TestPki::get().caPem;
  tls::Socket client = tls::connect(options, {}, loop);
  CHECK(endAndReadReply(loop, client, "TLS over a Unix socket") == "TLS over a Unix socket");
  CHECK(client.authorized());
  CHECK(client.remoteFamily() == "Unix");
  CHECK(client.servername().empty());
  options.servername = "localhost";
  tls::Socket named = tls::connect(options, {}, loop);
  CHECK(endAndReadReply(loop, named, "named") == "named");
  CHECK(named.servername() == "localhost");
  CHECK(serverSaw == std::vector<std::string>{"", "localhost"});
  options.servername.clear();
  options.host = "example.com";  // not the certificate's name
  const Outcome wrongName = handshake(loop, options);
  CHECK(!wrongName.secure);
  CHECK(wrongName.error == tls::Errc::certAltnameInvalid);
  CHECK(closeAndRunToCompletion(loop, server));
}

#if EVNET_HAS_STOP_TOKEN  // not with libc++ before 17
TEST_CASE(
    "tls::connect({signal}): a stop request destroys the socket with ABORT_ERR, before it "
    "connects or after the handshake (test-net-connect-abort-controller.js)") {
  TlsEchoFixture fixture;
  const std::string aborted = "error " + make_error_code(evnet::Errc::aborted).message();
  std::stop_source source;
  tls::ConnectOptions options = clientOptions(fixture.port);
  options.signal = source.get_token();
  Log log;
  SUBCASE("stopped before connect") {
    source.request_stop();
    tls::Socket client = tls::connect(options, {}, fixture.loop);
    record(client, log);
    runUntilClosed(fixture.loop, log);
    CHECK(log == Log{aborted, "close true"});
  }
  SUBCASE("stopped once secure") {
    tls::Socket client = tls::connect(
        options, [&] { source.request_stop(); }, fixture.loop);
    record(client, log);
    runUntilClosed(fixture.loop, log);
    CHECK(log == Log{attempt("127.0.0.1", fixture.port), "connect", "secureConnect", aborted,
                     "close true"});
  }
  CHECK(closeAndRunToCompletion(fixture.loop, fixture.server));
}
#endif

TEST_CASE("tls::ConnectOptions repeats every field of net::ConnectOptions, then its own") {
  // The part before servername is laid out as net::ConnectOptions: a field added there and not
  // here makes net::ConnectOptions larger than that part.
  // Checked with libstdc++ (every CI step but libc++'s, whose layout differs: under libc++ 14
  // the part's size and the struct's differ by its padding, to be looked at).
#if defined(__GLIBCXX__)
  tls::ConnectOptions options;
  const auto netPart = static_cast<std::size_t>(reinterpret_cast<const char*>(&options.servername) -
                                                reinterpret_cast<const char*>(&options));
  CHECK(netPart == sizeof(net::ConnectOptions));
#else
  MESSAGE("not checked with this standard library");
#endif
}

TEST_CASE("the README's designated-initializer form of tls::connect compiles and connects") {
  TlsEchoFixture fixture;
  // GCC warns about the SocketOptions base left out (-Wmissing-field-initializers, in -Wextra).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
  tls::Socket client = tls::connect(
      {.port = fixture.port, .host = "localhost", .ca = TestPki::get().caPem}, {}, fixture.loop);
#pragma GCC diagnostic pop
  CHECK(endAndReadReply(fixture.loop, client, "designated") == "designated");
  CHECK(client.authorized());
  CHECK(closeAndRunToCompletion(fixture.loop, fixture.server));
}
