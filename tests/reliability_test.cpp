// Reliability (issue 7): faults, floods and bad input. The server keeps serving and loses
// nothing. Every case runs on a fresh io_context against a deadline, on loopback only, and ends
// by checking that the server still echoes and that every byte a healthy client sent came back
// intact (count and checksum). Misbehaving peers are plain asio sockets (RST, silence, never
// reading); processes that change the descriptor limit or need more descriptors than one process
// has are forked, so this process's limit stays as it was.
#include "net_test_util.hpp"

#include <evnet/net.hpp>
#include <evnet/timers.hpp>

#include <doctest/doctest.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace net = evnet::net;
using namespace evnet_test;
using tcp = asio::ip::tcp;

// Defined when UBSan's runtime is linked in (weak: null otherwise).
extern "C" __attribute__((weak)) void __ubsan_handle_dynamic_type_cache_miss(void*, void*, void*);

namespace {

constexpr bool kUnderASan = evnet::detail::kAddressSanitized;

bool underUBSan() { return &__ubsan_handle_dynamic_type_cache_miss != nullptr; }

constexpr std::size_t kHighWaterMark = net::SocketOptions{}.highWaterMark;
constexpr std::size_t kReadChunk = evnet::detail::LoopService::kReadBufferSize;

Digest patternDigest(std::size_t size) {
  Digest digest;
  digest.add(pattern(size));
  return digest;
}

std::size_t envSize(const char* name, std::size_t fallback) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return fallback;
  return static_cast<std::size_t>(std::strtoull(value, nullptr, 10));
}

// Open descriptors of this process (the /proc listing's own descriptor included, every time).
std::size_t openDescriptors() {
  std::size_t count = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* entry = ::readdir(dir))
      if (entry->d_name[0] != '.') ++count;
    ::closedir(dir);
  }
  return count;
}

// Resident memory in KiB (VmRSS of /proc/self/status).
std::size_t residentKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("VmRSS:")) return std::strtoull(line.c_str() + 6, nullptr, 10);
  return 0;
}

double cpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// A client that streams `total` patterned bytes through an echo server, honouring backpressure,
// and checks what comes back: the healthy client next to the misbehaving ones.
class HealthyClient {
 public:
  HealthyClient(asio::io_context& loop, unsigned short port, std::size_t total,
                std::size_t chunk = 16 * 1024)
      : total_(total), chunk_(chunk) {
    socket_ = net::connect(port, "127.0.0.1", {}, {}, loop);
    socket_.on("connect", [this] { pump(); });
    socket_.on("drain", [this] { pump(); });
    socket_.on("data", [this](evnet::Buffer data) { received_.add(data); });
    socket_.on("error", [this](std::error_code ec) { error_ = ec; });
    socket_.on("close", [this](bool) { closed_ = true; });
  }
  HealthyClient(const HealthyClient&) = delete;
  HealthyClient& operator=(const HealthyClient&) = delete;

  bool done() const { return received_.size() >= total_ || closed_; }
  bool closed() const { return closed_; }
  void check() const {
    CHECK(!error_);
    CHECK(!closed_);
    CHECK(sent_.count == total_);
    CHECK(received_.size() == total_);
    CHECK(received_.digest == sent_);
    CHECK(received_.intact());
  }
  net::Socket& socket() { return socket_; }

 private:
  void pump() {
    while (sent_.count < total_) {
      std::string bytes = pattern(std::min(chunk_, total_ - sent_.count), sent_.count);
      sent_.add(bytes);
      if (!socket_.write(std::move(bytes))) return;
    }
  }

  net::Socket socket_;
  std::size_t total_;
  std::size_t chunk_;
  Digest sent_;
  PatternStream received_;
  std::error_code error_;
  bool closed_ = false;
};

// The server still serves: a new client's 64 KiB come back intact.
void checkServes(asio::io_context& loop, unsigned short port) {
  HealthyClient client(loop, port, 64 * 1024);
  REQUIRE(runUntil(loop, [&] { return client.done(); }));
  client.check();
  client.socket().destroy();
  REQUIRE(runUntil(loop, [&] { return client.closed(); }));
}

// The end of the cases whose server is not an echo server: once its connections are gone, it is
// made one, and it still serves.
void checkServesAsEcho(asio::io_context& loop, net::Server& server, unsigned short port) {
  REQUIRE(runUntil(loop, [&] { return server.getConnections() == 0; }));
  server.removeAllListeners("connection");
  server.on("connection", echoBack);
  checkServes(loop, port);
}

// A blocking-connected asio socket (loopback connects complete in the backlog, no waiting on
// the loop), optionally with a small receive buffer set before connecting.
tcp::socket rawConnect(asio::io_context& loop, unsigned short port, int receiveBuffer = 0) {
  tcp::socket socket(loop);
  socket.open(tcp::v4());
  if (receiveBuffer > 0) socket.set_option(asio::socket_base::receive_buffer_size(receiveBuffer));
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  return socket;
}

// Closes with a TCP RST instead of a FIN (SO_LINGER {1, 0}).
void resetClose(tcp::socket& socket) {
  std::error_code ignored;
  socket.set_option(asio::socket_base::linger(true, 0), ignored);
  socket.close(ignored);
}

// What the server saw of one connection, by the peer's port.
struct Seen {
  net::Socket socket;
  Log log;
  std::error_code error;
  std::uint64_t bytesRead = 0;
  bool closed() const { return !log.empty() && log.back().starts_with("close"); }
};

void record(net::Socket socket, Seen& seen) {
  seen.socket = socket;
  socket.on("data", [&seen](evnet::Buffer data) {
    seen.bytesRead += data.size();
    if (seen.log.empty() || seen.log.back() != "data") seen.log.push_back("data");
  });
  socket.on("end", [&seen] { seen.log.push_back("end"); });
  socket.on("error", [&seen](std::error_code ec) {
    seen.log.push_back("error");
    seen.error = ec;
  });
  socket.on("close", [&seen](bool hadError) {
    seen.log.push_back(hadError ? "close(true)" : "close(false)");
    // Drop our handle: the server must not keep a closed connection alive because of us.
    seen.socket = net::Socket();
  });
}

