// A publish/subscribe hub that speaks the pub/sub subset of Redis RESP2, so redis-cli and every
// Redis client library can connect services through it (see README "Examples").
//   hub [--port N] [--host H] [--max-bulk BYTES] [--max-inline BYTES] [--max-args N]
//       [--max-subscriber-queue BYTES] [--max-clients N] [--timeout SECONDS]
//       [--request-timeout MS]                            (default port 6380; 0 picks a free one)
//
// Limits, with Redis' setting in parentheses: --max-clients (maxclients, default 10000): one
// more connection gets "-ERR max number of clients reached" and is closed. --timeout (timeout,
// default 0 = off): a client idle that long is closed, unless it is subscribed. Beyond Redis,
// --request-timeout (default 10000, 0 = off): a request must arrive whole within that time of
// its first byte, else "-ERR request not completed within MS ms" and the connection closes; the
// idle timeout alone cannot stop a client that trickles in a byte at a time (slowloris).
//
// Channels are events: every channel and every pattern is an EventEmitter with one "message"
// event, a subscription is a listener on it, and PUBLISH is an emit. Replies are byte-for-byte
// those of redis-server 7.0 (tests/examples/hub_test.py compares the two).
#include "hub/resp.hpp"

#include <evnet/evnet.hpp>

#include <asio/signal_set.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

using Channel = evnet::EventEmitter<
    evnet::Event<"message", void(std::string_view channel, std::string_view payload)>>;

// The subscriptions of one connection, in the order they were made.
using Subscriptions = std::vector<std::pair<std::string, evnet::ListenerId>>;

struct Client {
  Client(evnet::net::Socket s, hub::RequestParser p) : socket(std::move(s)), parser(std::move(p)) {}

  evnet::net::Socket socket;
  hub::RequestParser parser;
  Subscriptions channels, patterns;
  std::string out;       // replies to the current chunk of requests, written once
  hub::Command command;  // the request being executed; its strings are reused
  bool closing = false;
  evnet::Timeout deadline;  // for the request under way, or for the last replies when closing

  ~Client() { deadline.clear(); }
  std::size_t subscriptions() const { return channels.size() + patterns.size(); }
};

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return r;
}

// Redis' "%s": a C string ends at its first NUL byte.
std::string_view cString(std::string_view s) { return s.substr(0, s.find('\0')); }

class Hub {
 public:
  explicit Hub(std::size_t maxSubscriberQueue) : maxQueue_(maxSubscriberQueue) {}

  void execute(Client& c, const hub::Command& cmd) {
    auto& out = c.out;
    const std::string name = lower(cmd[0]);
    const auto found = commands_.find(name);
    if (found == commands_.end()) return unknownCommand(out, cmd);
    const auto [arity, run] = found->second;
    const auto argc = static_cast<int>(cmd.size());
    if (arity > 0 ? argc != arity : argc < -arity)
      return hub::appendError(out, "ERR wrong number of arguments for '" + name + "' command");
    std::string fullName = name;
    if (name == "pubsub") {
      fullName += '|' + lower(cmd[1]);
      const auto sub = pubsubArity_.find(fullName);
      if (sub == pubsubArity_.end())
        return hub::appendError(out, "ERR unknown subcommand '" +
                                         std::string(cString(cmd[1]).substr(0, 128)) +
                                         "'. Try PUBSUB HELP.");
      if (sub->second > 0 ? argc != sub->second : argc < -sub->second)
        return hub::appendError(out,
                                "ERR wrong number of arguments for '" + fullName + "' command");
    }
    static const std::vector<std::string_view> allowed = {
        "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit"};
    if (c.subscriptions() > 0 && std::ranges::find(allowed, name) == allowed.end())
      return hub::appendError(out, "ERR Can't execute '" + fullName +
                                       "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT "
                                       "/ RESET are allowed in this context");
    (this->*run)(c, cmd);
  }

  void unsubscribeAll(Client& c) {
    while (!c.channels.empty()) leave(channels_, c.channels, c.channels.front().first);
    while (!c.patterns.empty()) leave(patterns_, c.patterns, c.patterns.front().first);
  }

 private:
  using Handler = void (Hub::*)(Client&, const hub::Command&);

