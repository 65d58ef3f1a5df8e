// loadgen — a standalone TCP and TLS echo load generator over Linux epoll.
//
// It deliberately shares no code with evnet or asio, so that it measures servers without
// measuring itself twice. One thread, one level-triggered epoll loop, nonblocking sockets with
// TCP_NODELAY; TLS with OpenSSL directly on those sockets.
//
//   loadgen --host 127.0.0.1 --port N --mode echo|pipeline|stream|connect|idle
//           --connections C --size S --depth D --duration SEC --warmup SEC
//           [--messages N] [--timeout SEC] [--server-pid PID] [--tls 1.2|1.3 [--resume]]
//
// Modes:
//   echo      each connection sends one S-byte message and waits for its whole echo;
//   pipeline  each connection keeps D messages of S bytes in flight;
//   stream    each connection writes S-byte chunks continuously (at most kStreamWindow bytes
//             unechoed) and reads the echo;
//   connect   each of C slots opens a connection, sends one S-byte message, reads its echo,
//             closes, and starts over;
//   idle      opens C connections (at most kIdleOpening at a time, so that no listen backlog
//             overflows), each sends one S-byte message and reads its echo, so the server has
//             surely accepted it and set it up; once all C are established they are held idle
//             for --duration seconds (the measured window; --warmup is not used), then closed
//             with a reset (no TIME_WAIT left behind). msgs counts the connections held. With
//             --server-pid this measures the server's resident memory per idle connection.
//
// TLS (--tls VERSION): every connection is a TLS client of exactly that protocol version
// (OpenSSL's default cipher suites and groups, the server's certificate not verified: a
// client's verification would only load loadgen's own CPU). The handshake follows TCP's
// connect and precedes the first message; in connect mode each connection does a full
// handshake, sends one message, reads its echo and ends with close_notify before closing.
// With --resume every connection offers the session of the last ticket the server sent (the
// first connection of each slot, with no ticket yet, does a full handshake, and the warm-up
// lasts until every slot is past it): a connection that offered a session and was not resumed
// ends the run as a failure, so that "resumed handshakes" are what was measured.
// tls_resumed counts the measured connections that resumed a session.
//
// Every echoed byte is verified: connection k sends the byte stream pattern[(start_k + i) mod P]
// where pattern is a fixed pseudo-random table with a prime period P of about 1 MiB and start_k
// depends on k. A lost, duplicated, reordered or corrupted byte (or bytes crossed between
// connections) is therefore detected unless the damage is an exact multiple of P bytes long.
// A mismatch, a premature close, a connect failure or an echo that stalls for --timeout seconds
// ends the run with a loud message on stderr and exit status 1.
//
// The run is --warmup seconds (not counted) followed by --duration seconds. With --messages N
// it is instead a warm-up of exactly one message per connection (so that the server has
// accepted and served every connection before anything is counted; --warmup is not used)
// followed by exactly N messages (connections in connect mode, S-byte chunks in stream mode)
// sent and echoed: the work a server does is then the same on every run but for the
// difference in N, which is what instruction counting (callgrind) needs.
//
// With --server-pid, the server's CPU time (utime + stime from /proc/PID/stat, all its
// threads) is sampled at the start and the end of the measured window and reported as
// server_cpu_s (server_sys_s of it in the kernel), so that a script can compute the server's
// CPU cost per message; and its resident memory (VmRSS from /proc/PID/status) is read when
// loadgen starts, before it connects, and at the end of the measured window:
// server_rss_kb_start and server_rss_kb_end.
//
// Output: exactly one line on stdout,
//   RESULT mode=echo conns=50 size=64 depth=1 msgs=... secs=... msgs_per_s=... mb_per_s=...
//          p50_us=... p99_us=... p999_us=... conns_per_s=... server_cpu_s=... server_sys_s=...
//          server_rss_kb_start=... server_rss_kb_end=... tls_resumed=... errors=0
// Keys are always present (0 where not applicable); msgs counts messages, S-byte chunks in
// stream mode and connections in connect mode; mb_per_s counts echoed bytes, 1 MB = 1e6
// bytes. Latencies are from the moment a message is queued for sending to the moment its last
// byte is echoed (for connect: from connect() to the echo), kept in a log-linear histogram
// with ~1.6% resolution.

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------
// Errors

// A failed run: reported loudly, then the RESULT line with errors=1, exit status 1.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A bad command line: usage message, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& what) { throw Failure(what); }

[[noreturn]] void fail_errno(const std::string& what) {
  fail(what + ": " + std::generic_category().message(errno));
}

// ---------------------------------------------------------------------------------------------
// Configuration

enum class Mode { echo, pipeline, stream, connect, idle };

