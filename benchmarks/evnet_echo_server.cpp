// evnet_echo_server — the evnet echo server of the benchmarks: examples/echo_server.cpp plus an
// idle timeout armed on every socket, so that its cost is part of what is measured.
//
//   evnet_echo_server [--port N] [--host H] [--timeout MS]
//
// --port 0 (the default) picks an ephemeral port; --timeout MS calls socket.setTimeout(MS) on
// every accepted socket and ends a socket idle that long (0, the default, arms nothing). Prints
// "listening on <host>:<port>" once listening; exits 0 at once on SIGINT or SIGTERM.
#include <evnet/evnet.hpp>

#include <asio/signal_set.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  unsigned short port = 0;
  std::string host = "127.0.0.1";
  unsigned timeout = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port") port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    if (flag == "--host") host = argv[i + 1];
    if (flag == "--timeout") timeout = static_cast<unsigned>(std::atoi(argv[i + 1]));
  }

  auto server = evnet::net::createServer([timeout](evnet::net::Socket socket) {
    socket.on("data", [socket](evnet::Buffer chunk) mutable {
      if (socket.write(chunk)) return;
      socket.pause();
      socket.once("drain", [socket]() mutable { socket.resume(); });
    });
    if (timeout != 0) socket.setTimeout(timeout, [socket]() mutable { socket.end(); });
  });
  server.listen(port, host, [&] {
    std::printf("listening on %s:%u\n", host.c_str(), server.address().port);
    std::fflush(stdout);
  });

  asio::signal_set signals(evnet::defaultLoop(), SIGINT, SIGTERM);
  // stop(): an idle-timeout timer would otherwise keep run() going for up to MS after the last
  // socket closed, and the benchmark scripts (callgrind, strace) wait for the exit.
  signals.async_wait([&](std::error_code, int) {
    server.close().closeAllConnections();
    evnet::defaultLoop().stop();
  });
  evnet::run();
}
