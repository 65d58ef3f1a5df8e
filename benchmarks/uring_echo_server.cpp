// A hand-written io_uring echo server on liburing alone (no asio, no evnet): the ceiling that
// issue #16 measures evnet's io_uring transport against. One ring set up with SINGLE_ISSUER and
// DEFER_TASKRUN, a multishot accept, one multishot receive per connection into a shared ring of
// provided buffers (registered by hand: Debian's liburing 2.3 has no io_uring_setup_buf_ring),
// one send in flight per connection, and one io_uring_submit_and_wait() per turn of the loop.
//
// uring_echo_server [--port N] [--host H]   (IPv4 only; prints "listening on H:P")
#include <liburing.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr unsigned bufferCount = 256;
constexpr unsigned bufferSize = 4096;
constexpr int bufferGroup = 0;

enum class Kind : std::uint8_t { accept, receive, send };

struct Connection {
  int fd;
  std::string sending;  // bytes the kernel is sending now
  std::string pending;  // bytes received while a send was in flight
  bool sendInFlight = false;
  bool closing = false;
};

volatile std::sig_atomic_t stopRequested = 0;

std::uint64_t tag(Kind kind, Connection* connection) {
  return reinterpret_cast<std::uintptr_t>(connection) | static_cast<std::uint64_t>(kind);
}

class Server {
 public:
  explicit Server(int listener) : listener_(listener) {
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (const int r = io_uring_queue_init_params(4096, &ring_, &params); r < 0)
      fail("io_uring_queue_init", -r);
    const std::size_t ringBytes = bufferCount * sizeof(io_uring_buf);
    void* mapped =
        mmap(nullptr, ringBytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mapped == MAP_FAILED) fail("mmap", errno);
    buffers_ = static_cast<io_uring_buf_ring*>(mapped);
    io_uring_buf_ring_init(buffers_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(buffers_);
    reg.ring_entries = bufferCount;
    reg.bgid = bufferGroup;
    if (const int r = io_uring_register_buf_ring(&ring_, &reg, 0); r < 0)
      fail("io_uring_register_buf_ring", -r);
    storage_.resize(std::size_t{bufferCount} * bufferSize);
    for (unsigned i = 0; i < bufferCount; ++i)
      io_uring_buf_ring_add(buffers_, &storage_[std::size_t{i} * bufferSize], bufferSize,
                            static_cast<unsigned short>(i), io_uring_buf_ring_mask(bufferCount),
                            static_cast<int>(i));
    io_uring_buf_ring_advance(buffers_, bufferCount);
    armAccept();
  }

  void run() {
    while (stopRequested == 0) {
      const int r = io_uring_submit_and_wait(&ring_, 1);
      if (r < 0 && r != -EINTR) fail("io_uring_submit_and_wait", -r);
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_cqe* cqe = nullptr;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        complete(cqe);
      }
      io_uring_cq_advance(&ring_, seen);
      if (recycled_ != 0) {
        io_uring_buf_ring_advance(buffers_, recycled_);
        recycled_ = 0;
      }
    }
  }

 private:
  [[noreturn]] static void fail(const char* what, int error) {
    std::fprintf(stderr, "uring_echo_server: %s: %s\n", what, std::strerror(error));
    std::exit(1);
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* entry = io_uring_get_sqe(&ring_);
    if (entry == nullptr) {
      io_uring_submit(&ring_);
      entry = io_uring_get_sqe(&ring_);
    }
    return entry;
  }

  void armAccept() {
    io_uring_sqe* entry = sqe();
    io_uring_prep_multishot_accept(entry, listener_, nullptr, nullptr, 0);
    io_uring_sqe_set_data64(entry, tag(Kind::accept, nullptr));
  }

  void armReceive(Connection* connection) {
    io_uring_sqe* entry = sqe();
    io_uring_prep_recv_multishot(entry, connection->fd, nullptr, 0, 0);
    entry->flags |= IOSQE_BUFFER_SELECT;
    entry->buf_group = bufferGroup;
    io_uring_sqe_set_data64(entry, tag(Kind::receive, connection));
  }

  void send(Connection* connection) {
    connection->sendInFlight = true;
    io_uring_sqe* entry = sqe();
    io_uring_prep_send(entry, connection->fd, connection->sending.data(),
                       connection->sending.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(entry, tag(Kind::send, connection));
  }

  void recycle(unsigned short id) {
    io_uring_buf_ring_add(buffers_, &storage_[std::size_t{id} * bufferSize], bufferSize, id,
                          io_uring_buf_ring_mask(bufferCount), static_cast<int>(recycled_));
    ++recycled_;
  }

  void close(Connection* connection) {
    connection->closing = true;
    if (connection->sendInFlight) return;  // the send's completion frees it
    ::close(connection->fd);
    delete connection;
  }

  void complete(io_uring_cqe* cqe) {
    const std::uint64_t data = io_uring_cqe_get_data64(cqe);
    const auto kind = static_cast<Kind>(data & 3);
    auto* connection = reinterpret_cast<Connection*>(data & ~std::uint64_t{3});
    const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    switch (kind) {
      case Kind::accept:
        if (cqe->res >= 0) {
          const int one = 1;
          setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          armReceive(new Connection{cqe->res, {}, {}});
        }
        if (!more) armAccept();
        return;
      case Kind::receive:
        if (cqe->res > 0) {
          const auto id = static_cast<unsigned short>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
          const char* bytes = &storage_[std::size_t{id} * bufferSize];
          if (connection->sendInFlight) {
            connection->pending.append(bytes, static_cast<std::size_t>(cqe->res));
          } else {
            connection->sending.assign(bytes, static_cast<std::size_t>(cqe->res));
            send(connection);
          }
          recycle(id);
          if (!more) armReceive(connection);
        } else if (cqe->res == -ENOBUFS) {
          if (!more) armReceive(connection);
        } else if (!more && !connection->closing) {
          close(connection);
        }
        return;
      case Kind::send:
        connection->sendInFlight = false;
        if (connection->closing) {
          close(connection);
          return;
        }
        if (cqe->res < 0) return;  // the receive sees the error and closes
        connection->sending.erase(0, static_cast<std::size_t>(cqe->res));
        connection->sending.append(connection->pending);
        connection->pending.clear();
        if (!connection->sending.empty()) send(connection);
        return;
    }
  }

  io_uring ring_{};
  io_uring_buf_ring* buffers_ = nullptr;
  std::vector<char> storage_;
  unsigned recycled_ = 0;
  int listener_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      port = std::atoi(argv[++i]);
    } else if (arg == "--host" && i + 1 < argc) {
      host = argv[++i];
    } else {
      std::fprintf(stderr, "usage: uring_echo_server [--port N] [--host H]\n");
      return 2;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  struct sigaction action {};
  action.sa_handler = [](int) { stopRequested = 1; };
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
    std::fprintf(stderr, "uring_echo_server: --host must be an IPv4 address\n");
    return 2;
  }
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      listen(listener, 1024) != 0) {
    std::perror("uring_echo_server: bind/listen");
    return 1;
  }
  socklen_t length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::printf("listening on %s:%d\n", host.c_str(), ntohs(address.sin_port));
  std::fflush(stdout);
  Server server(listener);
  server.run();
  return 0;
}