// The server of the reset cases: a first chunk starting with 'B' asks for one 16 MiB write, 'R'
// for a sink that only reads, anything else is echoed. Every connection is recorded.
struct ResetServer {
  explicit ResetServer(asio::io_context& loop) : server({}, loop) {
    server.on("connection", [this](net::Socket socket) {
      Seen& entry = seen[socket.remotePort()];
      record(socket, entry);
      auto mode = std::make_shared<char>('\0');
      socket.on("data", [socket, mode](evnet::Buffer data) mutable {
        if (*mode == '\0') *mode = data[0] == 'B' || data[0] == 'R' ? data[0] : 'E';
        if (*mode == 'B' && data[0] == 'B') socket.write(std::string(16 * 1024 * 1024, 'b'));
        if (*mode == 'E') socket.write(data);
      });
    });
  }
  net::Server server;
  std::map<unsigned short, Seen> seen;
};

// A forked child's report: it writes its failures (nothing when all held) to a pipe and exits.
// The parent reads the pipe on its own loop (so a server there keeps serving), then reaps it.
class Child {
 public:
  explicit Child(std::function<std::string()> body) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    std::fflush(nullptr);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      ::close(fds[0]);
      closeInheritedDescriptors(fds[1]);
      std::string report;
      try {
        report = body();
      } catch (const std::exception& e) {
        report = std::string("exception: ") + e.what();
      } catch (...) {
        report = "unknown exception";
      }
      if (report.empty()) report = "ok";
      const ssize_t written = ::write(fds[1], report.data(), report.size());
      ::_exit(written == static_cast<ssize_t>(report.size()) ? 0 : 3);
    }
    ::close(fds[1]);
    readEnd_ = fds[0];
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (readEnd_ >= 0) ::close(readEnd_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  // Reads the report on loop (true once it ended); the loop keeps running other work.
  void readOn(asio::io_context& loop) {
    pipe_ = std::make_unique<asio::posix::stream_descriptor>(loop, std::exchange(readEnd_, -1));
    readMore();
  }
  bool reported() const { return ended_; }
  const std::string& report() const { return report_; }

  // Waits for the report without a loop, then reaps the child; the exit status must be 0.
  std::string wait(std::chrono::seconds deadline) {
    const auto end = Clock::now() + deadline;
    std::array<char, 4096> buffer{};
    while (readEnd_ >= 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left.count() <= 0) return "the child did not report within the deadline";
      pollfd p{readEnd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      const ssize_t n = ::read(readEnd_, buffer.data(), buffer.size());
      if (n > 0) {
        report_.append(buffer.data(), static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(std::exchange(readEnd_, -1));
      }
    }
    return reap();
  }
  std::string reap() {
    int status = 0;
    ::waitpid(std::exchange(pid_, -1), &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return report_ + " (child status " + std::to_string(status) + ")";
    return report_;
  }

 private:
  // The child keeps only stdio and its report pipe: the parent's loop, server and sockets are
  // not its to hold open.
  static void closeInheritedDescriptors(int keep) {
    std::vector<int> fds;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
      while (const dirent* entry = ::readdir(dir))
        if (entry->d_name[0] != '.') fds.push_back(std::atoi(entry->d_name));
      ::closedir(dir);
    }
    for (const int fd : fds)
      if (fd > 2 && fd != keep) ::close(fd);
  }
  void readMore() {
    pipe_->async_read_some(asio::buffer(buffer_), [this](std::error_code ec, std::size_t n) {
      report_.append(buffer_.data(), n);
      if (ec) {
        ended_ = true;
        return;
      }
      readMore();
    });
  }

  pid_t pid_ = -1;
  int readEnd_ = -1;
  std::unique_ptr<asio::posix::stream_descriptor> pipe_;
  std::array<char, 4096> buffer_{};
  std::string report_;
  bool ended_ = false;
};

// runUntil for a forked child: no doctest there, a plain bool.
bool childRunUntil(asio::io_context& loop, const std::function<bool()>& done,
                   std::chrono::milliseconds deadline) {
  const auto end = Clock::now() + deadline;
  loop.restart();
  while (!done()) {
    const auto now = Clock::now();
    if (now >= end) return false;
    if (loop.run_one_for(std::min<Clock::duration>(end - now, 10ms)) == 0 && loop.stopped()) {
      if (done()) return true;
      loop.restart();
      if (Clock::now() >= end) return false;
    }
  }
  return true;
}

}  // namespace

// --- 1. peer resets ------------------------------------------------------------------------------

TEST_CASE(
    "a peer's RST in the middle of a large server write: error then close(true) for that socket "
    "only: a healthy client's bytes all come back") {
  asio::io_context loop;
  ResetServer fixture(loop);
  const unsigned short port = listenLocal(loop, fixture.server);
  HealthyClient healthy(loop, port, 4 * 1024 * 1024);

  // The peer asks for 16 MiB, reads 64 KiB of it with a small receive window, then resets.
  tcp::socket peer = rawConnect(loop, port, 16 * 1024);
  const unsigned short peerPort = peer.local_endpoint().port();
  asio::write(peer, asio::buffer("B", 1));
  std::string head(64 * 1024, '\0');
  bool midWrite = false;
  bool resetDone = false;
  asio::async_read(peer, asio::buffer(head), [&](std::error_code ec, std::size_t) {
    REQUIRE(!ec);
    net::Socket serverSide = fixture.seen[peerPort].socket;
    REQUIRE(serverSide);
    midWrite = serverSide.writableLength() > 0;  // the server's write is still queued
    resetClose(peer);
    resetDone = true;
  });
  REQUIRE(runUntil(loop, [&] { return resetDone && fixture.seen[peerPort].closed(); }));
  CHECK(head == std::string(head.size(), 'b'));
  CHECK(midWrite);
  const Seen& seen = fixture.seen[peerPort];
  CHECK(seen.log == Log{"data", "error", "close(true)"});
  CHECK((seen.error == std::errc::connection_reset || seen.error == std::errc::broken_pipe));

  REQUIRE(runUntil(loop, [&] { return healthy.done(); }));
  healthy.check();
  CHECK(fixture.server.getConnections() == 1);  // the healthy client only
  checkServes(loop, port);
  healthy.socket().destroy();
  CHECK(closeAndRunToCompletion(loop, fixture.server));
  CHECK(fixture.server.getConnections() == 0);
}

