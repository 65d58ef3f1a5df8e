// The smallest complete evnet server: echoes every byte back (Node: see README "Examples").
//   echo_server [--port N] [--host H]      (default port 7000; 0 picks a free one)
#include <evnet/evnet.hpp>

#include <asio/signal_set.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  unsigned short port = 7000;
  std::string host = "127.0.0.1";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port") port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    if (flag == "--host") host = argv[i + 1];
  }

  auto server = evnet::net::createServer([](evnet::net::Socket socket) {
    socket.on("data", [socket](evnet::Buffer chunk) mutable { socket.write(chunk); });
  });
  server.listen(port, host, [&] {
    std::printf("listening on %s:%u\n", host.c_str(), server.address().port);
    std::fflush(stdout);
  });

  asio::signal_set signals(evnet::defaultLoop(), SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) { server.close().closeAllConnections(); });
  evnet::run();
}
