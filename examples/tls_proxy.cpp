// TLS termination in front of a plaintext TCP service, as stunnel and hitch do: clients speak
// TLS to the proxy, the proxy speaks plain TCP to the target, pipe() both ways so that a side
// that cannot keep up pauses the other (Node: tls.createServer + net.connect + pipe).
//   tls_proxy --cert FILE --key FILE [--port N] [--host H] [--target-host H] [--target-port P]
//   (defaults: port 9443, host 127.0.0.1, target 127.0.0.1:7000)
#include <evnet/tls.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace {

constexpr const char* kUsage =
    "usage: tls_proxy --cert FILE --key FILE [--port N] [--host H] [--target-host H]\n"
    "                 [--target-port P]\n"
    "  --cert FILE       the proxy's certificate chain (PEM)\n"
    "  --key FILE        its private key (PEM)\n"
    "  --port N          TLS port, 0 for a free one (default 9443)\n"
    "  --host H          address to listen on (default 127.0.0.1)\n"
    "  --target-host H   the plaintext service (default 127.0.0.1)\n"
    "  --target-port P   its port (default 7000)\n";

[[noreturn]] void usageError(const std::string& what) {
  std::fprintf(stderr, "tls_proxy: %s\n%s", what.c_str(), kUsage);
  std::exit(2);
}

unsigned short parsePort(std::string_view text, unsigned min) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535 || value < min)
    usageError("invalid port: " + std::string(text));
  return static_cast<unsigned short>(value);
}

std::string readFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "tls_proxy: cannot read %s\n", path.c_str());
    std::exit(1);
  }
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 9443;
  std::string host = "127.0.0.1";
  unsigned short targetPort = 7000;
  std::string targetHost = "127.0.0.1";
  std::string certFile;
  std::string keyFile;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (flag != "--port" && flag != "--host" && flag != "--cert" && flag != "--key" &&
        flag != "--target-host" && flag != "--target-port")
      usageError("unknown option: " + std::string(flag));
    if (i + 1 == argc) usageError(std::string(flag) + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--port") port = parsePort(value, 0);
    if (flag == "--host") host = value;
    if (flag == "--cert") certFile = value;
    if (flag == "--key") keyFile = value;
    if (flag == "--target-host") targetHost = value;
    if (flag == "--target-port") targetPort = parsePort(value, 1);
  }
  if (certFile.empty() || keyFile.empty()) usageError("--cert and --key are required");

  // Half-open on both sides: a client that has finished sending still gets the whole reply.
  evnet::tls::ServerOptions options;
  options.allowHalfOpen = true;
  evnet::net::SocketOptions targetOptions;
  targetOptions.allowHalfOpen = true;
  try {
    evnet::tls::SecureContextOptions context;
    context.cert = readFile(certFile);
    context.key = readFile(keyFile);
    options.secureContext = evnet::tls::createSecureContext(context);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tls_proxy: %s\n", e.what());
    return 1;
  }
  bool stopping = false;

  auto server = evnet::tls::createServer(options, [&](evnet::tls::Socket client) {
    auto target = evnet::net::connect(targetPort, targetHost, {}, targetOptions);
    client.pipe(target);  // each side's "end" ends the other; "drain" resumes the paused one
    target.pipe(client);
    // When one side closes the other follows: with a reset after an error (so that the other
    // peer learns it), at once on shutdown, otherwise once what is queued for it has gone out.
    client.on("close", [&stopping, target](bool hadError) mutable {
      if (hadError)
        target.resetAndDestroy();
      else if (stopping)
        target.destroy();
      else
        target.destroySoon();
    });
    target.on("close", [&stopping, client](bool hadError) mutable {
      if (hadError || stopping)
        client.destroy();  // TLS has no reset of its own: the connection is cut
      else
        client.destroySoon();
    });
    client.on("error", [](std::error_code) {});
    target.on("error", [](std::error_code ec) {
      std::fprintf(stderr, "tls_proxy: target: %s\n", ec.message().c_str());
    });
  });
  server.on("tlsClientError", [](std::error_code ec, evnet::tls::Socket) {
    std::fprintf(stderr, "tls_proxy: handshake failed: %s\n", ec.message().c_str());
  });
  server.on("error", [](std::error_code ec) {
    std::fprintf(stderr, "tls_proxy: %s\n", ec.message().c_str());
    std::exit(1);
  });
  server.listen(port, host, [&] {
    std::printf("listening on %s:%u\n", host.c_str(), server.address().port);
    std::fflush(stdout);
  });

  // SIGINT or SIGTERM: stop accepting and close every connection; run() then returns (Node:
  // process.on('SIGTERM', ...)). A listener does not keep the loop running on its own.
  auto stop = [&] {
    stopping = true;  // the clients' "close" then destroys their targets
    server.close().closeAllConnections();
  };
  evnet::process().on("SIGINT", stop);
  evnet::process().on("SIGTERM", stop);
  evnet::run();
}