struct Config {
  std::string host = "127.0.0.1";
  std::string port;
  Mode mode = Mode::echo;
  std::string mode_name = "echo";
  std::size_t connections = 1;
  std::size_t size = 64;
  std::size_t depth = 1;
  double duration = 10.0;
  double warmup = 1.0;
  std::uint64_t messages = 0;  // 0: stop after `duration` instead
  double timeout = 5.0;
  std::uint64_t server_pid = 0;  // 0: do not measure the server's CPU time
  int tls_version = 0;           // TLS1_2_VERSION, TLS1_3_VERSION; 0: plain TCP
  bool resume = false;           // TLS: resume the last session
};

constexpr const char* kUsage =
    "usage: loadgen --port N [--host 127.0.0.1] [--mode echo|pipeline|stream|connect|idle]\n"
    "               [--connections C] [--size S] [--depth D] [--duration SEC] [--warmup SEC]\n"
    "               [--messages N] [--timeout SEC] [--server-pid PID]\n"
    "               [--tls 1.2|1.3 [--resume]]\n";

std::uint64_t parse_uint(std::string_view flag, std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw UsageError(std::string(flag) + " expects a non-negative integer, got '" +
                     std::string(text) + "'");
  }
  return value;
}

double parse_seconds(std::string_view flag, const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(value >= 0.0)) {
    throw UsageError(std::string(flag) + " expects seconds >= 0, got '" + text + "'");
  }
  return value;
}

Mode parse_mode(const std::string& text) {
  if (text == "echo") return Mode::echo;
  if (text == "pipeline") return Mode::pipeline;
  if (text == "stream") return Mode::stream;
  if (text == "connect") return Mode::connect;
  if (text == "idle") return Mode::idle;
  throw UsageError("unknown --mode '" + text + "'");
}

void apply_flag(Config& cfg, std::string_view flag, const std::string& value) {
  if (flag == "--host") {
    cfg.host = value;
  } else if (flag == "--port") {
    cfg.port = std::to_string(parse_uint(flag, value));
  } else if (flag == "--mode") {
    cfg.mode = parse_mode(value);
    cfg.mode_name = value;
  } else if (flag == "--connections") {
    cfg.connections = parse_uint(flag, value);
  } else if (flag == "--size") {
    cfg.size = parse_uint(flag, value);
  } else if (flag == "--depth") {
    cfg.depth = parse_uint(flag, value);
  } else if (flag == "--duration") {
    cfg.duration = parse_seconds(flag, value);
  } else if (flag == "--warmup") {
    cfg.warmup = parse_seconds(flag, value);
  } else if (flag == "--messages") {
    cfg.messages = parse_uint(flag, value);
  } else if (flag == "--timeout") {
    cfg.timeout = parse_seconds(flag, value);
  } else if (flag == "--server-pid") {
    cfg.server_pid = parse_uint(flag, value);
  } else if (flag == "--tls") {
    if (value != "1.2" && value != "1.3") throw UsageError("--tls expects 1.2 or 1.3");
    cfg.tls_version = value == "1.2" ? TLS1_2_VERSION : TLS1_3_VERSION;
  } else {
    throw UsageError("unknown flag '" + std::string(flag) + "'");
  }
}

void validate(const Config& cfg) {
  if (cfg.port.empty()) throw UsageError("--port is required");
  if (cfg.connections == 0) throw UsageError("--connections must be at least 1");
  if (cfg.size == 0) throw UsageError("--size must be at least 1");
  if (cfg.depth == 0) throw UsageError("--depth must be at least 1");
  if (cfg.messages == 0 && cfg.duration <= 0.0) throw UsageError("--duration must be > 0");
  if (cfg.timeout <= 0.0) throw UsageError("--timeout must be > 0");
  if (cfg.mode == Mode::idle && cfg.messages != 0) {
    throw UsageError("--messages does not apply to --mode idle");
  }
  if (cfg.resume && cfg.tls_version == 0) throw UsageError("--resume needs --tls");
}

Config parse_args(int argc, char** argv) {
  Config cfg;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") throw UsageError("");
    if (flag == "--resume") {
      cfg.resume = true;
      continue;
    }
    if (i + 1 >= argc) throw UsageError(std::string(flag) + " needs a value");
    apply_flag(cfg, flag, argv[++i]);
  }
  validate(cfg);
  return cfg;
}

// ---------------------------------------------------------------------------------------------
// Time

std::uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t seconds_to_ns(double seconds) { return static_cast<std::uint64_t>(seconds * 1e9); }

// CPU seconds process `pid` (all its threads) has used so far, in user space and in the kernel.
struct CpuTimes {
  double user = 0.0;
  double sys = 0.0;
};

CpuTimes process_cpu_seconds(std::uint64_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) fail_errno("cannot read " + path);
  char text[1024] = {};
  std::size_t length = std::fread(text, 1, sizeof text - 1, file);
  std::fclose(file);
  // Fields after the parenthesised command name: state(3) ... utime(14) stime(15).
  const char* rest = std::strrchr(text, ')');
  unsigned long long utime = 0, stime = 0;
  if (length == 0 || rest == nullptr ||
      std::sscanf(rest + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                  &stime) != 2) {
    fail("cannot parse " + path);
  }
  const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {static_cast<double>(utime) / ticks, static_cast<double>(stime) / ticks};
}

