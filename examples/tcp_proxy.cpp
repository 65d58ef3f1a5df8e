// Forwards every connection to a target host:port, both ways, with pipe(): a side that cannot keep
// up pauses the other, so memory stays bounded (Node: net.createServer + net.connect + pipe).
//   tcp_proxy [--port N] [--host H] [--target-host H] [--target-port P]
//   (defaults: 7002, 127.0.0.1, target 127.0.0.1:7000)
#include <evnet/evnet.hpp>

#include <asio/signal_set.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  unsigned short port = 7002;
  std::string host = "127.0.0.1";
  unsigned short targetPort = 7000;
  std::string targetHost = "127.0.0.1";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port") port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    if (flag == "--host") host = argv[i + 1];
    if (flag == "--target-port") targetPort = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    if (flag == "--target-host") targetHost = argv[i + 1];
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
    target.on("error", [](std::error_code ec) {
      std::fprintf(stderr, "tcp_proxy: target: %s\n", ec.message().c_str());
    });
  });
  server.listen(port, host, [&] {
    std::printf("listening on %s:%u\n", host.c_str(), server.address().port);
    std::fflush(stdout);
  });

  asio::signal_set signals(evnet::defaultLoop(), SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) {
    stopping = true;  // the clients' "close" then destroys their targets
    server.close().closeAllConnections();
  });
  evnet::run();
}
