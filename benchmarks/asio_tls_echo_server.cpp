// asio_tls_echo_server — the reference TLS echo server for the benchmarks, written the way
// asio's own SSL example (asio/src/examples/cpp11/ssl/server.cpp) is: one io_context, an
// asio::ssl::stream<tcp::socket> per session, async_handshake, then async_read_some into a
// per-session buffer followed by asio::async_write of what was read, sessions kept alive by
// shared_from_this. The context is asio's defaults for a TLS server (OpenSSL's protocol
// versions, ciphers and session tickets), with the certificate chain and key from PEM files.
//
//   asio_tls_echo_server --cert FILE --key FILE [--port N] [--host 127.0.0.1]
//
// --port 0 (the default) picks an ephemeral port. Once listening it prints exactly one line,
// "listening on <host>:<port>", and exits 0 on SIGINT or SIGTERM. Accepted sockets get
// TCP_NODELAY, as the other servers compared do.

#include <asio.hpp>
#include <asio/ssl.hpp>

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
  Session(tcp::socket socket, asio::ssl::context& context) : socket_(std::move(socket), context) {}

  void start() { do_handshake(); }

 private:
  void do_handshake() {
    auto self = shared_from_this();
    socket_.async_handshake(asio::ssl::stream_base::server, [this, self](std::error_code ec) {
      if (!ec) do_read();
    });
  }

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

  asio::ssl::stream<tcp::socket> socket_;
  std::array<char, std::size_t{16} * 1024> buffer_;
};

class Server {
 public:
  Server(asio::io_context& io, const tcp::endpoint& endpoint, const std::string& cert,
         const std::string& key)
      : acceptor_(io, endpoint), context_(asio::ssl::context::tls_server) {
    context_.set_options(asio::ssl::context::default_workarounds);
    context_.use_certificate_chain_file(cert);
    context_.use_private_key_file(key, asio::ssl::context::pem);
    do_accept();
  }

  unsigned short port() const { return acceptor_.local_endpoint().port(); }

 private:
  void do_accept() {
    acceptor_.async_accept([this](std::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<Session>(std::move(socket), context_)->start();
      }
      do_accept();
    });
  }

  tcp::acceptor acceptor_;
  asio::ssl::context context_;
};

struct UsageError {};

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  std::string cert;
  std::string key;
};

Options parse_args(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) throw UsageError();
    std::string value = argv[++i];
    if (flag == "--host") {
      options.host = value;
    } else if (flag == "--port") {
      options.port = static_cast<unsigned short>(std::stoul(value));
    } else if (flag == "--cert") {
      options.cert = value;
    } else if (flag == "--key") {
      options.key = value;
    } else {
      throw UsageError();
    }
  }
  if (options.cert.empty() || options.key.empty()) throw UsageError();
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options options = parse_args(argc, argv);
    asio::io_context io;
    Server server(io, tcp::endpoint(asio::ip::make_address(options.host), options.port),
                  options.cert, options.key);

    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&io](std::error_code, int) { io.stop(); });

    std::printf("listening on %s:%u\n", options.host.c_str(), unsigned{server.port()});
    std::fflush(stdout);
    io.run();
  } catch (const UsageError&) {
    std::fprintf(stderr,
                 "usage: asio_tls_echo_server --cert FILE --key FILE [--port N] "
                 "[--host 127.0.0.1]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "asio_tls_echo_server: %s\n", e.what());
    return 1;
  }
  return 0;
}
