// asio_echo_server — the reference echo server for the benchmarks, written the canonical way:
// one io_context, async_read_some into a per-session buffer followed by asio::async_write of
// what was read, sessions kept alive by shared_from_this.
//
//   asio_echo_server [--port N] [--host 127.0.0.1]
//
// --port 0 (the default) picks an ephemeral port. Once listening it prints exactly one line,
// "listening on <host>:<port>", and exits 0 on SIGINT or SIGTERM. Accepted sockets get
// TCP_NODELAY, as the other servers compared do.

#include <asio.hpp>

#include <array>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace {

using asio::ip::tcp;

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}

  void start() { do_read(); }

 private:
  void do_read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(buffer_),
                            [this, self](std::error_code ec, std::size_t length) {
                              if (!ec) do_write(length);
                            });
  }

  void do_write(std::size_t length) {
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(buffer_, length),
                      [this, self](std::error_code ec, std::size_t /*written*/) {
                        if (!ec) do_read();
                      });
  }

  tcp::socket socket_;
  std::array<char, std::size_t{16} * 1024> buffer_;
};

class Server {
 public:
  Server(asio::io_context& io, const tcp::endpoint& endpoint) : acceptor_(io, endpoint) {
    do_accept();
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

 private:
  void do_accept() {
    acceptor_.async_accept([this](std::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket))->start();
      }
      do_accept();
    });
  }

  tcp::acceptor acceptor_;
};

struct UsageError {};

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
};

Options parse_args(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc || (flag != "--port" && flag != "--host")) throw UsageError();
    std::string value = argv[++i];
    if (flag == "--host") {
      options.host = value;
    } else {
      options.port = static_cast<unsigned short>(std::stoul(value));
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options options = parse_args(argc, argv);
    asio::io_context io;
    Server server(io, tcp::endpoint(asio::ip::make_address(options.host), options.port));

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](std::error_code, int) { io.stop(); });

    std::printf("listening on %s:%u\n", options.host.c_str(), unsigned{server.port()});
    std::fflush(stdout);
    io.run();
  } catch (const UsageError&) {
    std::fprintf(stderr, "usage: asio_echo_server [--port N] [--host 127.0.0.1]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_echo_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
