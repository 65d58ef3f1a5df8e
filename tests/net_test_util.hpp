// Helpers shared by the net tests: running a loop against a deadline (a hang fails the test
// instead of blocking), patterned data and its checks, echo and clean-close set-ups, temporary
// paths, and a spawned Node.js peer.
#ifndef EVNET_TESTS_NET_TEST_UTIL_HPP
#define EVNET_TESTS_NET_TEST_UTIL_HPP

#include <evnet/net.hpp>

#include <doctest/doctest.h>

#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

extern char** environ;

namespace evnet_test {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Log = std::vector<std::string>;

// What every wait in these tests is bounded by; generous, because sanitizers slow things down.
inline constexpr std::chrono::milliseconds kDeadline = 10s;

// run_for cannot stop a handler that never returns (a busy loop in the library): while the loop
// runs, SIGALRM is armed to end the process 30 s after the deadline, so such a hang fails too.
class AlarmGuard {
 public:
  explicit AlarmGuard(std::chrono::milliseconds deadline) {
    ::alarm(static_cast<unsigned>(std::chrono::ceil<std::chrono::seconds>(deadline).count()) + 30);
  }
  AlarmGuard(const AlarmGuard&) = delete;
  AlarmGuard& operator=(const AlarmGuard&) = delete;
  ~AlarmGuard() { ::alarm(0); }
};

/// Runs the loop until done() holds. False (with a message saying why) if the deadline passed
/// or the loop ran out of work first, so that REQUIRE(runUntil(...)) fails a hang. Exceptions
/// thrown by handlers propagate.
inline bool runUntil(asio::io_context& loop, const std::function<bool()>& done,
                     std::chrono::milliseconds deadline = kDeadline) {
  const AlarmGuard alarm(deadline);
  const auto end = Clock::now() + deadline;
  loop.restart();
  while (!done()) {
    const auto now = Clock::now();
    if (now >= end) {
      MESSAGE("runUntil: the deadline of ", deadline.count(), " ms passed");
      return false;
    }
    if (loop.run_one_for(end - now) == 0 && loop.stopped()) {
      if (done()) return true;
      MESSAGE("runUntil: the loop ran out of work before the condition held");
      return false;
    }
  }
  return true;
}

/// Runs the loop until it has no work left: every socket, server and timer finished. False if
/// the deadline passed first.
inline bool runToCompletion(asio::io_context& loop,
                            std::chrono::milliseconds deadline = kDeadline) {
  const AlarmGuard alarm(deadline);
  loop.restart();
  loop.run_for(deadline);
  if (!loop.stopped()) MESSAGE("runToCompletion: work was left after ", deadline.count(), " ms");
  return loop.stopped();
}

/// Runs the loop for a fixed time: for checking that something does NOT happen in a window.
inline void runFor(asio::io_context& loop, std::chrono::milliseconds duration) {
  const AlarmGuard alarm(duration);
  const auto end = Clock::now() + duration;
  loop.restart();
  while (Clock::now() < end) {
    if (loop.run_one_until(end) == 0 && loop.stopped()) return;
  }
}

/// Byte i of a test stream: not periodic at any power of two, so a lost, duplicated or
/// reordered chunk shows. Node scripts below compute the same formula.
inline char patternByte(std::size_t i) { return static_cast<char>((i * 31 + (i >> 8)) & 0xff); }
inline std::string pattern(std::size_t size, std::size_t offset = 0) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = patternByte(offset + i);
  return bytes;
}
/// The index of the first byte that differs from the pattern, or bytes.size().
inline std::size_t firstPatternMismatch(std::string_view bytes, std::size_t offset = 0) {
  for (std::size_t i = 0; i < bytes.size(); ++i)
    if (bytes[i] != patternByte(offset + i)) return i;
  return bytes.size();
}

/// A count and an FNV-1a hash of a byte stream: two streams match when both do.
struct Digest {
  std::uint64_t count = 0;
  std::uint64_t hash = 14695981039346656037ull;
  void add(std::string_view bytes) {
    for (const char c : bytes) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 1099511628211ull;
    }
    count += bytes.size();
  }
  friend bool operator==(const Digest&, const Digest&) = default;
};

