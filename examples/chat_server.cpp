// Line-based chat for nc/telnet users: the first line a client sends is its nickname, every later
// line goes to everyone else as "<nick>: text" (Node: a net server and an EventEmitter as room).
//   chat_server [--port N] [--host H] [--max-line BYTES]     (defaults: 7001, 127.0.0.1, 1024)
//   /nick NAME renames, /quit leaves. Notices start with "* ", errors with "! ".
#include <evnet/evnet.hpp>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

// Everything said in the room is a "message" event; each member's connection listens to it and
// forwards the lines that are not its own.
using Room = evnet::EventEmitter<
    evnet::Event<"message", void(const evnet::net::Socket& from, std::string_view line)>>;

struct Member {
  explicit Member(evnet::net::Socket s) : socket(std::move(s)) {}

  evnet::net::Socket socket;
  std::string nick;         // empty until chosen
  std::string partial;      // the start of a line whose '\n' has not arrived yet
  bool discarding = false;  // inside a line that was too long: drop it up to its '\n'
  bool quit = false;        // after /quit, further input is ignored
  evnet::ListenerId listener{};
};

class Chat {
 public:
  explicit Chat(std::size_t maxLine) : maxLine_(maxLine) {
    room_.setMaxListeners(0);  // one listener per member, any number of members
  }

  // Splits what arrived into lines: \n or \r\n, split across reads or several per read.
  void read(Member& m, std::string_view chunk) {
    while (!m.quit) {
      const std::size_t newline = chunk.find('\n');
      const std::string_view piece = chunk.substr(0, newline);
      if (!m.discarding && m.partial.size() + piece.size() > maxLine_ + 1) {  // +1: a '\r'
        reply(m, "! line too long\n");
        m.partial.clear();
        m.discarding = true;
      }
      if (!m.discarding) m.partial.append(piece);
      if (newline == std::string_view::npos) return;
      chunk.remove_prefix(newline + 1);
      if (std::exchange(m.discarding, false)) continue;
      std::string_view line = m.partial;
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (line.size() > maxLine_)
        reply(m, "! line too long\n");
      else
        command(m, line);
      m.partial.clear();
    }
  }

  void leave(Member& m) {
    if (m.nick.empty()) return;
    room_.off("message", m.listener);
    nicks_.erase(m.nick);
    say(m, "* " + std::exchange(m.nick, {}) + " left\n");
  }

 private:
  void command(Member& m, std::string_view line) {
    if (m.nick.empty()) return setNick(m, line);
    if (line == "/quit") {
      m.quit = true;
      leave(m);
      m.socket.end("* bye\n");
    } else if (line.starts_with("/nick ")) {
      setNick(m, line.substr(6));
    } else if (line.starts_with('/')) {
      reply(m, "! unknown command; try /nick NAME or /quit\n");
    } else if (!line.empty()) {
      say(m, m.nick + ": " + std::string(line) + "\n");
    }
  }

  void setNick(Member& m, std::string_view nick) {
    // std::none_of, not std::ranges::none_of: libc++ 14 (Clang's own library) lacks the latter.
    const bool valid =
        !nick.empty() && nick.size() <= 32 &&
        std::none_of(nick.begin(), nick.end(), [](unsigned char c) { return c <= ' '; });
    if (!valid) return void(reply(m, "! a nickname is 1 to 32 characters, no spaces\n"));
    if (nicks_.contains(nick)) return void(reply(m, "! that nickname is taken\n"));
    nicks_.emplace(nick);
    if (m.nick.empty()) {  // joining
      m.nick = nick;
      m.listener = room_.on("message", [socket = m.socket](const evnet::net::Socket& from,
                                                           std::string_view line) mutable {
        if (from == socket) return;
        // A member that does not read falls behind; past 1 MiB unsent (room lines and answers
        // to its own lines alike) it is dropped.
        if (!socket.write(line) && socket.writableLength() > (1u << 20)) socket.destroy();
      });
      reply(m, "* welcome " + m.nick + ", " + std::to_string(nicks_.size()) + " online\n");
      say(m, "* " + m.nick + " joined\n");
    } else {
      nicks_.erase(m.nick);
      say(m, "* " + m.nick + " is now " + std::string(nick) + "\n");
      m.nick = nick;
      reply(m, "* you are now " + m.nick + "\n");
    }
  }

  // An answer to the member's own line. One that sends lines without reading the answers is
  // paused (main() resumes it on "drain"), so its answers never pile up in the server.
  static void reply(Member& m, std::string_view text) {
    if (!m.socket.write(text)) m.socket.pause();
  }

  void say(const Member& from, const std::string& line) {
    room_.emit("message", from.socket, line);
  }

  Room room_;
  std::set<std::string, std::less<>> nicks_;
  std::size_t maxLine_;
};

namespace {

constexpr const char* usage =
    "usage: chat_server [--port N] [--host H] [--max-line BYTES]\n"
    "  --port N          the port to listen on, 0 for a free one (default 7001)\n"
    "  --host H          the address to listen on (default 127.0.0.1)\n"
    "  --max-line BYTES  the longest line a client may send, 1 to 1048576 (default 1024)\n";

// Says what is wrong with the command line, then the usage; exit status 2.
[[noreturn]] void badUsage(const std::string& what) {
  std::fprintf(stderr, "chat_server: %s\n%s", what.c_str(), usage);
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
  unsigned short port = 7001;
  std::string host = "127.0.0.1";
  std::size_t maxLine = 1024;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    if (flag != "--port" && flag != "--host" && flag != "--max-line")
      badUsage("unknown option '" + std::string(flag) + "'");
    if (i + 1 == argc) badUsage(std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--port") port = static_cast<unsigned short>(number(flag, value, 0, 65535));
    if (flag == "--host") host = value;
    if (flag == "--max-line") maxLine = number(flag, value, 1, 1 << 20);
  }

  Chat chat(maxLine);
  auto server = evnet::net::createServer([&chat](evnet::net::Socket socket) {
    auto member = std::make_shared<Member>(socket);
    socket.write("* welcome to evnet chat; your nickname?\n");
    socket.on("data", [&chat, member](evnet::Buffer chunk) { chat.read(*member, chunk); });
    socket.on("drain", [socket]() mutable { socket.resume(); });
    socket.on("close", [&chat, member](bool) { chat.leave(*member); });
  });
  int status = 0;
  server.on("error", [&](std::error_code ec) {  // e.g. the port is in use
    std::fprintf(stderr, "chat_server: cannot listen on %s:%u: %s\n", host.c_str(), port,
                 ec.message().c_str());
    status = 1;  // nothing is left to run: run() returns
  });
  server.listen(port, host, [&] {
    std::printf("listening on %s:%u\n", host.c_str(), server.address().port);
    std::fflush(stdout);
  });

  // SIGINT or SIGTERM: stop accepting and close every connection; run() then returns (Node:
  // process.on('SIGTERM', ...)). A listener does not keep the loop running on its own.
  auto stop = [&] { server.close().closeAllConnections(); };
  evnet::process().on("SIGINT", stop);
  evnet::process().on("SIGTERM", stop);
  evnet::run();
  return status;
}