// Resident memory of process `pid` in KiB (VmRSS from /proc/PID/status).
std::uint64_t process_rss_kb(std::uint64_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/status";
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) fail_errno("cannot read " + path);
  char line[256];
  unsigned long long kb = 0;
  bool found = false;
  while (!found && std::fgets(line, sizeof line, file) != nullptr) {
    found = std::sscanf(line, "VmRSS: %llu kB", &kb) == 1;
  }
  std::fclose(file);
  if (!found) fail("no VmRSS in " + path);
  return kb;
}

// ---------------------------------------------------------------------------------------------
// Pattern: the bytes every connection sends, and so expects back.

class Pattern {
 public:
  static constexpr std::size_t kPeriod = 1'048'573;                 // prime, just under 1 MiB
  static constexpr std::size_t kMaxChunk = std::size_t{64} * 1024;  // longest single send/recv

  Pattern() : bytes_(kPeriod + kMaxChunk) {
    std::uint64_t state = 0x2545F4914F6CDD1Dull;
    for (std::size_t i = 0; i < kPeriod; ++i) bytes_[i] = static_cast<char>(next(state) >> 56);
    std::copy_n(bytes_.begin(), kMaxChunk, bytes_.begin() + kPeriod);
  }

  // Where connection number `id` starts in the pattern.
  static std::size_t start_for(std::uint64_t id) {
    return static_cast<std::size_t>((id * 0x9E3779B97F4A7C15ull + 12345) % kPeriod);
  }

  // The kMaxChunk bytes a connection starting at `start` sends from stream offset `offset` on.
  const char* at(std::size_t start, std::uint64_t offset) const {
    return bytes_.data() + (start + offset) % kPeriod;
  }

 private:
  static std::uint64_t next(std::uint64_t& state) {  // xorshift64*
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
  }

  std::vector<char> bytes_;
};

// ---------------------------------------------------------------------------------------------
// Histogram: log-linear buckets over nanoseconds, preallocated; 32 sub-buckets per power of two.

class Histogram {
 public:
  void record(std::uint64_t ns) {
    ++counts_[index_of(ns)];
    ++total_;
  }

  void reset() {
    counts_.fill(0);
    total_ = 0;
  }

  std::uint64_t total() const { return total_; }

  // The value (ns, bucket midpoint) below which a fraction q of the recorded values lie.
  double percentile(double q) const {
    if (total_ == 0) return 0.0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_));
    rank = std::clamp<std::uint64_t>(rank, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return midpoint_of(i);
    }
    return midpoint_of(kBuckets - 1);
  }

 private:
  static constexpr unsigned kSubBits = 5;
  static constexpr std::uint64_t kSub = 1u << kSubBits;  // 32
  static constexpr std::size_t kBuckets = 64 * kSub;

  static std::size_t index_of(std::uint64_t v) {
    if (v < 2 * kSub) return static_cast<std::size_t>(v);
    unsigned shift = static_cast<unsigned>(std::bit_width(v)) - 1 - kSubBits;
    auto index = static_cast<std::size_t>(shift * kSub + (v >> shift));
    return std::min(index, kBuckets - 1);
  }

  static double midpoint_of(std::size_t index) {
    if (index < 2 * kSub) return static_cast<double>(index);
    std::size_t shift = index / kSub - 1;
    std::uint64_t low = (index - shift * kSub) << shift;
    return static_cast<double>(low) + static_cast<double>(std::uint64_t{1} << shift) / 2.0;
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Sockets

sockaddr_storage resolve(const Config& cfg, socklen_t& length) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(cfg.host.c_str(), cfg.port.c_str(), &hints, &found); rc != 0) {
    fail("cannot resolve " + cfg.host + ": " + gai_strerror(rc));
  }
  sockaddr_storage address{};
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  length = found->ai_addrlen;
  freeaddrinfo(found);
  return address;
}

void raise_fd_limit(std::size_t wanted) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted) return;
  limit.rlim_cur = std::min<rlim_t>(wanted, limit.rlim_max);
  setrlimit(RLIMIT_NOFILE, &limit);
}

int pending_socket_error(int fd) {
  int error = 0;
  socklen_t length = sizeof error;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return errno;
  return error;
}

// ---------------------------------------------------------------------------------------------
// TLS: one client context; the last session a server sent, for --resume.

std::string ssl_error_text() {
  std::string text;
  while (unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof buffer);
    text += text.empty() ? "" : "; ";
    text += buffer;
  }
  return text.empty() ? "no OpenSSL error queued" : text;
}

