// A TLS echo server: every byte a client sends comes back, encrypted (Node: see README "TLS").
//   tls_echo_server --cert FILE --key FILE [--port N] [--host H]
//   (default port 8443, 0 picks a free one; host 127.0.0.1; cert and key are PEM files)
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
    "usage: tls_echo_server --cert FILE --key FILE [--port N] [--host H]\n"
    "  --cert FILE  the server's certificate chain (PEM)\n"
    "  --key FILE   its private key (PEM)\n"
    "  --port N     TCP port, 0 for a free one (default 8443)\n"
    "  --host H     address to listen on (default 127.0.0.1)\n";

[[noreturn]] void usageError(const std::string& what) {
  std::fprintf(stderr, "tls_echo_server: %s\n%s", what.c_str(), kUsage);
  std::exit(2);
}

unsigned short parsePort(std::string_view text) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 65535)
    usageError("invalid port: " + std::string(text));
  return static_cast<unsigned short>(value);
}

std::string readFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "tls_echo_server: cannot read %s\n", path.c_str());
    std::exit(1);
  }
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 8443;
  std::string host = "127.0.0.1";
  std::string certFile;
  std::string keyFile;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (flag != "--port" && flag != "--host" && flag != "--cert" && flag != "--key")
      usageError("unknown option: " + std::string(flag));
    if (i + 1 == argc) usageError(std::string(flag) + " needs a value");
    const std::string value = argv[++i];
    if (flag == "--port") port = parsePort(value);
    if (flag == "--host") host = value;
    if (flag == "--cert") certFile = value;
    if (flag == "--key") keyFile = value;
  }
  if (certFile.empty() || keyFile.empty()) usageError("--cert and --key are required");

  evnet::tls::ServerOptions options;
  try {
    evnet::tls::SecureContextOptions context;
    context.cert = readFile(certFile);
    context.key = readFile(keyFile);
    options.secureContext = evnet::tls::createSecureContext(context);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tls_echo_server: %s\n", e.what());
    return 1;
  }

  // pipe() to itself: a client that sends without reading is paused, not buffered without end.
  auto server = evnet::tls::createServer(options, [](evnet::tls::Socket socket) {
    socket.pipe(socket);
    socket.on("error", [](std::error_code) {});  // a client's reset ends only that connection
  });
  server.on("tlsClientError", [](std::error_code ec, evnet::tls::Socket) {
    std::fprintf(stderr, "tls_echo_server: handshake failed: %s\n", ec.message().c_str());
  });
  server.on("error", [](std::error_code ec) {
    std::fprintf(stderr, "tls_echo_server: %s\n", ec.message().c_str());
    std::exit(1);
  });
  server.listen(port, host, [&] {
    std::printf("listening on %s:%u\n", host.c_str(), server.address().port);
    std::fflush(stdout);
  });

  // SIGINT or SIGTERM: stop accepting and close every connection; run() then returns (Node:
  // process.on('SIGTERM', ...)). A listener does not keep the loop running on its own.
  auto stop = [&] { server.close().closeAllConnections(); };
  evnet::process().on("SIGINT", stop);
  evnet::process().on("SIGTERM", stop);
  evnet::run();
}
