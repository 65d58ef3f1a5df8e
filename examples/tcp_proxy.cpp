// Forwards every connection to a target host:port, both ways, with pipe(): a side that cannot keep
// up pauses the other, so memory stays bounded (Node: net.createServer + net.connect + pipe). A
// reset on one side is passed on as a reset (Node: socket.resetAndDestroy()).
//   tcp_proxy [--port N] [--host H] [--target-host H] [--target-port P]
//   (defaults: 7002, 127.0.0.1, target 127.0.0.1:7000)
#include <evnet/evnet.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

constexpr const char* usage =
    "usage: tcp_proxy [--port N] [--host H] [--target-port P] [--target-host H]\n"
    "  --port N         the port to listen on, 0 for a free one (default 7002)\n"
    "  --host H         the address to listen on (default 127.0.0.1)\n"
    "  --target-port P  the port to forward to (default 7000)\n"
    "  --target-host H  the address to forward to (default 127.0.0.1)\n";

// Says what is wrong with the command line, then the usage; exit status 2.
[[noreturn]] void badUsage(const std::string& what) {
  std::fprintf(stderr, "tcp_proxy: %s\n%s", what.c_str(), usage);
  std::exit(2);
}

// The number in text, if it is all digits and from min to max.
unsigned long number(std::string_view flag, std::string_view text, unsigned long min,
                     unsigned long max) {
  unsigned long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max)
    badUsage(std::string(flag) + ": '" + std::string(text) + "' is not a number from " +
             std::to_string(min) + " to " + std::to_string(max));
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 7002;
  std::string host = "127.0.0.1";
  unsigned short targetPort = 7000;
  std::string targetHost = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (flag != "--port" && flag != "--host" && flag != "--target-port" && flag != "--target-host")
      badUsage("unknown option '" + std::string(flag) + "'");
    if (i + 1 == argc) badUsage(std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--port") port = static_cast<unsigned short>(number(flag, value, 0, 65535));
    if (flag == "--host") host = value;
    if (flag == "--target-port")
      targetPort = static_cast<unsigned short>(number(flag, value, 1, 65535));
    if (flag == "--target-host") targetHost = value;
  }

  // Half-open on both sides: a client that has finished sending still gets the whole reply.
  evnet::net::ServerOptions clientOptions;
  clientOptions.allowHalfOpen = true;
  evnet::net::SocketOptions targetOptions;
  targetOptions.allowHalfOpen = true;
  bool stopping = false;

  auto server = evnet::net::createServer(clientOptions, [&](evnet::net::Socket client) {
    auto target = evnet::net::connect(targetPort, targetHost, {}, targetOptions);
    client.pipe(target);  // each side's "end" ends the other; "drain" resumes the paused one
    target.pipe(client);
    // When one side closes the other follows: at once after an error or on shutdown, otherwise
    // once what is queued for it has gone out.
    auto follow = [&stopping](evnet::net::Socket other) {
      return [&stopping, other](bool hadError) mutable {
        if (hadError || stopping)
          other.destroy();
        else
          other.destroySoon();
      };
    };
    client.on("close", follow(target));
    target.on("close", follow(client));
    // A side that was reset is reset on the other side too: a clean end there would pass a
    // cut-off stream for a complete one. ("error" comes before "close".)
    auto relayReset = [](evnet::net::Socket other) {
      return [other](std::error_code ec) mutable {
        if (ec == std::errc::connection_reset) other.resetAndDestroy();
      };
    };
    client.on("error", relayReset(target));
    target.on("error", relayReset(client));
    target.on("error", [](std::error_code ec) {
      std::fprintf(stderr, "tcp_proxy: target: %s\n", ec.message().c_str());
    });
  });
  int status = 0;
  server.on("error", [&](std::error_code ec) {  // e.g. the port is in use
    std::fprintf(stderr, "tcp_proxy: cannot listen on %s:%u: %s\n", host.c_str(), port,
                 ec.message().c_str());
    status = 1;  // nothing is left to run: run() returns
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
  return status;
}