TEST_CASE(
    "a peer's RST in the middle of a read (half of a message sent): error(ECONNRESET) then "
    "close(true), no end: a healthy client's bytes all come back") {
  asio::io_context loop;
  ResetServer fixture(loop);
  const unsigned short port = listenLocal(loop, fixture.server);
  HealthyClient healthy(loop, port, 4 * 1024 * 1024);

  // The peer sends 256 KiB of a message the server reads without answering, then resets.
  tcp::socket peer = rawConnect(loop, port);
  const unsigned short peerPort = peer.local_endpoint().port();
  std::string half(256 * 1024, 'r');
  half[0] = 'R';
  bool resetDone = false;
  asio::async_write(peer, asio::buffer(half), [&](std::error_code ec, std::size_t) {
    REQUIRE(!ec);
    resetClose(peer);
    resetDone = true;
  });
  REQUIRE(runUntil(loop, [&] { return resetDone && fixture.seen[peerPort].closed(); }));
  const Seen& seen = fixture.seen[peerPort];
  CHECK(seen.log == Log{"data", "error", "close(true)"});
  CHECK(seen.error == std::errc::connection_reset);
  CHECK(seen.bytesRead <= half.size());

  // The same with evnet's own resetAndDestroy in the middle of a stream.
  Log clientLog;
  auto resetter = net::connect(port, "127.0.0.1", {}, {}, loop);
  unsigned short resetterPort = 0;
  resetter.on("connect", [&] {
    resetterPort = resetter.localPort();
    resetter.write(std::string(512 * 1024, 'R'));  // >= highWaterMark: handed to the kernel now
    resetter.resetAndDestroy();
  });
  resetter.on("close", [&](bool hadError) {
    clientLog.push_back(hadError ? "close(true)" : "close(false)");
  });
  REQUIRE(runUntil(loop, [&] {
    return !clientLog.empty() && resetterPort != 0 && fixture.seen[resetterPort].closed();
  }));
  CHECK(clientLog == Log{"close(false)"});
  CHECK(fixture.seen[resetterPort].log.back() == "close(true)");
  CHECK(fixture.seen[resetterPort].error == std::errc::connection_reset);
  CHECK(std::count(fixture.seen[resetterPort].log.begin(), fixture.seen[resetterPort].log.end(),
                   "end") == 0);

  REQUIRE(runUntil(loop, [&] { return healthy.done(); }));
  healthy.check();
  CHECK(fixture.server.getConnections() == 1);
  checkServes(loop, port);
  healthy.socket().destroy();
  CHECK(closeAndRunToCompletion(loop, fixture.server));
}

TEST_CASE(
    "a peer's RST right after connect: the server, if it sees the connection at all, gets "
    "error(ECONNRESET) then close(true) and nothing else: a healthy client's bytes all come "
    "back") {
  asio::io_context loop;
  ResetServer fixture(loop);
  const unsigned short port = listenLocal(loop, fixture.server);
  HealthyClient healthy(loop, port, 4 * 1024 * 1024);

  // Ten peers connect and reset before the server has run at all: each sits reset in the
  // backlog when accepted.
  std::vector<unsigned short> peerPorts;
  for (int i = 0; i < 10; ++i) {
    tcp::socket peer = rawConnect(loop, port);
    peerPorts.push_back(peer.local_endpoint().port());
    resetClose(peer);
  }
  const auto allClosed = [&] {
    return std::all_of(peerPorts.begin(), peerPorts.end(), [&](unsigned short p) {
      return !fixture.seen.contains(p) || fixture.seen[p].closed();
    });
  };
  REQUIRE(runUntil(loop, [&] { return healthy.done() && allClosed(); }));
  // Let every reset connection reach the server, if it does.
  runFor(loop, 100ms);
  REQUIRE(allClosed());
  int seenByServer = 0;
  for (const unsigned short p : peerPorts) {
    if (!fixture.seen.contains(p)) continue;
    ++seenByServer;
    CAPTURE(fixture.seen[p].log);
    CHECK(fixture.seen[p].log == Log{"error", "close(true)"});
    CHECK(fixture.seen[p].error == std::errc::connection_reset);
  }
  MESSAGE(seenByServer, " of 10 reset connections reached the server");
  healthy.check();
  CHECK(fixture.server.getConnections() == 1);
  checkServes(loop, port);
  healthy.socket().destroy();
  CHECK(closeAndRunToCompletion(loop, fixture.server));
}

// --- 2. slow readers -----------------------------------------------------------------------------