class TlsClient {
 public:
  explicit TlsClient(int version) : context_(SSL_CTX_new(TLS_client_method())) {
    if (context_ == nullptr) fail("SSL_CTX_new: " + ssl_error_text());
    SSL_CTX_set_min_proto_version(context_, version);
    SSL_CTX_set_max_proto_version(context_, version);
    SSL_CTX_set_verify(context_, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_mode(context_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(context_, 1);  // a record in one recv(), not its header and then it
    SSL_CTX_set_session_cache_mode(context_,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_set_app_data(context_, this);
    SSL_CTX_sess_set_new_cb(context_, on_new_session);
  }
  ~TlsClient() { SSL_CTX_free(context_); }
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // A client connection on fd, offering the last session if `resume`.
  SSL* connect(int fd, bool resume) const {
    SSL* ssl = SSL_new(context_);
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) fail("SSL_new: " + ssl_error_text());
    SSL_set_connect_state(ssl);
    if (resume && !session_.empty()) {
      const auto* bytes = session_.data();
      SSL_SESSION* session = d2i_SSL_SESSION(nullptr, &bytes, static_cast<long>(session_.size()));
      if (session == nullptr) fail("d2i_SSL_SESSION: " + ssl_error_text());
      SSL_set_session(ssl, session);
      SSL_SESSION_free(session);
    }
    return ssl;
  }

 private:
  // Keeps the ticket serialized, and every connection offers a session of its own made from
  // it: a session object shared by the connections is marked not resumable by OpenSSL's client
  // once one of them resumed it and the server sent no new ticket (Node 20's server sends none
  // on a resumed connection), and every second connection would be a full handshake.
  static int on_new_session(SSL* ssl, SSL_SESSION* session) {
    auto* self = static_cast<TlsClient*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    const int size = i2d_SSL_SESSION(session, nullptr);
    if (size > 0) {
      self->session_.resize(static_cast<std::size_t>(size));
      unsigned char* out = self->session_.data();
      i2d_SSL_SESSION(session, &out);
    }
    return 0;  // not kept: its bytes are
  }

  SSL_CTX* context_;
  std::vector<unsigned char> session_;  // the last ticket's session, DER
};

// ---------------------------------------------------------------------------------------------
// The load generator

// One client connection (in connect mode: one slot, reused by successive connections).
struct Conn {
  int fd = -1;
  std::uint32_t generation = 0;  // tells this slot's current socket from earlier ones
  std::uint64_t id = 0;          // selects the pattern start
  std::size_t start = 0;
  SSL* ssl = nullptr;  // TLS
  bool connecting = false;
  bool handshaking = false;    // TLS: after connecting, before the first message
  bool offered = false;        // TLS: a session was offered (--resume)
  bool watching_out = false;   // EPOLLOUT registered
  std::uint64_t queued = 0;    // messages committed for sending
  std::uint64_t sent = 0;      // bytes sent
  std::uint64_t received = 0;  // bytes echoed and verified
  std::uint64_t opened_ns = 0;
  std::uint64_t progress_ns = 0;      // last time anything moved
  std::vector<std::uint64_t> stamps;  // queue time of the messages in flight, a ring
};

enum class Phase { warmup, measure, done };

struct Counters {
  std::uint64_t messages = 0;  // messages (stream: S-byte chunks; connect: connections) echoed
  std::uint64_t bytes = 0;     // bytes echoed
  std::uint64_t resumed = 0;   // TLS connections that resumed a session
};

class LoadGen {
 public:
  explicit LoadGen(const Config& cfg);
  ~LoadGen();
  LoadGen(const LoadGen&) = delete;
  LoadGen& operator=(const LoadGen&) = delete;

  void run();
  void print_result(bool failed) const;

 private:
  static constexpr std::size_t kStreamWindow = 1 << 20;  // unechoed bytes per stream conn
  static constexpr int kMaxEvents = 256;
  static constexpr int kTickMs = 10;
  static constexpr std::size_t kIdleOpening = 128;  // idle mode: connections being set up

  // Set-up and the loop.
  void start();
  void begin_measure(std::uint64_t now);
  void end_measure(std::uint64_t now);
  void tick(std::uint64_t now);
  void check_stalls(std::uint64_t now);
  void dispatch(const epoll_event& event, std::uint64_t now);

  // One connection's life.
  void open(Conn& c, std::uint64_t now);
  void close(Conn& c);
  void watch(Conn& c, bool out, int op);
  void finish_connect(Conn& c, std::uint64_t now);
  void handshake(Conn& c, std::uint64_t now);
  ssize_t receive(Conn& c, char* data, std::size_t size);
  ssize_t send_some(Conn& c, const char* data, std::size_t size);
  bool on_readable(Conn& c, std::uint64_t now);
  bool on_received(Conn& c, std::size_t n, std::uint64_t now);
  void verify(const Conn& c, std::size_t n) const;
  void complete(Conn& c, std::uint64_t message, std::uint64_t now);
  void refill(Conn& c, std::uint64_t now);
  void flush(Conn& c);
  void recycle(Conn& c, std::uint64_t now);
  void established(std::uint64_t now);
  void start_counted(std::uint64_t now);

  // Message budget (--messages) after the warm-up.
  bool budget_left() const;
  bool take_budget();

  bool measuring() const { return phase_ == Phase::measure; }
  bool records_latency() const { return cfg_.mode != Mode::stream; }
  std::string describe(const Conn& c) const;

  Config cfg_;
  sockaddr_storage address_{};
  socklen_t address_length_ = 0;
  int epoll_fd_ = -1;
  Pattern pattern_;
  std::vector<char> read_buffer_;
  std::vector<Conn> conns_;
  std::size_t window_;     // messages a connection may have in flight
  std::size_t max_write_;  // bytes per send()
  std::uint64_t next_id_ = 0;
  std::size_t idle_opened_ = 0;       // idle mode: connections opened so far
  std::size_t idle_established_ = 0;  // idle mode: connections whose message came back
  std::size_t warmed_up_ = 0;         // --messages: connections whose warm-up message came back

  Phase phase_ = Phase::warmup;
  std::uint64_t warmup_end_ns_ = 0;
  std::uint64_t measure_start_ns_ = 0;
  std::uint64_t measure_end_ns_ = 0;
  std::uint64_t last_stall_check_ns_ = 0;
  std::uint64_t budget_ = 0;       // messages still to send in measure phase (--messages)
  std::uint64_t outstanding_ = 0;  // messages queued and not yet echoed
  CpuTimes server_cpu_start_;
  CpuTimes server_cpu_;  // server CPU seconds in the measured window
  std::uint64_t server_rss_kb_start_ = 0;
  std::uint64_t server_rss_kb_end_ = 0;
  Counters counted_;
  Histogram latency_;
  std::unique_ptr<TlsClient> tls_;
};

LoadGen::LoadGen(const Config& cfg)
    : cfg_(cfg),
      read_buffer_(Pattern::kMaxChunk),
      conns_(cfg.connections),
      window_(1),
      max_write_(Pattern::kMaxChunk) {
  if (cfg_.mode == Mode::pipeline) window_ = cfg_.depth;
  if (cfg_.mode == Mode::stream) {
    window_ = std::max<std::size_t>(1, kStreamWindow / cfg_.size);
    max_write_ = std::min(cfg_.size, Pattern::kMaxChunk);
  }
  for (Conn& c : conns_) {
    if (records_latency()) c.stamps.resize(window_);
  }
  address_ = resolve(cfg_, address_length_);
  raise_fd_limit(cfg_.connections + 64);
  if (cfg_.tls_version != 0) tls_ = std::make_unique<TlsClient>(cfg_.tls_version);
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) fail_errno("epoll_create1");
}

LoadGen::~LoadGen() {
  for (Conn& c : conns_) {
    if (cfg_.mode == Mode::idle && c.fd >= 0) {  // reset: no TIME_WAIT for 10,000 sockets
      linger reset{.l_onoff = 1, .l_linger = 0};
      setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    }
    close(c);
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void LoadGen::run() {
  start();
  std::array<epoll_event, kMaxEvents> events{};
  while (phase_ != Phase::done) {
    int n = epoll_wait(epoll_fd_, events.data(), kMaxEvents, kTickMs);
    if (n < 0 && errno != EINTR) fail_errno("epoll_wait");
    std::uint64_t now = now_ns();
    for (int i = 0; i < n; ++i) dispatch(events[static_cast<std::size_t>(i)], now);
    tick(now);
  }
}

void LoadGen::start() {
  std::uint64_t now = now_ns();
  warmup_end_ns_ = now + seconds_to_ns(cfg_.warmup);
  if (cfg_.server_pid != 0) server_rss_kb_start_ = process_rss_kb(cfg_.server_pid);
  if (cfg_.mode == Mode::idle) {  // the measured window starts once all are established
    idle_opened_ = std::min(conns_.size(), kIdleOpening);
    for (std::size_t i = 0; i < idle_opened_; ++i) open(conns_[i], now);
    return;
  }
  if (cfg_.messages == 0 && cfg_.warmup <= 0.0) begin_measure(now);
  for (Conn& c : conns_) open(c, now);
}

void LoadGen::begin_measure(std::uint64_t now) {
  phase_ = Phase::measure;
  measure_start_ns_ = now;
  measure_end_ns_ = now + seconds_to_ns(cfg_.duration);
  budget_ = cfg_.messages;
  counted_ = {};
  if (cfg_.mode == Mode::idle) counted_.messages = idle_established_;
  latency_.reset();
  if (cfg_.server_pid != 0) server_cpu_start_ = process_cpu_seconds(cfg_.server_pid);
}

void LoadGen::end_measure(std::uint64_t now) {
  phase_ = Phase::done;
  measure_end_ns_ = now;
  if (cfg_.server_pid != 0) {
    CpuTimes end = process_cpu_seconds(cfg_.server_pid);
    server_cpu_ = {end.user - server_cpu_start_.user, end.sys - server_cpu_start_.sys};
    server_rss_kb_end_ = process_rss_kb(cfg_.server_pid);
  }
}

void LoadGen::tick(std::uint64_t now) {
  if (phase_ == Phase::warmup && cfg_.messages > 0 && warmed_up_ >= conns_.size()) {
    start_counted(now);
  } else if (phase_ == Phase::warmup && cfg_.messages == 0 && cfg_.mode != Mode::idle &&
             now >= warmup_end_ns_ && (!cfg_.resume || next_id_ >= 2 * conns_.size())) {
    // --resume: not before every connection slot is past its first, full, handshake
    begin_measure(now);
  }
  bool finished = cfg_.messages > 0 ? (measuring() && budget_ == 0 && outstanding_ == 0)
                                    : (measuring() && now >= measure_end_ns_);
  if (finished) end_measure(now);
  if (now - last_stall_check_ns_ >= 100'000'000u) {
    last_stall_check_ns_ = now;
    check_stalls(now);
  }
}

void LoadGen::check_stalls(std::uint64_t now) {
  std::uint64_t limit = seconds_to_ns(cfg_.timeout);
  for (const Conn& c : conns_) {
    bool waiting = c.connecting || c.handshaking || c.received < c.queued * cfg_.size;
    if (c.fd >= 0 && waiting && now - c.progress_ns > limit) {
      char text[160];
      std::snprintf(text, sizeof text, ": %s for %.1f s (sent %llu bytes, echoed %llu)",
                    c.connecting    ? "connect did not complete"
                    : c.handshaking ? "TLS handshake did not complete"
                                    : "echo stalled",
                    cfg_.timeout, static_cast<unsigned long long>(c.sent),
                    static_cast<unsigned long long>(c.received));
      fail(describe(c) + text);
    }
  }
}

void LoadGen::dispatch(const epoll_event& event, std::uint64_t now) {
  Conn& c = conns_[event.data.u64 & 0xffffffffu];
  if (c.fd < 0 || c.generation != (event.data.u64 >> 32)) return;  // stale event
  if (c.connecting) {
    finish_connect(c, now);
    return;
  }
  if (c.handshaking) {
    handshake(c, now);
    return;
  }
  bool readable = event.events & (EPOLLIN | EPOLLERR | EPOLLHUP);
  if (readable && !on_readable(c, now)) return;  // recycled (connect mode)
  refill(c, now);
  flush(c);
}

// ---------------------------------------------------------------------------------------------
// One connection's life

void LoadGen::open(Conn& c, std::uint64_t now) {
  int fd = socket(address_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) fail_errno("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c = Conn{.fd = fd,
           .generation = c.generation + 1,
           .id = next_id_,
           .start = Pattern::start_for(next_id_),
           .opened_ns = now,
           .progress_ns = now,
           .stamps = std::move(c.stamps)};
  ++next_id_;
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&address_), address_length_);
  if (rc != 0 && errno != EINPROGRESS) {
    fail_errno("connect to " + cfg_.host + ":" + cfg_.port + " failed");
  }
  c.connecting = rc != 0;
  watch(c, c.connecting, EPOLL_CTL_ADD);
  if (!c.connecting) finish_connect(c, now);
}

void LoadGen::close(Conn& c) {
  if (c.fd < 0) return;
  if (c.ssl != nullptr) SSL_free(std::exchange(c.ssl, nullptr));
  ::close(c.fd);  // also removes it from the epoll set
  c.fd = -1;
}

void LoadGen::watch(Conn& c, bool out, int op) {
  epoll_event event{};
  event.events = EPOLLIN | (out ? EPOLLOUT : 0u);
  event.data.u64 =
      (std::uint64_t{c.generation} << 32) | static_cast<std::uint64_t>(&c - &conns_[0]);
  if (epoll_ctl(epoll_fd_, op, c.fd, &event) != 0) fail_errno("epoll_ctl");
  c.watching_out = out;
}

void LoadGen::finish_connect(Conn& c, std::uint64_t now) {
  if (int error = pending_socket_error(c.fd); error != 0) {
    errno = error;
    fail_errno("connect to " + cfg_.host + ":" + cfg_.port + " failed");
  }
  c.connecting = false;
  c.progress_ns = now;
  if (tls_ != nullptr) {
    c.ssl = tls_->connect(c.fd, cfg_.resume);
    c.offered = SSL_get0_session(c.ssl) != nullptr;
    c.handshaking = true;
    handshake(c, now);
    return;
  }
  refill(c, now);
  flush(c);  // also drops EPOLLOUT once nothing is left to write
}

// TLS: advances the handshake; once done, the first messages go out.
void LoadGen::handshake(Conn& c, std::uint64_t now) {
  ERR_clear_error();
  int rc = SSL_do_handshake(c.ssl);
  if (rc != 1) {
    int error = SSL_get_error(c.ssl, rc);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      bool out = error == SSL_ERROR_WANT_WRITE;
      if (c.watching_out != out) watch(c, out, EPOLL_CTL_MOD);
      return;
    }
    fail(describe(c) + ": TLS handshake failed: " + ssl_error_text());
  }
  c.handshaking = false;
  c.progress_ns = now;
  bool resumed = SSL_session_reused(c.ssl) == 1;
  if (measuring() && resumed) ++counted_.resumed;
  if (measuring() && cfg_.resume && !resumed && c.offered) {
    fail(describe(c) + ": the server did not resume the session offered (--resume)");
  }
  refill(c, now);
  flush(c);
}

