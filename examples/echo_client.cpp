// The smallest complete evnet client: sends a message, prints what comes back, then closes.
//   echo_client [--port N] [--host H] [--message TEXT]     (defaults: 7000, 127.0.0.1, "hello")
#include <evnet/evnet.hpp>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

constexpr const char* usage =
    "usage: echo_client [--port N] [--host H] [--message TEXT]\n"
    "  --port N        the echo server's port (default 7000)\n"
    "  --host H        the echo server's address (default 127.0.0.1)\n"
    "  --message TEXT  what to send (default \"hello\")\n";

// Says what is wrong with the command line, then the usage; exit status 2.
[[noreturn]] void badUsage(const std::string& what) {
  std::fprintf(stderr, "echo_client: %s\n%s", what.c_str(), usage);
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
  std::string message = "hello";
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (flag != "--port" && flag != "--host" && flag != "--message")
      badUsage("unknown option '" + std::string(flag) + "'");
    if (i + 1 == argc) badUsage(std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--port") port = static_cast<unsigned short>(number(flag, value, 1, 65535));
    if (flag == "--host") host = value;
    if (flag == "--message") message = value;
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