TEST_CASE(
    "a slow reader: a producer honouring write()'s false and 'drain' keeps the queued bytes "
    "within highWaterMark + one chunk, and every byte arrives once the reader reads") {
  static constexpr std::size_t kChunk = 16 * 1024;
  static constexpr std::size_t kTotal =
      16 * 1024 * 1024;  // far beyond what the kernel buffers hold
  asio::io_context loop;
  std::size_t produced = 0;
  std::size_t maxQueued = 0;
  net::Socket producerSocket;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    producerSocket = socket;
    auto produce = [&produced, &maxQueued, socket]() mutable {
      while (produced < kTotal) {
        std::string bytes = pattern(kChunk, produced);
        produced += kChunk;
        const bool more = socket.write(std::move(bytes));
        maxQueued = std::max(maxQueued, socket.writableLength());
        if (!more) return;
      }
      socket.end();
    };
    socket.on("drain", produce);
    produce();
  });
  const unsigned short port = listenLocal(loop, server);
  auto sampler = evnet::setInterval(
      [&] {
        if (producerSocket) maxQueued = std::max(maxQueued, producerSocket.writableLength());
      },
      5, loop);

  tcp::socket reader = rawConnect(loop, port, 64 * 1024);
  runFor(loop, 500ms);  // the reader reads nothing
  const std::size_t producedWhileStalled = produced;
  CHECK(producedWhileStalled < kTotal);  // the producer did stop
  REQUIRE(producerSocket);
  CHECK(producerSocket.writableLength() <= kHighWaterMark + kChunk);
  runFor(loop, 200ms);
  CHECK(produced == producedWhileStalled);  // and stays stopped while nobody reads
  MESSAGE("stalled after producing ", producedWhileStalled, " bytes");

  PatternStream received;
  bool eof = false;
  readPatternToEnd(reader, received, eof);
  REQUIRE(runUntil(loop, [&] { return eof; }));
  CHECK(received.digest == patternDigest(kTotal));
  CHECK(received.intact());
  CHECK(maxQueued <= kHighWaterMark + kChunk);
  MESSAGE("largest queue seen: ", maxQueued, " bytes");

  sampler.clear();
  reader.close();
  producerSocket = net::Socket();
  checkServesAsEcho(loop, server, port);
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "pipe() from a fast source to a slow destination: the source pauses, the destination's queue "
    "stays within highWaterMark + one read, and every byte arrives") {
  static constexpr std::size_t kTotal = 16 * 1024 * 1024;
  asio::io_context loop;
  net::Socket dest;
  net::Socket source;
  std::size_t maxDestQueued = 0;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    if (!dest) {  // the first connection is the slow destination
      dest = socket;
      return;
    }
    source = socket;
    source.pipe(dest);
    source.on("data", [&](evnet::Buffer) {  // after pipe's listener: its write is queued
      maxDestQueued = std::max(maxDestQueued, dest.writableLength());
    });
  });
  const unsigned short port = listenLocal(loop, server);

  tcp::socket slow = rawConnect(loop, port, 64 * 1024);
  REQUIRE(runUntil(loop, [&] { return static_cast<bool>(dest); }));
  HealthyClient fast(loop, port, kTotal, 64 * 1024);  // it honours backpressure too
  std::size_t maxFastQueued = 0;
  auto sampler = evnet::setInterval(
      [&] {
        if (dest) maxDestQueued = std::max(maxDestQueued, dest.writableLength());
        maxFastQueued = std::max(maxFastQueued, fast.socket().writableLength());
      },
      5, loop);

  // The destination reads nothing: once the kernel holds all it will take, bytes wait in the
  // destination's queue and the source stays paused (no "drain" can come).
  REQUIRE(runUntil(loop, [&] { return source && source.isPaused() && dest.writableLength() > 0; }));
  CHECK(dest.writableLength() <= kHighWaterMark + kReadChunk);
  const std::uint64_t readWhileStalled = source.bytesRead();
  runFor(loop, 200ms);
  CHECK(source.bytesRead() == readWhileStalled);
  CHECK(readWhileStalled < kTotal);
  MESSAGE("source paused after ", readWhileStalled, " bytes");

  PatternStream received;
  bool eof = false;
  readPatternToEnd(slow, received, eof);
  // Everything arrived: the source's end now ends the destination (pipe), so EOF follows.
  REQUIRE(runUntil(loop, [&] { return received.size() >= kTotal; }));
  fast.socket().end();
  REQUIRE(runUntil(loop, [&] { return eof; }));
  CHECK(received.digest == patternDigest(kTotal));
  CHECK(received.intact());
  CHECK(maxDestQueued <= kHighWaterMark + kReadChunk);
  CHECK(maxFastQueued <= kHighWaterMark + 64 * 1024);
  MESSAGE("largest destination queue seen: ", maxDestQueued, " bytes");

  sampler.clear();
  slow.close();
  dest = source = net::Socket();
  checkServesAsEcho(loop, server, port);
  CHECK(closeAndRunToCompletion(loop, server));
}

// --- 3. descriptor exhaustion ------------------------------------------------------------------

