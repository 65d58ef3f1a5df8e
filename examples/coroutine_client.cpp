// echo_client written with co_await: connect, send, print the echo, close (Node: the same client
// with await and events.once).
//   coroutine_client [--port N] [--host H] [--message TEXT]  (defaults: 7000, 127.0.0.1, "hello")
#include <evnet/evnet.hpp>

#include <asio/co_spawn.hpp>
#include <asio/use_awaitable.hpp>

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
