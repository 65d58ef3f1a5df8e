// evnet::tls: handshakes, verification, ALPN, SNI, mutual TLS, sessions, and the net::Socket
// behaviour (backpressure, half-close, pipe) over TLS. Certificates are made at run time.
#include <evnet/tls.hpp>

#include "tls_test_util.hpp"

#include <doctest/doctest.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
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

std::string sha256Fingerprint(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  X509_digest(cert, EVP_sha256(), digest, &size);
  X509_free(cert);
  std::string text;
  char hex[4];
  for (unsigned i = 0; i < size; ++i) {
    std::snprintf(hex, sizeof hex, i == 0 ? "%02X" : ":%02X", digest[i]);
    text += hex;
  }
  return text;
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
  CHECK(cert.fingerprint256 == sha256Fingerprint(TestPki::get().server.cert));
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
  anonymous.on("error", [](std::error_code) {});
  REQUIRE(runUntil(loop, [&] { return anonymous.destroyed() && !clientErrors.empty(); }));
  CHECK(reply.empty());
  CHECK(admitted.size() == 1);
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
  constexpr std::size_t kSize = 4 * 1024 * 1024;
  const std::string data = pattern(kSize);
  PatternStream received;
  bool ended = false;
  unsigned drains = 0;
  tls::Socket client = tls::connect(clientOptions(port), {}, loop);
  std::size_t offset = 0;
  const std::function<void()> writeMore = [&] {
    while (offset < kSize) {
      const std::size_t n = std::min<std::size_t>(64 * 1024, kSize - offset);
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
    client.pause();
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
    client.on("close", [&](bool hadError) {
      CHECK(!hadError);
      ++done;
    });
  }
  std::thread primaryThread([&] { first.run_for(5s); });
  CHECK(runUntil(clients, [&] { return done == kClients; }));
  stop = true;
  for (auto& thread : threads) thread.join();
  first.stop();
  primaryThread.join();
  CHECK(done == kClients);
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