TEST_CASE(
    "out of descriptors (RLIMIT_NOFILE 64, a forked child): the server waits without spinning, "
    "and serves again once connections close") {
  if (underUBSan()) {
    // UBSan's vptr check opens a pipe to probe memory, and reports false errors when no
    // descriptor is left; this case runs in the builds without UBSan.
    return skipTest("UBSan cannot run with every file descriptor taken");
  }
  Child child([]() -> std::string {
    std::string failures;
    const auto expect = [&failures](bool ok, const std::string& what) {
      if (!ok) failures += what + "; ";
      return ok;
    };
    const rlimit lowered{64, 64};
    if (!expect(::setrlimit(RLIMIT_NOFILE, &lowered) == 0, "setrlimit")) return failures;

    asio::io_context loop;
    net::Server server({}, loop);
    server.on("connection", echoBack);
    bool listening = false;
    server.listen(0, "127.0.0.1", [&] { listening = true; });
    if (!expect(childRunUntil(
                    loop, [&] { return listening; }, 5s),
                "listen"))
      return failures;
    const unsigned short port = server.address().port;
    const sockaddr_in address{AF_INET, htons(port), {htonl(INADDR_LOOPBACK)}, {}};

    // One spare descriptor, so that the last one can go to a client whose connection the
    // server then cannot accept, whatever the parity of what is left.
    int spare = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::vector<int> clients;
    const auto connectOne = [&]() -> bool {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return false;
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        ::close(fd);
        return false;
      }
      clients.push_back(fd);
      return true;
    };
    // Whether the process has a descriptor left for the server's next accept.
    const auto descriptorLeft = [] {
      const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return false;
      ::close(fd);
      return true;
    };
    bool acceptFailed = false;
    while (!acceptFailed) {
      if (!connectOne()) {
        if (!expect(errno == EMFILE && spare >= 0, "client socket: " + std::to_string(errno)))
          return failures;
        ::close(std::exchange(spare, -1));
        if (!expect(connectOne(), "the last descriptor")) return failures;
      }
      // The server takes the connection while it has a descriptor for it; then it cannot.
      childRunUntil(
          loop, [&] { return server.getConnections() == clients.size() || !descriptorLeft(); }, 5s);
      loop.restart();
      loop.poll();  // an accept the kernel completed (io_uring) with the last descriptor
      acceptFailed = server.getConnections() < clients.size();
    }
    const std::size_t accepted = server.getConnections();
    expect(accepted + 1 == clients.size(),
           "one connection waits in the backlog: " + std::to_string(accepted) + " of " +
               std::to_string(clients.size()));

    // The server cannot accept: over a second it must sleep, not spin.
    const double before = cpuSeconds();
    childRunUntil(
        loop, [] { return false; }, 1000ms);
    const double cpu = cpuSeconds() - before;
    expect(cpu < 0.3, "CPU while out of descriptors: " + std::to_string(cpu) + " s");
    expect(server.getConnections() == accepted,
           "nothing accepted meanwhile: " + std::to_string(server.getConnections()) + " of " +
               std::to_string(clients.size()) + ", " + std::to_string(accepted) + " before");
    expect(server.listening(), "still listening");

    // Some clients leave: the waiting connection is accepted, and a new client gets its echo.
    if (spare >= 0) ::close(spare);
    for (int i = 0; i < 6; ++i) {
      ::close(clients.back());
      clients.pop_back();
    }
    expect(childRunUntil(
               loop, [&] { return server.getConnections() == clients.size(); }, 5s),
           "the waiting connection is accepted: " + std::to_string(server.getConnections()));
    Digest sent;
    Digest received;
    const std::string message = pattern(32 * 1024);
    sent.add(message);
    bool closed = false;
    auto client = net::connect(port, "127.0.0.1", {}, {}, loop);
    client.on("connect", [&] { client.write(message); });
    client.on("data", [&](evnet::Buffer data) {
      received.add(data);
      if (received.count >= message.size()) client.end();
    });
    client.on("close", [&](bool) { closed = true; });
    expect(childRunUntil(
               loop, [&] { return closed; }, 5s),
           "the new client's exchange");
    expect(received == sent, "the echo is intact: " + std::to_string(received.count) + " bytes");

    for (const int fd : clients) ::close(fd);
    expect(childRunUntil(
               loop, [&] { return server.getConnections() == 0; }, 5s),
           "every connection closes");
    server.close();
    loop.restart();
    loop.run_for(5s);
    return failures;
  });
  const std::string report = child.wait(30s);
  CHECK(report == "ok");
}

// --- 4. churn ----------------------------------------------------------------------------------

TEST_CASE_FIXTURE(
    EchoServerFixture,
    "connection churn: connect/exchange/close cycles leave no connection, no descriptor and no "
    "memory behind") {
  // The issue asks for 50,000 cycles: EVNET_CHURN=50000. CI runs 5,000 to stay fast.
  const std::size_t cycles = envSize("EVNET_CHURN", 5000);
  static constexpr std::size_t kConcurrent = 16;
  static constexpr std::size_t kMessage = 100;
  const std::size_t descriptorsAtStart = openDescriptors();

  std::size_t started = 0;
  std::size_t finished = 0;
  std::size_t failures = 0;
  // Connections run side by side and finish in any order: each message's digest, summed.
  struct Sum {
    std::uint64_t count = 0;
    std::uint64_t hashes = 0;
    void add(std::string_view bytes) {
      Digest digest;
      digest.add(bytes);
      count += digest.count;
      hashes += digest.hash;
    }
    bool operator==(const Sum&) const = default;
  };
  Sum sent;
  Sum received;
  std::size_t target = 0;
  std::function<void()> startOne = [&] {
    const std::size_t offset = started++ * kMessage;
    auto socket = net::connect(port, "127.0.0.1", {}, {}, loop);
    auto got = std::make_shared<std::string>();
    socket.on("connect", [socket, offset, &sent]() mutable {
      std::string message = pattern(kMessage, offset);
      sent.add(message);
      socket.write(std::move(message));
    });
    socket.on("data", [socket, got, offset, &received, &failures](evnet::Buffer data) mutable {
      got->append(data);
      if (got->size() < kMessage) return;
      if (*got != pattern(kMessage, offset)) ++failures;
      received.add(*got);
      socket.end();
    });
    socket.on("error", [&failures](std::error_code) { ++failures; });
    socket.on("close", [&](bool) {
      ++finished;
      if (started < target) startOne();
    });
  };
  const auto churn = [&](std::size_t n) {
    target += n;
    for (std::size_t i = 0; i < kConcurrent && started < target; ++i) startOne();
    REQUIRE(runUntil(
        loop, [&] { return finished == target && server.getConnections() == 0; }, 120s));
  };

  churn(500);  // warm-up: the loop's buffers and the allocator reach their steady state
  const std::size_t rssAfterWarmUp = residentKiB();
  const auto begin = Clock::now();
  churn(cycles);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - begin);
  MESSAGE(cycles, " cycles in ", ms.count(), " ms");
  const std::size_t rssAfter = residentKiB();

  CHECK(failures == 0);
  CHECK(server.getConnections() == 0);
  CHECK(openDescriptors() == descriptorsAtStart);
  CHECK(sent.count == (cycles + 500) * kMessage);
  CHECK(received == sent);
  MESSAGE("VmRSS ", rssAfterWarmUp, " KiB after warm-up, ", rssAfter, " KiB after churn");
  if (kUnderASan) {
    MESSAGE("resident memory not checked: AddressSanitizer's quarantine grows it by design");
  } else {
    CHECK(rssAfter <= rssAfterWarmUp + 8 * 1024);
  }
  checkServes(loop, port);
  CHECK(closeAndRunToCompletion(loop, server));
  CHECK(openDescriptors() == descriptorsAtStart - 1);  // the listening socket is gone too
}

