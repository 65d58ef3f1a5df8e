// echo_client written with co_await: connect, send, print the echo, close (Node: the same client
// with await and events.once).
//   coroutine_client [--port N] [--host H] [--message TEXT]  (defaults: 7000, 127.0.0.1, "hello")
#include <evnet/evnet.hpp>

#include <asio/co_spawn.hpp>
#include <asio/use_awaitable.hpp>

#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

asio::awaitable<void> echo(unsigned short port, std::string host, std::string message) {
  evnet::net::Socket socket = co_await evnet::net::connect(port, host, asio::use_awaitable);
  co_await socket.write(message, asio::use_awaitable);  // resumes once the kernel has the bytes
  for (std::size_t received = 0; received < message.size();) {
    auto [chunk] = co_await evnet::once<"data">(socket, asio::use_awaitable);
    std::fwrite(chunk.data(), 1, chunk.size(), stdout);  // a view: use it before the next co_await
    received += chunk.size();
  }
  socket.end();
  co_await evnet::once<"close">(socket, asio::use_awaitable);
}

namespace {

constexpr const char* usage =
    "usage: coroutine_client [--port N] [--host H] [--message TEXT]\n"
    "  --port N        the echo server's port (default 7000)\n"
    "  --host H        the echo server's address (default 127.0.0.1)\n"
    "  --message TEXT  what to send (default \"hello\")\n";

// Says what is wrong with the command line, then the usage; exit status 2.
[[noreturn]] void badUsage(const std::string& what) {
  std::fprintf(stderr, "coroutine_client: %s\n%s", what.c_str(), usage);
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

  bool finished = false;
  int status = 1;
  asio::co_spawn(evnet::defaultLoop(), echo(port, host, message), [&](std::exception_ptr error) {
    finished = true;
    try {
      if (error) std::rethrow_exception(error);
      status = 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "coroutine_client: %s\n", e.what());
    }
  });
  evnet::run();  // returns once the coroutine is done
  // A connection that closes without an error while once<"data"> waits drops the waiting
  // coroutine: run() returns without it having finished.
  if (!finished) std::fprintf(stderr, "coroutine_client: connection closed before the echo\n");
  return status;
}