/// A patterned stream checked as it arrives in chunks: its digest, and where it first differs
/// from pattern() (npos while it does not).
struct PatternStream {
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  Digest digest;
  std::size_t mismatchAt = npos;
  void add(std::string_view chunk) {
    const std::size_t at = firstPatternMismatch(chunk, digest.count);
    if (mismatchAt == npos && at != chunk.size()) mismatchAt = digest.count + at;
    digest.add(chunk);
  }
  std::uint64_t size() const noexcept { return digest.count; }
  bool intact() const noexcept { return mismatchAt == npos; }
};

namespace detail {
inline void readPatternMore(asio::ip::tcp::socket& socket, PatternStream& into, bool& eof,
                            const std::shared_ptr<std::vector<char>>& buffer) {
  socket.async_read_some(asio::buffer(*buffer),
                         [&socket, &into, &eof, buffer](std::error_code ec, std::size_t n) {
                           into.add({buffer->data(), n});
                           if (ec) {
                             eof = ec == asio::error::eof;
                             return;
                           }
                           readPatternMore(socket, into, eof, buffer);
                         });
}
}  // namespace detail

/// Reads a plain asio socket on its loop into `into` until the stream ends; `eof` is set if it
/// ended cleanly (EOF rather than an error).
inline void readPatternToEnd(asio::ip::tcp::socket& socket, PatternStream& into, bool& eof) {
  detail::readPatternMore(socket, into, eof, std::make_shared<std::vector<char>>(256 * 1024));
}

/// Listens on host, port 0, runs the loop until "listening" and returns the port (a net or a tls
/// server).
template <class Server>
unsigned short listenLocal(asio::io_context& loop, Server& server,
                           std::string_view host = "127.0.0.1") {
  bool listening = false;
  server.listen(0, host, [&listening] { listening = true; });
  REQUIRE(runUntil(loop, [&] { return listening; }));
  REQUIRE(server.address().port != 0);
  return server.address().port;
}

/// Makes the socket write back every chunk it reads.
inline void echoBack(evnet::net::Socket socket) {
  socket.on("data", [socket](evnet::Buffer chunk) mutable { socket.write(chunk); });
}

/// A server that echoes every byte back (and, allowHalfOpen being false, ends when its peer ends).
inline evnet::net::Server echoServer(asio::io_context& loop,
                                     evnet::net::ServerOptions options = {}) {
  return evnet::net::createServer(
      options, [](evnet::net::Socket socket) { echoBack(socket); }, loop);
}

/// Once the client connects, writes `message` and ends; runs the loop until the client closed
/// (REQUIRE) and returns everything it read: what an echo server sent back (a net or a tls
/// socket).
template <class Socket>
std::string endAndReadReply(asio::io_context& loop, Socket& client, std::string message) {
  auto reply = std::make_shared<std::string>();
  auto closed = std::make_shared<bool>(false);
  client.on("connect", [&client, message = std::move(message)] { client.end(message); });
  client.on("data", [reply](evnet::Buffer chunk) { reply->append(chunk); });
  client.on("close", [closed](bool) { *closed = true; });
  REQUIRE(runUntil(loop, [&] { return *closed; }));
  return *reply;
}

/// What a peer sent on one connection, as collect() saw it.
struct Received {
  std::string data;
  bool ended = false;   // its "end" came
  bool closed = false;  // its "close" came
};

/// Makes the socket append what it reads to into.data and note its "end" and "close".
inline void collect(evnet::net::Socket& socket, Received& into) {
  socket.on("data", [&into](evnet::Buffer chunk) { into.data.append(chunk); });
  socket.on("end", [&into] { into.ended = true; });
  socket.on("close", [&into](bool) { into.closed = true; });
}

/// For TEST_CASE_FIXTURE, the start of many cases: a loop, and on it an echo server (echoServer)
/// listening on 127.0.0.1 at `port`.
struct EchoServerFixture {
  asio::io_context loop;
  evnet::net::Server server = echoServer(loop);
  const unsigned short port = listenLocal(loop, server);
};

/// The end of most cases: closes the server, then runs the loop until it has no work left.
/// False, as runToCompletion, if work was left at the deadline.
template <class Server>
bool closeAndRunToCompletion(asio::io_context& loop, Server& server) {
  server.close();
  return runToCompletion(loop);
}