// --- 5. many connections ---------------------------------------------------------------------

TEST_CASE("many concurrent connections (clients in a forked child), each exchanging a message") {
  // The issue asks for 10,000: EVNET_MANY=10000. CI runs 2,000 to stay fast.
  const std::size_t many = envSize("EVNET_MANY", 2000);
  static constexpr std::size_t kMessage = 64;
  const rlim_t needed = static_cast<rlim_t>(many) + 256;  // per process: the server's or clients'
  rlimit original{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &original) == 0);
  if (original.rlim_cur < needed) {
    if (original.rlim_max != RLIM_INFINITY && original.rlim_max < needed) {
      MESSAGE("skipped: ", many, " connections need ", needed, " descriptors, the hard limit is ",
              original.rlim_max);
      return;
    }
    rlimit raised = original;
    raised.rlim_cur = needed;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &raised) == 0);
  }
  struct Restore {
    rlimit original;
    ~Restore() { ::setrlimit(RLIMIT_NOFILE, &original); }
  } restore{original};

  asio::io_context loop;
  net::Server server = echoServer(loop);
  bool listening = false;
  server.listen(0, "127.0.0.1", 4096, [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  const unsigned short port = server.address().port;
  unsigned peak = 0;
  server.on("connection", [&](net::Socket) { peak = std::max(peak, server.getConnections()); });

  Child child([port, many]() -> std::string {
    asio::io_context clientLoop;
    std::vector<net::Socket> sockets;
    sockets.reserve(many);
    std::size_t connected = 0;
    std::size_t completed = 0;
    std::size_t failed = 0;
    std::string firstError;
    Digest sent;
    Digest received;
    // At most 128 connects in flight, so the backlog never overflows (no SYN retransmits).
    std::function<void()> startMore = [&] {
      while (sockets.size() < many && sockets.size() - connected < 128) {
        const std::size_t offset = sockets.size() * kMessage;
        auto socket = net::connect(port, "127.0.0.1", {}, {}, clientLoop);
        auto got = std::make_shared<std::string>();
        socket.on("connect", [&, socket, offset]() mutable {
          ++connected;
          std::string message = pattern(kMessage, offset);
          sent.add(message);
          socket.write(std::move(message));
          startMore();
        });
        socket.on("data", [&, got, offset](evnet::Buffer data) {
          got->append(data);
          if (got->size() != kMessage) return;
          if (*got == pattern(kMessage, offset)) ++completed;
          received.add(*got);
        });
        socket.on("error", [&](std::error_code ec) {
          if (failed++ == 0) firstError = ec.message();
        });
        sockets.push_back(socket);
      }
    };
    startMore();
    const bool done = childRunUntil(
        clientLoop, [&] { return completed + failed >= many; }, 100s);
    std::string report;
    // Messages arrive in any order across connections: each was compared on arrival.
    if (!done || completed != many || failed != 0 || received.count != sent.count)
      report = "completed " + std::to_string(completed) + " of " + std::to_string(many) +
               ", failed " + std::to_string(failed) + " (" + firstError + "), received " +
               std::to_string(received.count) + " of " + std::to_string(sent.count) + " bytes";
    for (net::Socket& socket : sockets) socket.destroy();
    sockets.clear();
    clientLoop.restart();
    clientLoop.run_for(10s);
    return report;
  });
  child.readOn(loop);
  REQUIRE(runUntil(
      loop, [&] { return child.reported(); }, 110s));
  CHECK(child.reap() == "ok");
  CHECK(peak == many);  // every connection was open at once
  REQUIRE(runUntil(loop, [&] { return server.getConnections() == 0; }));
  checkServes(loop, port);
  CHECK(closeAndRunToCompletion(loop, server));
}

// --- 6. a listener that throws -----------------------------------------------------------------

TEST_CASE(
    "a server 'data' listener that throws: the exception leaves run(), that socket is closed and "
    "its listeners released, and the next run() keeps serving the others") {
  asio::io_context loop;
  std::map<unsigned short, std::weak_ptr<int>> tracked;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    auto resource = std::make_shared<int>(0);
    tracked[socket.remotePort()] = resource;
    socket.on("data", [socket, resource](evnet::Buffer chunk) mutable {
      if (std::string_view(chunk).starts_with("THROW")) throw std::runtime_error("listener threw");
      socket.write(chunk);
    });
  });
  const unsigned short port = listenLocal(loop, server);
  HealthyClient healthy(loop, port, 8 * 1024 * 1024);
  REQUIRE(runUntil(loop, [&] { return tracked.size() == 1; }));
  const unsigned short healthyPort = healthy.socket().localPort();

  tcp::socket thrower = rawConnect(loop, port);
  const unsigned short throwerPort = thrower.local_endpoint().port();
  asio::write(thrower, asio::buffer("THROW", 5));
  std::error_code throwerEnd;
  bool throwerDone = false;
  std::array<char, 64> sink{};
  thrower.async_read_some(asio::buffer(sink), [&](std::error_code ec, std::size_t) {
    throwerEnd = ec;
    throwerDone = true;
  });
  CHECK_THROWS_WITH_AS(runUntil(loop, [&] { return healthy.done() && throwerDone; }),
                       "listener threw", std::runtime_error);
  // run() again (runUntil restarts the loop): the thrower's socket closes and is released.
  REQUIRE(runUntil(loop, [&] { return throwerDone && tracked[throwerPort].expired(); }));
  CHECK((throwerEnd == asio::error::eof || throwerEnd == asio::error::connection_reset));
  CHECK(!tracked[healthyPort].expired());  // the healthy connection is untouched
  REQUIRE(runUntil(loop, [&] { return healthy.done(); }));
  healthy.check();
  CHECK(server.getConnections() == 1);
  checkServes(loop, port);
  healthy.socket().destroy();
  REQUIRE(runUntil(loop, [&] { return tracked[healthyPort].expired(); }));
  CHECK(closeAndRunToCompletion(loop, server));
}