// recv() or SSL_read(): > 0 bytes, 0 at the end, -1 with errno (EAGAIN: nothing yet).
ssize_t LoadGen::receive(Conn& c, char* data, std::size_t size) {
  if (c.ssl == nullptr) return recv(c.fd, data, size, 0);
  ERR_clear_error();
  int n = SSL_read(c.ssl, data, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
  if (n > 0) return n;
  switch (SSL_get_error(c.ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:  // close_notify
      return 0;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) return errno == 0 ? 0 : -1;  // FIN without close_notify: 0
      [[fallthrough]];
    default:
      fail(describe(c) + ": TLS: " + ssl_error_text());
  }
}

// send() or SSL_write(): the bytes taken, or -1 with errno (EAGAIN: the socket is full).
ssize_t LoadGen::send_some(Conn& c, const char* data, std::size_t size) {
  if (c.ssl == nullptr) return send(c.fd, data, size, MSG_NOSIGNAL);
  ERR_clear_error();
  int n = SSL_write(c.ssl, data, static_cast<int>(std::min<std::size_t>(size, INT_MAX)));
  if (n > 0) return n;
  int error = SSL_get_error(c.ssl, n);
  if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
    errno = EAGAIN;
    return -1;
  }
  if (error == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno != 0) return -1;
  fail(describe(c) + ": TLS: " + ssl_error_text());
}

