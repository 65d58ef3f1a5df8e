// The smallest complete evnet client: sends a message, prints what comes back, then closes.
//   echo_client [--port N] [--host H] [--message TEXT]     (defaults: 7000, 127.0.0.1, "hello")
#include <evnet/evnet.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

int main(int argc, char** argv) {
  unsigned short port = 7000;
  std::string host = "127.0.0.1";
  std::string message = "hello";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--port") port = static_cast<unsigned short>(std::atoi(argv[i + 1]));
    if (flag == "--host") host = argv[i + 1];
    if (flag == "--message") message = argv[i + 1];
  }

  int status = 0;
  auto client = evnet::net::connect(port, host);
  client.on("connect", [&] { client.end(message); });  // send, then half-close
  client.on("data",
            [](evnet::Buffer chunk) { std::fwrite(chunk.data(), 1, chunk.size(), stdout); });
  client.on("error", [&](std::error_code ec) {
    std::fprintf(stderr, "echo_client: %s\n", ec.message().c_str());
    status = 1;
  });
  evnet::run();  // returns once the socket has closed
  return status;
}
