// The smallest complete evnet server: echoes every byte back (Node: see README "Examples").
//   echo_server [--port N] [--host H]      (default port 7000; 0 picks a free one)
#include <evnet/evnet.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

constexpr const char* usage =
    "usage: echo_server [--port N] [--host H]\n"
    "  --port N  the port to listen on, 0 for a free one (default 7000)\n"
    "  --host H  the address to listen on (default 127.0.0.1)\n";

// Says what is wrong with the command line, then the usage; exit status 2.
[[noreturn]] void badUsage(const std::string& what) {
  std::fprintf(stderr, "echo_server: %s\n%s", what.c_str(), usage);
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
  unsigned short port = 7000;
  std::string host = "127.0.0.1";
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (flag != "--port" && flag != "--host")
      badUsage("unknown option '" + std::string(flag) + "'");
    if (i + 1 == argc) badUsage(std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--port") port = static_cast<unsigned short>(number(flag, value, 0, 65535));
    if (flag == "--host") host = value;
  }

  auto server = evnet::net::createServer([](evnet::net::Socket socket) {
    // write() returns false once the peer reads slower than it sends: stop reading it until
    // what is queued has gone out, so a peer that never reads cannot grow the server.
    socket.on("data", [socket](evnet::Buffer chunk) mutable {
      if (socket.write(chunk)) return;
      socket.pause();
      socket.once("drain", [socket]() mutable { socket.resume(); });
    });
  });
  int status = 0;
  server.on("error", [&](std::error_code ec) {  // e.g. the port is in use
    std::fprintf(stderr, "echo_server: cannot listen on %s:%u: %s\n", host.c_str(), port,
                 ec.message().c_str());
    status = 1;  // nothing is left to run: run() returns
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
  return status;
}