// Reads what has arrived; false if the exchange completed and the connection was recycled.
bool LoadGen::on_readable(Conn& c, std::uint64_t now) {
  for (;;) {
    ssize_t n = receive(c, read_buffer_.data(), read_buffer_.size());
    if (n > 0) {
      if (!on_received(c, static_cast<std::size_t>(n), now)) return false;
      // A short recv() emptied the socket; SSL_read() returns a record at a time.
      if (c.ssl == nullptr && static_cast<std::size_t>(n) < read_buffer_.size()) return true;
    } else if (n == 0) {
      fail(describe(c) + ": server closed the connection prematurely (sent " +
           std::to_string(c.sent) + " bytes, echoed " + std::to_string(c.received) + ")");
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return true;
    } else if (errno != EINTR) {
      fail_errno(describe(c) + ": recv");
    }
  }
}

// Verifies and counts n echoed bytes; false if the connection was recycled (connect mode).
bool LoadGen::on_received(Conn& c, std::size_t n, std::uint64_t now) {
  if (c.received + n > c.sent) {
    fail(describe(c) + ": server echoed " + std::to_string(c.received + n) + " bytes but only " +
         std::to_string(c.sent) + " were sent");
  }
  verify(c, n);
  std::uint64_t before = c.received / cfg_.size;
  c.received += n;
  c.progress_ns = now;
  if (measuring()) counted_.bytes += n;
  std::uint64_t after = c.received / cfg_.size;
  for (std::uint64_t m = before; m < after; ++m) complete(c, m, now);
  if (cfg_.mode == Mode::idle && after > before) established(now);
  if (cfg_.mode != Mode::connect || after == 0) return true;
  recycle(c, now);
  return false;
}