/// Sets `closed` at the socket's "close", checking that it closed without an error.
inline void expectCleanClose(evnet::net::Socket& socket, bool& closed) {
  socket.on("close", [&closed](bool hadError) {
    CHECK(!hadError);
    closed = true;
  });
}

/// A port on 127.0.0.1 that nobody listens on (bound, then released).
inline unsigned short closedPort() {
  asio::io_context context;
  asio::ip::tcp::acceptor acceptor(context, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

/// Reports a skipped case (a missing tool or facility); the caller returns right after it:
/// `if (!available) return skipTest("why");`.
inline void skipTest(std::string_view why) { MESSAGE("skipped: ", std::string(why)); }

/// Runs body in a child process; returns its exit status: body's result, 101 if body threw.
inline int inChild(const std::function<int()>& body) {
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      ::_exit(body());
    } catch (...) {  // a failed REQUIRE too: the child must not go on running tests
      ::_exit(101);
    }
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

/// Makes the given system calls fail with `error` for the calling thread and the threads it
/// starts from now on (a seccomp filter, as container runtimes install). It cannot be lifted:
/// call it in a child process (inChild). False if the filter could not be set.
inline bool forbid(std::initializer_list<int> calls, int error = EPERM) {
  std::vector<sock_filter> filter{BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr))};
  for (const int call : calls) {
    filter.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(call), 0, 1));
    filter.push_back(BPF_STMT(
        BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(error) & SECCOMP_RET_DATA)));
  }
  filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  const sock_fprog program{static_cast<unsigned short>(filter.size()), filter.data()};
  return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
         ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

/// Runs body in a child process in which the given system calls fail with EPERM from the start.
/// Returns the child's exit status: body's result, 100 if the filter could not be set, 101 if
/// body threw.
inline int inChildForbidding(std::initializer_list<int> calls, const std::function<int()>& body) {
  return inChild([&] { return forbid(calls) ? body() : 100; });
}

/// Whether ::1 can be bound here (IPv6 tests skip otherwise).
inline bool hasIPv6Loopback() {
  asio::io_context context;
  asio::ip::tcp::acceptor acceptor(context);
  std::error_code ec;
  acceptor.open(asio::ip::tcp::v6(), ec);
  if (!ec) acceptor.bind({asio::ip::make_address("::1"), 0}, ec);
  return !ec;
}

/// A fresh directory under the temp dir, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string templ = (std::filesystem::temp_directory_path() / "evnet-net-XXXXXX").string();
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// Sets a flag when destroyed: captured in a listener, it proves the listener was released.
struct DestroyFlag {
  explicit DestroyFlag(bool& flag) : flag(&flag) {}
  DestroyFlag(const DestroyFlag&) = delete;
  DestroyFlag& operator=(const DestroyFlag&) = delete;
  ~DestroyFlag() { *flag = true; }
  bool* flag;
};

/// The node executable, or empty if there is none.
inline std::string nodeExecutable() {
  for (const char* candidate : {"/usr/bin/node", "/usr/local/bin/node"})
    if (::access(candidate, X_OK) == 0) return candidate;
  return {};
}

