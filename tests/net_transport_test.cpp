// The loop's transport: epoll (asio's reactor) or io_uring, chosen per loop at its first socket
// or server; the same behaviour on both, and epoll where io_uring cannot be set up.
#include "net_test_util.hpp"

#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

using namespace evnet_test;

namespace {

// An echo server and a client on `loop`: the client sends `message` in pieces, ends, and gets
// the same bytes back before "close".
std::string echoOnce(asio::io_context& loop, std::string_view message) {
  auto server = evnet::net::createServer(
      [](evnet::net::Socket socket) {
        socket.on("data", [socket](evnet::Buffer chunk) mutable { socket.write(chunk); });
      },
      loop);
  server.listen(0, "127.0.0.1");
  std::string received;
  bool closed = false;
  server.on("listening", [&] {
    auto client = evnet::net::connect(server.address().port, "127.0.0.1", {}, {}, loop);
    client.on("connect", [client, message]() mutable {
      client.write(message.substr(0, message.size() / 2));
      client.end(message.substr(message.size() / 2));
    });
    client.on("data", [&](evnet::Buffer chunk) { received.append(chunk.data(), chunk.size()); });
    client.on("close", [&, server](bool) mutable {
      closed = true;
      server.close();
    });
  });
  REQUIRE(runUntil(loop, [&] { return closed; }));
  return received;
}

// What EVNET_TRANSPORT asks of this run: the tests are registered once per transport.
std::string_view requested() {
  const char* env = std::getenv("EVNET_TRANSPORT");
  return env != nullptr ? env : "";
}

}  // namespace

TEST_CASE("a loop's transport follows EVNET_TRANSPORT, else epoll") {
  asio::io_context loop;
  const evnet::Transport chosen = evnet::transport(loop);
  if (requested() == "io_uring" && EVNET_HAS_IO_URING) {
    CHECK(chosen == evnet::Transport::ioUring);
  } else {
    CHECK(chosen == evnet::Transport::epoll);
  }
  CHECK(echoOnce(loop, "the loop's own transport") == "the loop's own transport");
}

TEST_CASE("setTransport() picks a loop's transport, before its first socket only") {
  asio::io_context epollLoop;
  evnet::setTransport(epollLoop, evnet::Transport::epoll);
  CHECK(evnet::transport(epollLoop) == evnet::Transport::epoll);
  const std::string big(300 * 1024, 'e');  // more than one read buffer and one ring buffer
  CHECK(echoOnce(epollLoop, big) == big);
  CHECK_THROWS_AS(evnet::setTransport(epollLoop, evnet::Transport::ioUring), std::logic_error);

#if EVNET_HAS_IO_URING
  asio::io_context ringLoop;
  evnet::setTransport(ringLoop, evnet::Transport::ioUring);
  CHECK(evnet::transport(ringLoop) == evnet::Transport::ioUring);
  CHECK(echoOnce(ringLoop, big) == big);
#else
  asio::io_context ringLoop;
  evnet::setTransport(ringLoop, evnet::Transport::ioUring);
  CHECK_THROWS_AS(evnet::transport(ringLoop), std::system_error);
#endif
}

#if EVNET_HAS_IO_URING
// Forbids io_uring_setup in this process, as container runtimes' seccomp profiles do (EPERM).
static bool forbidIoUring() {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

TEST_CASE("where io_uring is forbidden, automatic is epoll and asking for io_uring throws") {
  // In a child process, since a seccomp filter cannot be lifted. Its exit status says what
  // failed: 0 all well, 1 no filter, 2 not epoll, 3 the echo failed, 4 no error for io_uring.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    if (!forbidIoUring()) ::_exit(1);
    ::unsetenv("EVNET_TRANSPORT");
    asio::io_context loop;
    if (evnet::transport(loop) != evnet::Transport::epoll) ::_exit(2);
    if (echoOnce(loop, "over epoll") != "over epoll") ::_exit(3);
    asio::io_context forced;
    evnet::setTransport(forced, evnet::Transport::ioUring);
    try {
      evnet::transport(forced);
    } catch (const std::system_error& e) {
      ::_exit(e.code() == std::errc::operation_not_permitted ? 0 : 4);
    }
    ::_exit(4);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
#endif