TEST_CASE(
    "a 'close' listener that throws: the exception leaves run(), and the next run() emits the "
    "'close' of a socket destroyed in the same turn") {
  asio::io_context loop;
  net::Server server({}, loop);
  const unsigned short port = listenLocal(loop, server);
  auto first = net::connect(port, "127.0.0.1", {}, {}, loop);
  auto second = net::connect(port, "127.0.0.1", {}, {}, loop);
  int connected = 0;
  first.on("connect", [&] { ++connected; });
  second.on("connect", [&] { ++connected; });
  REQUIRE(runUntil(loop, [&] { return connected == 2; }));
  bool secondClosed = false;
  first.on("close", [](bool) { throw std::runtime_error("close listener threw"); });
  second.on("close", [&](bool) { secondClosed = true; });
  first.destroy();
  second.destroy();
  CHECK_THROWS_WITH_AS(runUntil(loop, [&] { return secondClosed; }), "close listener threw",
                       std::runtime_error);
  CHECK_FALSE(secondClosed);
  REQUIRE(runUntil(loop, [&] { return secondClosed; }));
  CHECK(closeAndRunToCompletion(loop, server));
}

// --- 7. idle peers -----------------------------------------------------------------------------

TEST_CASE(
    "idle peers that never send FIN are cut by the application's idle timeout: an active client "
    "is not") {
  asio::io_context loop;
  int timeouts = 0;
  net::Server server({}, loop);
  server.on("connection", [&](net::Socket socket) {
    socket.setTimeout(150);
    socket.on("timeout", [socket, &timeouts]() mutable {
      ++timeouts;
      socket.destroy();
    });
    echoBack(socket);
  });
  const unsigned short port = listenLocal(loop, server);

  // Three silent peers, and one that sends a little, then falls silent without a FIN.
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(rawConnect(loop, port));
  asio::write(idle.back(), asio::buffer("hello", 5));
  std::vector<std::error_code> ends(idle.size());
  std::size_t ended = 0;
  std::vector<std::array<char, 64>> sinks(idle.size());
  std::vector<std::size_t> readCounts(idle.size());
  std::function<void(std::size_t)> drain = [&](std::size_t i) {
    idle[i].async_read_some(asio::buffer(sinks[i]), [&, i](std::error_code ec, std::size_t n) {
      readCounts[i] += n;
      if (ec) {
        ends[i] = ec;
        ++ended;
        return;
      }
      drain(i);
    });
  };
  for (std::size_t i = 0; i < idle.size(); ++i) drain(i);

  // An active client: a message every 40 ms for 600 ms, well past the idle timeout.
  HealthyClient active(loop, port, 0);
  Digest sent;
  std::size_t rounds = 0;
  auto ticker = evnet::setInterval(
      [&] {
        if (rounds == 15) return;
        std::string message = pattern(1024, sent.count);
        sent.add(message);
        active.socket().write(std::move(message));
        ++rounds;
      },
      40, loop);
  Digest echoed;
  active.socket().on("data", [&](evnet::Buffer data) { echoed.add(data); });

  const auto start = Clock::now();
  REQUIRE(runUntil(loop, [&] { return ended == idle.size(); }));
  const auto cut = Clock::now() - start;
  CHECK(cut >= 100ms);
  for (const std::error_code& ec : ends) CHECK(ec == asio::error::eof);
  CHECK(readCounts.back() == 5);  // its echo, then the end
  REQUIRE(runUntil(loop, [&] { return rounds == 15 && echoed.count == sent.count; }));
  ticker.clear();
  CHECK(echoed == sent);
  CHECK(timeouts == 4);
  CHECK(!active.socket().destroyed());
  CHECK(server.getConnections() == 1);
  active.socket().destroy();
  REQUIRE(runUntil(loop, [&] { return server.getConnections() == 0; }));
  checkServes(loop, port);
  CHECK(closeAndRunToCompletion(loop, server));
}

// --- 8. closing the server, destroying the loop -------------------------------------------------