void LoadGen::verify(const Conn& c, std::size_t n) const {
  const char* expected = pattern_.at(c.start, c.received);
  if (std::memcmp(read_buffer_.data(), expected, n) == 0) return;
  std::size_t i = 0;
  while (read_buffer_[i] == expected[i]) ++i;
  char text[160];
  std::snprintf(
      text, sizeof text, ": ECHO MISMATCH at stream offset %llu: got 0x%02x, expected 0x%02x",
      static_cast<unsigned long long>(c.received) + i, static_cast<unsigned char>(read_buffer_[i]),
      static_cast<unsigned char>(expected[i]));
  fail(describe(c) + text);
}

void LoadGen::complete(Conn& c, std::uint64_t message, std::uint64_t now) {
  --outstanding_;
  if (phase_ == Phase::warmup && cfg_.messages > 0) ++warmed_up_;
  if (!measuring()) return;
  ++counted_.messages;
  if (!records_latency()) return;
  std::uint64_t queued_at = cfg_.mode == Mode::connect ? c.opened_ns : c.stamps[message % window_];
  latency_.record(now - queued_at);
}

void LoadGen::refill(Conn& c, std::uint64_t now) {
  // Idle mode, and the warm-up of --messages: one message per connection, then wait.
  bool single = cfg_.mode == Mode::idle || (phase_ == Phase::warmup && cfg_.messages > 0);
  std::uint64_t limit = single ? 1 : c.received / cfg_.size + window_;
  while (c.queued < limit && take_budget()) {
    if (!c.stamps.empty()) c.stamps[c.queued % window_] = now;
    ++c.queued;
    ++outstanding_;
  }
}