  static void unknownCommand(std::string& out, const hub::Command& cmd) {
    std::string args;
    for (std::size_t i = 1; i < cmd.size() && args.size() < 128; ++i)
      args += '\'' + std::string(cString(cmd[i]).substr(0, 128 - args.size())) + "' ";
    hub::appendError(out, "ERR unknown command '" + std::string(cString(cmd[0]).substr(0, 128)) +
                              "', with args beginning with: " + args);
  }

  void ping(Client& c, const hub::Command& cmd) {
    if (cmd.size() > 2)
      return hub::appendError(c.out, "ERR wrong number of arguments for 'ping' command");
    if (c.subscriptions() > 0) {  // RESP2 in subscribed mode: a push-shaped reply
      hub::appendArrayHeader(c.out, 2);
      hub::appendBulkString(c.out, "pong");
      hub::appendBulkString(c.out, cmd.size() > 1 ? cmd[1] : "");
    } else if (cmd.size() > 1) {
      hub::appendBulkString(c.out, cmd[1]);
    } else {
      hub::appendSimpleString(c.out, "PONG");
    }
  }

  void echo(Client& c, const hub::Command& cmd) { hub::appendBulkString(c.out, cmd[1]); }

  void quit(Client& c, const hub::Command&) {
    hub::appendSimpleString(c.out, "OK");
    c.closing = true;
  }

  void subscribe(Client& c, const hub::Command& cmd) {
    for (std::size_t i = 1; i < cmd.size(); ++i) {
      if (!subscribed(c.channels, cmd[i])) {
        auto& channel = open(channels_, cmd[i]);
        c.channels.emplace_back(cmd[i], channel.on("message", [this, &c](auto name, auto payload) {
          const std::string_view fields[] = {"message", name, payload};
          deliver(c, fields);
        }));
      }
      confirm(c, "subscribe", cmd[i]);
    }
  }

  void psubscribe(Client& c, const hub::Command& cmd) {
    for (std::size_t i = 1; i < cmd.size(); ++i) {
      if (!subscribed(c.patterns, cmd[i])) {
        auto& pattern = open(patterns_, cmd[i]);
        c.patterns.emplace_back(
            cmd[i], pattern.on("message", [this, &c, p = cmd[i]](auto name, auto payload) {
              const std::string_view fields[] = {"pmessage", p, name, payload};
              deliver(c, fields);
            }));
      }
      confirm(c, "psubscribe", cmd[i]);
    }
  }

  void unsubscribe(Client& c, const hub::Command& cmd) {
    unsubscribeFrom(c, cmd, channels_, c.channels, "unsubscribe");
  }
  void punsubscribe(Client& c, const hub::Command& cmd) {
    unsubscribeFrom(c, cmd, patterns_, c.patterns, "punsubscribe");
  }

  // PUBLISH: the channel's subscribers, then those of every matching pattern.
  void publish(Client& c, const hub::Command& cmd) {
    long long receivers = 0;
    if (const auto it = channels_.find(cmd[1]); it != channels_.end()) {
      receivers += it->second.listenerCount("message");
      it->second.emit("message", std::string_view(cmd[1]), std::string_view(cmd[2]));
    }
    for (auto& [pattern, emitter] : patterns_) {
      if (!hub::globMatch(pattern, cmd[1])) continue;
      receivers += emitter.listenerCount("message");
      emitter.emit("message", std::string_view(cmd[1]), std::string_view(cmd[2]));
    }
    hub::appendInteger(c.out, receivers);
  }

  void pubsub(Client& c, const hub::Command& cmd) {
    const std::string sub = lower(cmd[1]);
    if (sub == "channels") {
      if (cmd.size() > 3)
        return hub::appendError(c.out, "ERR unknown subcommand or wrong number of arguments for '" +
                                           std::string(cString(cmd[1]).substr(0, 128)) +
                                           "'. Try PUBSUB HELP.");
      std::vector<std::string_view> names;
      for (const auto& entry : channels_)
        if (cmd.size() == 2 || hub::globMatch(cmd[2], entry.first)) names.push_back(entry.first);
      hub::appendArrayHeader(c.out, names.size());
      for (auto n : names) hub::appendBulkString(c.out, n);
    } else if (sub == "numsub") {
      hub::appendArrayHeader(c.out, (cmd.size() - 2) * 2);
      for (std::size_t i = 2; i < cmd.size(); ++i) {
        const auto it = channels_.find(cmd[i]);
        hub::appendBulkString(c.out, cmd[i]);
        hub::appendInteger(c.out, it == channels_.end() ? 0 : it->second.listenerCount("message"));
      }
    } else if (sub == "numpat") {
      hub::appendInteger(c.out, static_cast<long long>(patterns_.size()));
    } else {  // help
      static const char* const help[] = {
          "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
          "CHANNELS [<pattern>]",
          "    Return the currently active channels matching a <pattern> (default: '*').",
          "NUMPAT",
          "    Return number of subscriptions to patterns.",
          "NUMSUB [<channel> ...]",
          "    Return the number of subscribers for the specified channels, excluding",
          "    pattern subscriptions(default: no channels).",
          "SHARDCHANNELS [<pattern>]",
          ("    Return the currently active shard level channels matching a <pattern> (default: "
           "'*')."),
          "SHARDNUMSUB [<shardchannel> ...]",
          "    Return the number of subscribers for the specified shard level channel(s)",
          "HELP",
          "    Prints this help."};
      hub::appendArrayHeader(c.out, std::size(help));
      for (const char* line : help) hub::appendSimpleString(c.out, line);
    }
  }