/// A child process (Node.js running a script) whose stdout is read on the loop. It is killed
/// and reaped when this object goes, on every path out of a test.
class ChildProcess {
 public:
  ChildProcess(asio::io_context& loop, const std::string& executable,
               const std::vector<std::string>& args)
      : state_(std::make_shared<State>(loop)) {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    ::posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(executable.c_str()));
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    const int rc =
        ::posix_spawn(&pid_, executable.c_str(), &actions, nullptr, argv.data(), environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      pid_ = -1;
      FAIL("posix_spawn failed: ", rc);
    }
    state_->stdoutPipe.assign(fds[0]);
    read(state_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    std::error_code ignored;
    state_->stdoutPipe.close(ignored);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  /// Everything the child printed so far.
  const std::string& output() const noexcept { return state_->output; }
  /// Whether the child closed its stdout (it exited, usually).
  bool outputEnded() const noexcept { return state_->ended; }
  /// The first line printed, without its newline; empty until one is complete.
  std::string firstLine() const {
    const auto newline = state_->output.find('\n');
    return newline == std::string::npos ? std::string() : state_->output.substr(0, newline);
  }

 private:
  struct State {
    explicit State(asio::io_context& loop) : stdoutPipe(loop) {}
    asio::posix::stream_descriptor stdoutPipe;
    std::array<char, 4096> buffer{};
    std::string output;
    bool ended = false;
  };
  static void read(const std::shared_ptr<State>& state) {
    state->stdoutPipe.async_read_some(asio::buffer(state->buffer),
                                      [state](std::error_code ec, std::size_t n) {
                                        state->output.append(state->buffer.data(), n);
                                        if (ec) {
                                          state->ended = true;
                                          return;
                                        }
                                        read(state);
                                      });
  }

  std::shared_ptr<State> state_;
  pid_t pid_ = -1;
};

// Records a client socket's connect-time events as text (a net::Socket or a tls::Socket):
// "lookup host address/family", "attempt ip:port/family", "failed ip:port/family message",
// "timeout ip:port/family", "connect", "error <message>", "close <hadError>".
template <class Socket>
void recordConnect(Socket& socket, Log& log) {
  const auto where = [](std::string_view ip, unsigned short port, int family) {
    return std::string(ip) + ":" + std::to_string(port) + "/" + std::to_string(family);
  };
  socket.on("lookup", [&log](std::error_code ec, std::string_view address, int family,
                             std::string_view host) {
    log.push_back("lookup " + std::string(host) + " " + std::string(address) + "/" +
                  std::to_string(family) + (ec ? " " + ec.message() : ""));
  });
  socket.on("connectionAttempt",
            [&log, where](std::string_view ip, unsigned short port, int family) {
              log.push_back("attempt " + where(ip, port, family));
            });
  socket.on("connectionAttemptFailed", [&log, where](std::string_view ip, unsigned short port,
                                                     int family, std::error_code ec) {
    log.push_back("failed " + where(ip, port, family) + " " + ec.message());
  });
  socket.on("connectionAttemptTimeout",
            [&log, where](std::string_view ip, unsigned short port, int family) {
              log.push_back("timeout " + where(ip, port, family));
            });
  socket.on("connect", [&log] { log.push_back("connect"); });
  socket.on("error", [&log](std::error_code ec) { log.push_back("error " + ec.message()); });
  socket.on("close",
            [&log](bool hadError) { log.push_back(hadError ? "close true" : "close false"); });
}

// Runs the loop until the socket whose events recordConnect() logs has closed.
inline void runUntilClosed(asio::io_context& loop, const Log& log) {
  REQUIRE(runUntil(loop, [&] { return !log.empty() && log.back().starts_with("close"); }));
}

// A client (a net::Socket or a tls::Socket) without a "data" listener whose peer sent `sent` and
// ended: the bytes are held and "end" waits behind them until a "data" listener comes (N3).
template <class Socket>
void expectHeldUntilListened(asio::io_context& loop, Socket& client, const std::string& sent) {
  Log log;
  client.on("end", [&] { log.push_back("end"); });
  client.on("close", [&](bool) { log.push_back("close"); });
  REQUIRE(runUntil(loop, [&] { return client.bytesRead() == sent.size(); }));
  runFor(loop, 30ms);
  CHECK(log.empty());  // nobody reads: no "end" either

  std::string received;
  client.on("data", [&](evnet::Buffer chunk) {
    received.append(chunk);
    log.push_back("data");
  });
  REQUIRE(runUntil(loop, [&] { return !log.empty() && log.back() == "close"; }));
  CHECK(received == sent);
  CHECK(log == Log{"data", "end", "close"});
}

}  // namespace evnet_test

// Event logs print as {"connect", "ready", ...} in failed checks.
template <>
struct doctest::StringMaker<std::vector<std::string>> {
  static doctest::String convert(const std::vector<std::string>& log) {
    std::string text = "{";
    for (const std::string& entry : log) text += (text.size() > 1 ? ", \"" : "\"") + entry + "\"";
    return (text + "}").c_str();
  }
};

#endif  // EVNET_TESTS_NET_TEST_UTIL_HPP