void LoadGen::flush(Conn& c) {
  std::uint64_t target = c.queued * cfg_.size;
  while (c.sent < target) {
    std::size_t chunk =
        static_cast<std::size_t>(std::min<std::uint64_t>(target - c.sent, max_write_));
    ssize_t n = send_some(c, pattern_.at(c.start, c.sent), chunk);
    if (n >= 0) {
      c.sent += static_cast<std::uint64_t>(n);
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!c.watching_out) watch(c, true, EPOLL_CTL_MOD);
      return;
    } else if (errno != EINTR) {
      fail_errno(describe(c) + ": send");
    }
  }
  if (c.watching_out) watch(c, false, EPOLL_CTL_MOD);
}

// Connect mode: the exchange is done; close and, budget permitting, start the next connection.
void LoadGen::recycle(Conn& c, std::uint64_t now) {
  if (c.ssl != nullptr) SSL_shutdown(c.ssl);  // close_notify, as a TLS client ends
  close(c);
  if (phase_ == Phase::warmup && cfg_.messages > 0) return;  // reopened by start_counted
  if (phase_ != Phase::done && budget_left()) open(c, now);
}

// --messages: every connection has had its warm-up message echoed; start the counted ones.
void LoadGen::start_counted(std::uint64_t now) {
  begin_measure(now);
  for (Conn& c : conns_) {
    if (cfg_.mode == Mode::connect) {
      if (budget_left()) open(c, now);
    } else {
      refill(c, now);
      flush(c);
    }
  }
}

// Idle mode: one more connection is set up; open the next, or start holding them all.
void LoadGen::established(std::uint64_t now) {
  ++idle_established_;
  if (idle_opened_ < conns_.size()) open(conns_[idle_opened_++], now);
  if (idle_established_ == conns_.size()) begin_measure(now);
}

// ---------------------------------------------------------------------------------------------
// Budget and reporting

bool LoadGen::budget_left() const {
  return cfg_.messages == 0 || phase_ == Phase::warmup || budget_ > 0;
}

bool LoadGen::take_budget() {
  if (cfg_.messages == 0 || phase_ == Phase::warmup) return true;
  if (budget_ == 0) return false;
  --budget_;
  return true;
}

std::string LoadGen::describe(const Conn& c) const {
  return "connection #" + std::to_string(c.id) + " to " + cfg_.host + ":" + cfg_.port + " (" +
         cfg_.mode_name + ")";
}

void LoadGen::print_result(bool failed) const {
  std::uint64_t end = phase_ == Phase::done ? measure_end_ns_ : now_ns();
  double secs = measure_start_ns_ == 0 ? 0.0 : static_cast<double>(end - measure_start_ns_) / 1e9;
  double rate = secs > 0 ? 1.0 / secs : 0.0;
  auto msgs = static_cast<double>(counted_.messages);
  bool latency = records_latency() && latency_.total() > 0;
  std::printf(
      "RESULT mode=%s conns=%zu size=%zu depth=%zu msgs=%llu secs=%.3f msgs_per_s=%.1f "
      "mb_per_s=%.2f p50_us=%.1f p99_us=%.1f p999_us=%.1f conns_per_s=%.1f server_cpu_s=%.2f "
      "server_sys_s=%.2f "
      "server_rss_kb_start=%llu server_rss_kb_end=%llu tls_resumed=%llu errors=%d\n",
      cfg_.mode_name.c_str(), cfg_.connections, cfg_.size,
      cfg_.mode == Mode::pipeline ? cfg_.depth : 1,
      static_cast<unsigned long long>(counted_.messages), secs, msgs * rate,
      static_cast<double>(counted_.bytes) / 1e6 * rate,
      latency ? latency_.percentile(0.50) / 1e3 : 0.0,
      latency ? latency_.percentile(0.99) / 1e3 : 0.0,
      latency ? latency_.percentile(0.999) / 1e3 : 0.0,
      cfg_.mode == Mode::connect ? msgs * rate : 0.0, server_cpu_.user + server_cpu_.sys,
      server_cpu_.sys, static_cast<unsigned long long>(server_rss_kb_start_),
      static_cast<unsigned long long>(server_rss_kb_end_),
      static_cast<unsigned long long>(counted_.resumed), failed ? 1 : 0);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  try {
    cfg = parse_args(argc, argv);
  } catch (const UsageError& e) {
    if (*e.what() != '\0') std::fprintf(stderr, "loadgen: %s\n", e.what());
    std::fputs(kUsage, stderr);
    return 2;
  }
  try {
    LoadGen gen(cfg);
    try {
      gen.run();
    } catch (const Failure& e) {
      std::fprintf(stderr,
                   "\n********************************************************************\n"
                   "loadgen: FAILED: %s\n"
                   "********************************************************************\n",
                   e.what());
      gen.print_result(true);
      return 1;
    }
    gen.print_result(false);
  } catch (const Failure& e) {  // set-up failed: nothing measured
    std::fprintf(stderr, "loadgen: FAILED: %s\n", e.what());
    return 1;
  }
  return 0;
}