  // A message or pmessage push. A subscriber that cannot keep up is disconnected; the
  // publisher never waits for it.
  void deliver(Client& c, std::span<const std::string_view> fields) {
    if (c.socket.destroyed()) return;
    push_.clear();  // reused: formatting a push allocates nothing
    hub::appendArrayHeader(push_, fields.size());
    for (auto f : fields) hub::appendBulkString(push_, f);
    c.socket.write(std::string_view(push_));  // copied: a subscriber's pushes join one buffer
    if (c.socket.writableLength() > maxQueue_) c.socket.destroy();
  }

  static Channel& open(std::map<std::string, Channel>& emitters, const std::string& name) {
    auto& emitter = emitters.try_emplace(name).first->second;
    emitter.setMaxListeners(0);  // any number of subscribers
    return emitter;
  }

  static bool subscribed(const Subscriptions& subs, std::string_view name) {
    return std::ranges::any_of(subs, [&](const auto& s) { return s.first == name; });
  }

  static void confirm(Client& c, std::string_view kind, std::string_view name) {
    hub::appendArrayHeader(c.out, 3);
    hub::appendBulkString(c.out, kind);
    hub::appendBulkString(c.out, name);
    hub::appendInteger(c.out, static_cast<long long>(c.subscriptions()));
  }

  // Removes the subscription to `name`, dropping its emitter once nobody listens.
  static void leave(std::map<std::string, Channel>& emitters, Subscriptions& subs,
                    const std::string& name) {
    const auto it = std::ranges::find(subs, name, &Subscriptions::value_type::first);
    if (it == subs.end()) return;
    const auto emitter = emitters.find(name);
    emitter->second.off("message", it->second);
    if (emitter->second.listenerCount("message") == 0) emitters.erase(emitter);
    subs.erase(it);
  }

  void unsubscribeFrom(Client& c, const hub::Command& cmd, std::map<std::string, Channel>& emitters,
                       Subscriptions& subs, std::string_view kind) {
    if (cmd.size() == 1 && subs.empty()) {  // nothing to leave: a null channel name
      hub::appendArrayHeader(c.out, 3);
      hub::appendBulkString(c.out, kind);
      hub::appendNullBulkString(c.out);
      hub::appendInteger(c.out, static_cast<long long>(c.subscriptions()));
      return;
    }
    std::vector<std::string> names(cmd.begin() + 1, cmd.end());
    if (names.empty())
      for (const auto& s : subs) names.push_back(s.first);
    for (const auto& name : names) {
      leave(emitters, subs, name);
      confirm(c, kind, name);
    }
  }

  std::size_t maxQueue_;
  std::string push_;
  std::map<std::string, Channel> channels_, patterns_;  // std::map: emitters never move
  // name -> {arity (negative: at least), handler}, as in Redis' command table.
  const std::unordered_map<std::string, std::pair<int, Handler>> commands_ = {
      {"ping", {-1, &Hub::ping}},
      {"echo", {2, &Hub::echo}},
      {"quit", {-1, &Hub::quit}},
      {"subscribe", {-2, &Hub::subscribe}},
      {"unsubscribe", {-1, &Hub::unsubscribe}},
      {"psubscribe", {-2, &Hub::psubscribe}},
      {"punsubscribe", {-1, &Hub::punsubscribe}},
      {"publish", {3, &Hub::publish}},
      {"pubsub", {-2, &Hub::pubsub}}};
  const std::unordered_map<std::string, int> pubsubArity_ = {
      {"pubsub|channels", -2}, {"pubsub|numsub", -2}, {"pubsub|numpat", 2}, {"pubsub|help", 2}};
};

}  // namespace