TEST_CASE_FIXTURE(
    EchoServerFixture,
    "server close() with live connections: new connections are refused, the live ones finish "
    "their exchange, 'close' waits for them, and listening again serves") {
  HealthyClient a(loop, port, 4 * 1024 * 1024);
  HealthyClient b(loop, port, 4 * 1024 * 1024);
  REQUIRE(runUntil(loop, [&] { return server.getConnections() == 2; }));

  bool closed = false;
  server.close([&](std::error_code ec) {
    CHECK(!ec);
    closed = true;
  });
  CHECK(!server.listening());
  std::error_code refused;
  bool refusedClosed = false;
  auto late = net::connect(port, "127.0.0.1", {}, {}, loop);
  late.on("error", [&](std::error_code ec) { refused = ec; });
  late.on("close", [&](bool) { refusedClosed = true; });
  REQUIRE(runUntil(loop, [&] { return refusedClosed && a.done() && b.done(); }));
  CHECK(refused == std::errc::connection_refused);
  a.check();
  b.check();
  CHECK(!closed);
  a.socket().destroy();
  runFor(loop, 50ms);
  CHECK(!closed);  // b is still open
  b.socket().destroy();
  REQUIRE(runUntil(loop, [&] { return closed; }));
  CHECK(server.getConnections() == 0);

  bool listening = false;
  server.listen(port, "127.0.0.1", [&] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  checkServes(loop, port);
  CHECK(closeAndRunToCompletion(loop, server));
}

namespace {

// A loop in every state at once: a connection mid-write to a peer that does not read (with a
// write callback pending), one mid-echo, one still connecting, idle timers and a pending timer.
struct BusyLoop {
  BusyLoop(asio::io_context& loop, bool callbackCapturesSocket) : server({}, loop) {
    server.on("connection", [callbackCapturesSocket](net::Socket socket) {
      socket.setTimeout(60'000);
      socket.on("timeout", [socket]() mutable { socket.destroy(); });
      socket.on("data", [socket, callbackCapturesSocket](evnet::Buffer chunk) mutable {
        if (chunk[0] != 'B') {
          socket.write(chunk);
        } else if (callbackCapturesSocket) {
          socket.write(std::string(8 * 1024 * 1024, 'b'),
                       [socket](std::error_code) mutable { socket.end(); });
        } else {
          socket.write(std::string(8 * 1024 * 1024, 'b'), [](std::error_code) {});
        }
      });
    });
    port = listenLocal(loop, server);
    nonReader = std::make_unique<tcp::socket>(rawConnect(loop, port, 16 * 1024));
    asio::write(*nonReader, asio::buffer("B", 1));
    echo = std::make_unique<HealthyClient>(loop, port, 64 * 1024 * 1024);
    REQUIRE(runUntil(loop, [&] { return server.getConnections() == 2; }));
    runFor(loop, 50ms);  // the big write is queued, the echo is streaming
    connecting = net::connect(port, "127.0.0.1", {}, {}, loop);
    connecting.write("queued while connecting", [](std::error_code) {});
    connecting.setTimeout(60'000);
    timer = evnet::setTimeout([] {}, 60'000, loop);
  }
  // asio's own sockets belong to the loop: they go with it, before the handles are dropped.
  void dropRawPeers() {
    nonReader.reset();
    echo.reset();
  }
  net::Server server;
  unsigned short port = 0;
  std::unique_ptr<tcp::socket> nonReader;
  std::unique_ptr<HealthyClient> echo;
  net::Socket connecting;
  evnet::Timeout timer;
};

}  // namespace

TEST_CASE(
    "destroying the loop with connections open and no handles kept: no leak, no use after free, "
    "no descriptor left, and a new loop serves") {
  const std::size_t descriptorsAtStart = openDescriptors();
  {
    asio::io_context loop;
    {
      BusyLoop busy(loop, false);
      busy.dropRawPeers();
    }  // every handle gone; the loop still holds the server and the sockets
  }
  CHECK(openDescriptors() == descriptorsAtStart);
  asio::io_context loop;
  net::Server server = echoServer(loop);
  checkServes(loop, listenLocal(loop, server));
  CHECK(closeAndRunToCompletion(loop, server));
}

// The loop's shutdown drops pending write callbacks too: one that captures its own socket, as
// `socket.write(big, [socket](auto) mutable { socket.end(); })`, would otherwise keep the
// socket, its 8 MiB queue and the callback alive forever (LeakSanitizer found it).
TEST_CASE("destroying the loop releases a socket whose pending write callback captures it") {
  const std::size_t descriptorsAtStart = openDescriptors();
  {
    asio::io_context loop;
    {
      BusyLoop busy(loop, true);
      busy.dropRawPeers();
    }
  }
  CHECK(openDescriptors() == descriptorsAtStart);
}

// Handles may outlive their io_context: the socket and server then do not touch the loop's
// service, which went with it (ASan + UBSan found the use-after-free this guards against).
TEST_CASE(
    "destroying the loop with connections open while handles are kept: the handles outlive it "
    "safely") {
  const std::size_t descriptorsAtStart = openDescriptors();
  std::optional<net::Server> server;
  net::Socket connecting;
  net::Socket accepted;
  {
    asio::io_context loop;
    BusyLoop busy(loop, false);
    busy.server.on("connection", [&accepted](net::Socket socket) { accepted = socket; });
    REQUIRE(runUntil(loop, [&] { return static_cast<bool>(accepted); }));
    server = busy.server;
    connecting = busy.connecting;
    busy.dropRawPeers();
  }  // the loop goes first; the handles stay
  CHECK(openDescriptors() == descriptorsAtStart);
  CHECK(server->getConnections() == 0);
  CHECK(!server->listening());
  CHECK(accepted.destroyed());
  CHECK(accepted.readyState() == "closed");
  CHECK(connecting.destroyed());
  // What a handle does without a loop: nothing, and without touching the loop.
  CHECK(!accepted.write("late"));
  accepted.end();
  accepted.destroy();
  CHECK(accepted.writableLength() == 0);
  server.reset();
  connecting = accepted = net::Socket();
}

// After the loop is gone, a write with a callback and close() post nothing to it.
TEST_CASE("calls on handles after their loop was destroyed: write with a callback, close()") {
  std::optional<net::Server> server;
  net::Socket accepted;
  {
    asio::io_context loop;
    BusyLoop busy(loop, false);
    busy.server.on("connection", [&accepted](net::Socket socket) { accepted = socket; });
    REQUIRE(runUntil(loop, [&] { return static_cast<bool>(accepted); }));
    server = busy.server;
    busy.dropRawPeers();
  }
  SUBCASE("write with a callback") {
    bool called = false;
    CHECK(!accepted.write("late", [&](std::error_code) { called = true; }));
    CHECK(!called);  // no loop runs it
  }
  SUBCASE("server close()") {
    bool called = false;
    server->close([&] { called = true; });
    CHECK(!called);
  }
  server.reset();
  accepted = net::Socket();
}