int main(int argc, char** argv) {
  unsigned short port = 6380;
  std::string host = "127.0.0.1";
  hub::Limits limits;
  std::size_t maxSubscriberQueue = 32 * 1024 * 1024;  // Redis: client-output-buffer-limit pubsub
  std::size_t maxClients = 10000;                     // Redis: maxclients
  unsigned idleTimeoutMs = 0;                         // Redis: timeout (in seconds there)
  unsigned requestTimeoutMs = 10000;                  // beyond Redis
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const auto number = static_cast<std::size_t>(std::strtoull(argv[i + 1], nullptr, 10));
    if (flag == "--port") port = static_cast<unsigned short>(number);
    if (flag == "--host") host = argv[i + 1];
    if (flag == "--max-bulk") limits.maxBulkLength = number;
    if (flag == "--max-inline") limits.maxInlineLength = number;
    if (flag == "--max-args") limits.maxArguments = number;
    if (flag == "--max-subscriber-queue") maxSubscriberQueue = number;
    if (flag == "--max-clients") maxClients = number;
    if (flag == "--timeout") idleTimeoutMs = static_cast<unsigned>(number * 1000);
    if (flag == "--request-timeout") requestTimeoutMs = static_cast<unsigned>(number);
  }

  Hub hub(maxSubscriberQueue);
  std::size_t clients = 0;
  // Writes the replies. A closing client (QUIT, a protocol error, a timeout) receives no more
  // messages and is closed once they are out, or after --request-timeout if it does not take them.
  auto flush = [&](Client& c) {
    if (!c.out.empty()) c.socket.write(std::string_view(c.out));  // copied: c.out is reused
    c.out.clear();
    if (c.out.capacity() > 64 * 1024) c.out = std::string();  // unless a large reply grew it
    if (!c.closing) return;
    hub.unsubscribeAll(c);
    c.socket.destroySoon();
    c.deadline.clear();
    if (requestTimeoutMs > 0)
      c.deadline = evnet::setTimeout([&c] { c.socket.destroy(); }, requestTimeoutMs);
  };
  auto server = evnet::net::createServer([&](evnet::net::Socket socket) {
    if (clients >= maxClients) {  // Redis: the error, then close
      socket.write("-ERR max number of clients reached\r\n");
      socket.destroySoon();
      return;
    }
    ++clients;
    auto client = std::make_shared<Client>(socket, hub::RequestParser(limits));
    socket.setTimeout(idleTimeoutMs);
    socket.on("timeout", [client] {
      if (client->subscriptions() == 0) client->socket.destroy();  // Redis: subscribers stay
    });
    socket.on("data", [&, client](evnet::Buffer chunk) {
      Client& c = *client;
      if (c.closing) return;
      c.parser.feed(chunk);
      bool executed = false;
      for (; !c.closing && c.parser.next(c.command); executed = true) hub.execute(c, c.command);
      if (c.parser.failed() && !c.closing) {  // Redis: the error, then close
        hub::appendError(c.out, c.parser.error());
        c.closing = true;
      }
      // --request-timeout: the clock starts with a request's first bytes and keeps running,
      // however slowly the rest trickles in, until the parser holds no partial request.
      if (executed || !c.parser.pending()) c.deadline.clear();
      if (c.parser.pending() && !c.deadline.pending() && requestTimeoutMs > 0) {
        c.deadline = evnet::setTimeout(
            [&flush, &c, ms = requestTimeoutMs] {
              hub::appendError(c.out,
                               "ERR request not completed within " + std::to_string(ms) + " ms");
              c.closing = true;
              flush(c);
            },
            requestTimeoutMs);
      }
      flush(c);
    });
    socket.on("close", [&, client](bool) {
      --clients;
      hub.unsubscribeAll(*client);
      client->socket = {};  // break the cycle socket -> listener -> client -> socket
    });
  });
  server.listen(port, host, [&] {
    std::printf("listening on %s:%u\n", host.c_str(), server.address().port);
    std::fflush(stdout);
  });

  asio::signal_set signals(evnet::defaultLoop(), SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) { server.close().closeAllConnections(); });
  evnet::run();
}
