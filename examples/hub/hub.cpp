// A hub for independent services that speaks Redis RESP2, so redis-cli and every Redis client
// library connect services through it (see README "Examples"): publish/subscribe, and lists
// with blocking pops for durable work queues.
//   hub [--port N] [--host H] [--max-bulk BYTES] [--max-inline BYTES] [--max-args N]
//       [--max-subscriber-queue BYTES] [--max-clients N] [--timeout SECONDS]
//       [--request-timeout MS] [--maxmemory BYTES] [--appendonly yes|no]
//       [--appendfsync always|everysec|no] [--dir DIR] [--appendfilename NAME]
//       [--appenddirname NAME] [--auto-aof-rewrite-percentage N]
//       [--auto-aof-rewrite-min-size BYTES] [--max-reply-queue BYTES]
//       [--client-query-buffer-limit BYTES] [--busy-poll MICROSECONDS]
//       [--tls-port N --tls-cert-file FILE --tls-key-file FILE] [--tls-ca-cert-file FILE]
//       [--tls-auth-clients yes|no|optional]
//                                                         (default port 6380; 0 picks a free one)
// A bad flag prints this usage and exits with status 2.
//
// TLS (when built with evnet::tls), with redis-server's option names and meaning: the TLS
// listener runs beside the plain one when --tls-port is given, 0 picking a free port (Redis'
// tls-port 0 turns TLS off), and prints "listening for TLS on <host>:<port>" after the plain
// "listening on <host>:<port>". --tls-cert-file and --tls-key-file are required with it;
// --tls-ca-cert-file too unless --tls-auth-clients is no, as redis-server requires. Clients:
// yes (the default): only with a certificate the CA signed; optional: without a certificate
// or with such a one; no: none asked for. A handshake must end within --request-timeout.
//
// Limits, with Redis' setting in parentheses: --max-clients (maxclients, default 10000): one
// more connection gets "-ERR max number of clients reached" and is closed. --timeout (timeout,
// default 0 = off): a client idle that long is closed, unless it is subscribed or blocked.
// Beyond Redis, --request-timeout (default 10000, 0 = off): a request must arrive whole within
// that time of its first byte, else "-ERR request not completed within MS ms" and the
// connection closes; the idle timeout alone cannot stop a client that trickles in a byte at a
// time (slowloris). --maxmemory (maxmemory with the noeviction policy, in bytes, default 0 =
// none): while the keys hold more by the hub's count (Keyspace::usedMemory), commands that add
// data get Redis' OOM error. --max-reply-queue (default 1 MiB; beyond Redis, whose normal
// clients have no limit): a client whose unsent replies pass it is not read, and its requests
// not executed, until they drain. --max-subscriber-queue (default 32 MiB) counts a
// subscriber's replies with its messages. --client-query-buffer-limit (client-query-buffer-limit,
// default 1 GiB): a client whose received requests wait unexecuted past it, as a blocked
// client's do, is closed. Beyond Redis, --busy-poll (default 5; 0 = off): the loop polls that many
// microseconds for work before it sleeps (evnet::run(busyPoll)), which spares clients on other
// cores the wake-up of a sleeping hub, for the hub's CPU; an idle hub sleeps as before.
// --appendonly and the flags after it: hub/aof.hpp.
//
// Channels are events: every channel and every pattern is an EventEmitter with one "message"
// event, a subscription is a listener on it, and PUBLISH is an emit. So are lists that clients
// wait on: each is an EventEmitter with one "ready" event, a blocked client is a listener, and
// a push that creates the list emits it. Replies are byte-for-byte those of redis-server 7.0
// (tests/examples/hub_test.py and hub_lists_test.py compare the two; hub_tls_test.py over TLS).
#include "hub/aof.hpp"
#include "hub/flags.hpp"
#include "hub/keyspace.hpp"
#include "hub/resp.hpp"

#include <evnet/evnet.hpp>
#if HUB_TLS
#include <evnet/tls.hpp>
#endif

#include <asio/defer.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t kHighWaterMark = 64 * 1024;  // see main()

using Channel = evnet::EventEmitter<
    evnet::Event<"message", void(std::string_view channel, std::string_view payload)>>;

// The subscriptions of one connection, in the order they were made.
// Finding, adding and removing one costs O(1): a SUBSCRIBE of many channels, and the
// disconnect after it, take time linear in their number.
class Subscriptions {
 public:
  bool contains(std::string_view name) const { return index_.contains(name); }
  void add(const std::string& name, evnet::ListenerId id) {
    order_.emplace_back(name, id);
    index_.emplace(order_.back().first, std::prev(order_.end()));
  }
  // Removes the subscription to `name`; returns its listener, if there was one.
  std::optional<evnet::ListenerId> remove(std::string_view name) {
    const auto it = index_.find(name);
    if (it == index_.end()) return std::nullopt;
    const auto node = it->second;
    index_.erase(it);
    const evnet::ListenerId id = node->second;
    order_.erase(node);
    return id;
  }
  bool empty() const { return order_.empty(); }
  std::size_t size() const { return order_.size(); }
  const std::string& front() const { return order_.front().first; }
  std::vector<std::string> names() const {
    std::vector<std::string> all;
    all.reserve(order_.size());
    for (const auto& entry : order_) all.push_back(entry.first);
    return all;
  }

 private:
  std::list<std::pair<std::string, evnet::ListenerId>> order_;
  std::unordered_map<std::string_view, decltype(order_)::iterator> index_;  // views into order_
};

// Keys a client waits on: each is an EventEmitter whose "ready" event a push that creates the
// list emits, and a blocked client is a listener on each of its keys, in the order they came.
using Waiters = evnet::EventEmitter<evnet::Event<"ready", void()>>;

// What a client blocked by BLPOP, BRPOP or BLMOVE waits for.
struct Blocking {
  bool active = false;
  bool move = false;  // BLMOVE: the element goes to `destination`
  hub::End from{}, to{};
  std::string destination;
  std::vector<std::pair<std::string, evnet::ListenerId>> keys;
  evnet::Timeout timer;
};

// A client's state; its socket, plain TCP or TLS, is in Connection<Socket> (below). The hub
// reaches the socket through its virtual functions only, so one hub serves both kinds, and
// the code that reads and writes a connection is compiled for its socket type.
struct Client : std::enable_shared_from_this<Client> {
  explicit Client(hub::RequestParser p) : parser(std::move(p)) {}
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  virtual ~Client() {
    deadline.clear();
    blocking.timer.clear();
  }

  // Writes a message to a subscriber, which is disconnected if its unsent bytes pass `limit`.
  virtual void deliver(std::string_view message, std::size_t limit) = 0;
  // Executes its pipelined requests and writes the replies, after a blocking command ended.
  virtual void resume() = 0;
  // Whether replies can still reach it: false once its socket was destroyed (by the hub, or by
  // an error), before its "close".
  virtual bool connected() const = 0;
  // Lets its replies go, held until the append-only file was written (Connections::waitForFile).
  virtual void uncork() = 0;

  hub::RequestParser parser;
  Subscriptions channels, patterns;
  std::string out;       // replies to the current chunk of requests, written once
  hub::Command command;  // the request being executed; its strings are reused
  bool closing = false;
  evnet::Timeout deadline;  // for the request under way, or for the last replies when closing
  Blocking blocking;
  bool gone = false;       // "close" was emitted
  bool counted = true;     // against --max-clients (Connections::countOut)
  bool throttled = false;  // not read until its replies drain (--max-reply-queue)

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
  explicit Hub(std::size_t maxSubscriberQueue) : maxQueue_(maxSubscriberQueue) {
    keys_.listCreated = [this](const std::string& key) {
      if (waiters_.contains(key) && std::ranges::find(ready_, key) == ready_.end())
        ready_.push_back(key);
    };
  }

  std::size_t connectedClients = 0;  // kept by the server, for INFO
  std::size_t maxMemory = 0;         // --maxmemory; 0: no limit

  // Every change to the keys from now on goes to `aof` (--appendonly yes).
  void logTo(hub::AppendOnlyFile& aof) {
    aof_ = &aof;
    keys_.changed = [&aof](const hub::Command& change) { aof.append(change); };
  }

  // Rewrites the append-only file from the keys, in a child process (see hub/aof.hpp).
  bool rewriteAof() {
    return aof_->startRewrite([this](int fd) {
      keys_.snapshot([fd](std::string_view bytes) {
        hub::AppendOnlyFile::writeAll(fd, bytes, "the rewritten file");
      });
    });
  }

  void execute(Client& c, const hub::Command& cmd) {
    run(c, cmd);
    serveReady();
  }

  void unsubscribeAll(Client& c) {
    while (!c.channels.empty()) leave(channels_, c.channels, c.channels.front());
    while (!c.patterns.empty()) leave(patterns_, c.patterns, c.patterns.front());
  }

  // Forgets a blocked client (served, timed out or gone): no listener, no timer is left.
  void unblock(Client& c) {
    if (!c.blocking.active) return;
    for (const auto& [key, id] : c.blocking.keys) {
      const auto it = waiters_.find(key);
      it->second.off("ready", id);
      if (it->second.listenerCount("ready") == 0 && &it->second != emitting_) waiters_.erase(it);
    }
    c.blocking.keys.clear();
    c.blocking.timer.clear();
    c.blocking.active = false;
    --blockedClients_;
  }

 private:
  using Handler = void (Hub::*)(Client&, const hub::Command&);

  void run(Client& c, const hub::Command& cmd) {
    auto& out = c.out;
    name_.assign(cmd[0]);  // lower case, in a string reused from command to command
    for (char& ch : name_)
      if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    const std::string& name = name_;
    const auto found = commands_.find(name);
    if (found == commands_.end()) return unknownCommand(out, cmd);
    const auto [arity, run] = found->second;
    const auto argc = static_cast<int>(cmd.size());
    if (arity > 0 ? argc != arity : argc < -arity)
      return hub::appendError(out, "ERR wrong number of arguments for '" + name + "' command");
    std::string subcommand;  // "pubsub|channels": Redis names a subcommand so in its errors
    if (name == "pubsub") {
      subcommand = name + '|' + lower(cmd[1]);
      const auto sub = pubsubArity_.find(subcommand);
      if (sub == pubsubArity_.end())
        return hub::appendError(out, "ERR unknown subcommand '" +
                                         std::string(cString(cmd[1]).substr(0, 128)) +
                                         "'. Try PUBSUB HELP.");
      if (sub->second > 0 ? argc != sub->second : argc < -sub->second)
        return hub::appendError(out,
                                "ERR wrong number of arguments for '" + subcommand + "' command");
    }
    // --maxmemory, as Redis' noeviction policy: commands that add data fail while the keys
    // hold more; every other command goes on.
    static const std::vector<std::string_view> denyOom = {"lpush", "rpush", "lmove", "blmove",
                                                          "set"};
    if (maxMemory > 0 && keys_.usedMemory() > maxMemory &&
        std::ranges::find(denyOom, name) != denyOom.end())
      return hub::appendError(out, "OOM command not allowed when used memory > 'maxmemory'.");
    static const std::vector<std::string_view> allowed = {
        "subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit", "reset"};
    if (c.subscriptions() > 0 && std::ranges::find(allowed, name) == allowed.end())
      return hub::appendError(out, "ERR Can't execute '" +
                                       (subcommand.empty() ? name : subcommand) +
                                       "': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT "
                                       "/ RESET are allowed in this context");
    (this->*run)(c, cmd);
  }

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

  // RESET: the connection as new, which for the hub means without subscriptions.
  void reset(Client& c, const hub::Command&) {
    unsubscribeAll(c);
    hub::appendSimpleString(c.out, "RESET");
  }

  // BGREWRITEAOF: the append-only file rewritten from the keys, in the background.
  void bgrewriteaof(Client& c, const hub::Command&) {
    if (aof_ == nullptr)
      return hub::appendError(c.out, "ERR the append-only file is off (--appendonly no)");
    if (!rewriteAof())
      return hub::appendError(c.out,
                              "ERR Background append only file rewriting already in progress");
    hub::appendSimpleString(c.out, "Background append only file rewriting started");
  }

  // SELECT index: the hub has one database, 0 (as redis-server with --databases 1).
  void select(Client& c, const hub::Command& cmd) {
    long long index = 0;
    if (!hub::detail::parseInteger(cmd[1], index))
      return hub::appendError(c.out, "ERR value is not an integer or out of range");
    if (index != 0) return hub::appendError(c.out, "ERR DB index is out of range");
    hub::appendSimpleString(c.out, "OK");
  }

  // INFO [section ...]: of Redis' INFO, the Clients section (connected_clients,
  // blocked_clients) and the Memory section (used_memory: the keys' bytes by the hub's count;
  // maxmemory); other sections are empty.
  void info(Client& c, const hub::Command& cmd) {
    bool clients = cmd.size() == 1, memory = cmd.size() == 1, persistence = cmd.size() == 1;
    for (std::size_t i = 1; i < cmd.size(); ++i) {
      const std::string section = lower(cmd[i]);
      const bool all = section == "all" || section == "default" || section == "everything";
      clients = clients || all || section == "clients";
      memory = memory || all || section == "memory";
      persistence = persistence || all || section == "persistence";
    }
    std::string text;
    if (clients)
      text = "# Clients\r\nconnected_clients:" + std::to_string(connectedClients) +
             "\r\nblocked_clients:" + std::to_string(blockedClients_) + "\r\n";
    if (clients && memory) text += "\r\n";
    if (memory)
      text += "# Memory\r\nused_memory:" + std::to_string(keys_.usedMemory()) +
              "\r\nmaxmemory:" + std::to_string(maxMemory) + "\r\n";
    if ((clients || memory) && persistence) text += "\r\n";
    if (persistence) {
      text += "# Persistence\r\nloading:0\r\naof_enabled:" + std::to_string(aof_ ? 1 : 0) + "\r\n";
      if (aof_)
        text += "aof_rewrite_in_progress:" + std::to_string(aof_->rewriting() ? 1 : 0) +
                "\r\naof_rewrites:" + std::to_string(aof_->rewrites()) +
                "\r\naof_current_size:" + std::to_string(aof_->currentSize()) +
                "\r\naof_base_size:" + std::to_string(aof_->baseSize()) +
                "\r\nlatest_fork_usec:" + std::to_string(aof_->forkMicroseconds()) + "\r\n";
    }
    hub::appendBulkString(c.out, text);
  }

  // --- lists and keys ---------------------------------------------------------------------

  void lpush(Client& c, const hub::Command& cmd) { keys_.push(c.out, cmd, hub::End::left); }
  void rpush(Client& c, const hub::Command& cmd) { keys_.push(c.out, cmd, hub::End::right); }
  void lpop(Client& c, const hub::Command& cmd) { keys_.pop(c.out, cmd, hub::End::left); }
  void rpop(Client& c, const hub::Command& cmd) { keys_.pop(c.out, cmd, hub::End::right); }
  void llen(Client& c, const hub::Command& cmd) { keys_.llen(c.out, cmd); }
  void lrange(Client& c, const hub::Command& cmd) { keys_.lrange(c.out, cmd); }
  void lindex(Client& c, const hub::Command& cmd) { keys_.lindex(c.out, cmd); }
  void lrem(Client& c, const hub::Command& cmd) { keys_.lrem(c.out, cmd); }
  void lmove(Client& c, const hub::Command& cmd) { keys_.lmove(c.out, cmd); }
  void del(Client& c, const hub::Command& cmd) { keys_.del(c.out, cmd); }
  void exists(Client& c, const hub::Command& cmd) { keys_.exists(c.out, cmd); }
  void type(Client& c, const hub::Command& cmd) { keys_.type(c.out, cmd); }
  void keys(Client& c, const hub::Command& cmd) { keys_.keys(c.out, cmd); }
  void dbsize(Client& c, const hub::Command& cmd) { keys_.dbsize(c.out, cmd); }
  void flushall(Client& c, const hub::Command& cmd) { keys_.flushall(c.out, cmd); }
  void get(Client& c, const hub::Command& cmd) { keys_.get(c.out, cmd); }
  void set(Client& c, const hub::Command& cmd) { keys_.set(c.out, cmd); }
  void blpop(Client& c, const hub::Command& cmd) { blockingPop(c, cmd, hub::End::left); }
  void brpop(Client& c, const hub::Command& cmd) { blockingPop(c, cmd, hub::End::right); }

  // BLPOP / BRPOP key [key ...] timeout: pops at once if a key holds a list, else blocks.
  void blockingPop(Client& c, const hub::Command& cmd, hub::End end) {
    long long ms = 0;
    if (const auto error = hub::parseTimeout(cmd.back(), ms); !error.empty())
      return hub::appendError(c.out, error);
    const std::span<const std::string> keys(cmd.begin() + 1, cmd.end() - 1);
    if (keys_.popFirst(c.out, keys, end)) return;
    c.blocking.move = false;
    c.blocking.from = end;
    block(c, keys, ms);
  }

  // BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout.
  void blmove(Client& c, const hub::Command& cmd) {
    hub::End from{}, to{};
    if (!hub::parseEnd(cmd[3], from) || !hub::parseEnd(cmd[4], to))
      return hub::appendError(c.out, "ERR syntax error");
    long long ms = 0;
    if (const auto error = hub::parseTimeout(cmd[5], ms); !error.empty())
      return hub::appendError(c.out, error);
    if (keys_.move(c.out, cmd[1], cmd[2], from, to)) return;
    c.blocking.move = true;
    c.blocking.from = from;
    c.blocking.to = to;
    c.blocking.destination = cmd[2];
    block(c, std::span(&cmd[1], 1), ms);
  }

  // The client listens for "ready" on each of its keys (a key named twice once), after the
  // clients that blocked before it; with a timeout, a timer unblocks it empty-handed.
  void block(Client& c, std::span<const std::string> keys, long long ms) {
    c.blocking.active = true;
    ++blockedClients_;
    for (const auto& key : keys) {
      if (std::ranges::find(c.blocking.keys, key, &decltype(c.blocking.keys)::value_type::first) !=
          c.blocking.keys.end())
        continue;
      auto& waiters = waiters_.try_emplace(key).first->second;
      waiters.setMaxListeners(0);
      c.blocking.keys.emplace_back(key,
                                   waiters.on("ready", [this, client = c.weak_from_this(), key] {
                                     if (const auto blocked = client.lock()) serve(*blocked, key);
                                   }));
    }
    if (ms > 0) {
      constexpr long long kCentury = 100LL * 365 * 24 * 3600 * 1000;  // no timer overflow
      c.blocking.timer = evnet::setTimeout(
          [this, client = c.weak_from_this()] {
            if (const auto blocked = client.lock()) {
              blocked->out += "*-1\r\n";  // RESP2's null array, for all three commands
              unblock(*blocked);
              resumeLater(*blocked);
            }
          },
          std::min(ms, kCentury));
    }
  }

  // A list was created at `key`, which this blocked client waits on: it takes its element
  // unless a client before it emptied the list again, or its socket is gone (destroyed, its
  // "close" still to come): then it waits no more, and the element is left for the next.
  void serve(Client& c, const std::string& key) {
    if (!c.blocking.active) return;
    if (!c.connected()) return unblock(c);
    if (!keys_.hasList(key)) return;
    if (c.blocking.move)
      keys_.move(c.out, key, c.blocking.destination, c.blocking.from, c.blocking.to);
    else
      keys_.popFirst(c.out, std::span(&key, 1), c.blocking.from);
    unblock(c);
    resumeLater(c);
  }

  // After each command, as redis-server does: the lists it created wake their waiters, first
  // come first served, and so do the lists those clients' moves create.
  void serveReady() {
    while (!ready_.empty()) {
      const std::vector<std::string> keys = std::move(ready_);
      ready_.clear();
      for (const auto& key : keys) {
        const auto it = waiters_.find(key);
        if (it == waiters_.end()) continue;
        emitting_ = &it->second;  // an emitter is not destroyed inside its own emit
        it->second.emit("ready");
        emitting_ = nullptr;
        if (it->second.listenerCount("ready") == 0) waiters_.erase(it);
      }
    }
  }

  void resumeLater(Client& c) {
    asio::post(evnet::defaultLoop(), [client = c.weak_from_this()] {
      if (const auto unblocked = client.lock()) unblocked->resume();
    });
  }

  void subscribe(Client& c, const hub::Command& cmd) {
    for (std::size_t i = 1; i < cmd.size(); ++i) {
      if (!c.channels.contains(cmd[i])) {
        auto& channel = open(channels_, cmd[i]);
        c.channels.add(cmd[i], channel.on("message", [this, &c](auto name, auto payload) {
          const std::string_view fields[] = {"message", name, payload};
          deliver(c, fields);
        }));
      }
      confirm(c, "subscribe", cmd[i]);
    }
  }

  void psubscribe(Client& c, const hub::Command& cmd) {
    for (std::size_t i = 1; i < cmd.size(); ++i) {
      if (!c.patterns.contains(cmd[i])) {
        auto& pattern = open(patterns_, cmd[i]);
        c.patterns.add(cmd[i],
                       pattern.on("message", [this, &c, p = cmd[i]](auto name, auto payload) {
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
    push_.clear();  // reused: formatting a push allocates nothing
    hub::appendArrayHeader(push_, fields.size());
    for (auto f : fields) hub::appendBulkString(push_, f);
    c.deliver(push_, maxQueue_);
  }

  static Channel& open(std::map<std::string, Channel>& emitters, const std::string& name) {
    auto& emitter = emitters.try_emplace(name).first->second;
    emitter.setMaxListeners(0);  // any number of subscribers
    return emitter;
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
    const auto emitter = emitters.find(name);  // first: `name` may be the subscription's own
    const auto id = subs.remove(name);
    if (!id) return;
    emitter->second.off("message", *id);
    if (emitter->second.listenerCount("message") == 0) emitters.erase(emitter);
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
    if (names.empty()) names = subs.names();
    for (const auto& name : names) {
      leave(emitters, subs, name);
      confirm(c, kind, name);
    }
  }

  std::size_t maxQueue_;
  std::string name_;  // the command under way, in lower case
  std::string push_;
  std::map<std::string, Channel> channels_, patterns_;  // std::map: emitters never move
  hub::Keyspace keys_;
  std::map<std::string, Waiters> waiters_;  // the keys clients are blocked on
  std::vector<std::string> ready_;          // lists created by the command under way
  Waiters* emitting_ = nullptr;
  hub::AppendOnlyFile* aof_ = nullptr;
  std::size_t blockedClients_ = 0;
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
      {"pubsub", {-2, &Hub::pubsub}},
      {"reset", {1, &Hub::reset}},
      {"info", {-1, &Hub::info}},
      {"select", {2, &Hub::select}},
      {"bgrewriteaof", {1, &Hub::bgrewriteaof}},
      {"lpush", {-3, &Hub::lpush}},
      {"rpush", {-3, &Hub::rpush}},
      {"lpop", {-2, &Hub::lpop}},
      {"rpop", {-2, &Hub::rpop}},
      {"llen", {2, &Hub::llen}},
      {"lrange", {4, &Hub::lrange}},
      {"lindex", {3, &Hub::lindex}},
      {"lrem", {4, &Hub::lrem}},
      {"lmove", {5, &Hub::lmove}},
      {"blpop", {-3, &Hub::blpop}},
      {"brpop", {-3, &Hub::brpop}},
      {"blmove", {6, &Hub::blmove}},
      {"del", {-2, &Hub::del}},
      {"exists", {-2, &Hub::exists}},
      {"type", {2, &Hub::type}},
      {"keys", {2, &Hub::keys}},
      {"dbsize", {1, &Hub::dbsize}},
      {"flushall", {-1, &Hub::flushall}},
      {"flushdb", {-1, &Hub::flushall}},
      {"get", {2, &Hub::get}},
      {"set", {-3, &Hub::set}}};
  const std::unordered_map<std::string, int> pubsubArity_ = {
      {"pubsub|channels", -2}, {"pubsub|numsub", -2}, {"pubsub|numpat", 2}, {"pubsub|help", 2}};
};

// What the connections are held to (see the flags at the top).
struct Settings {
  hub::Limits limits;
  std::size_t maxSubscriberQueue = 32 * 1024 * 1024;
  std::size_t maxClients = 10000;
  unsigned idleTimeoutMs = 0;
  unsigned requestTimeoutMs = 10000;
  std::size_t maxReplyQueue = 1024 * 1024;
  std::size_t queryBufferLimit = 1024 * 1024 * 1024;  // Redis: client-query-buffer-limit 1gb
};

template <class Socket>
struct Connection;

// The hub's connections, plain TCP or TLS: their requests read and executed, their replies
// written, their limits kept. Each function is compiled for the socket type, so the plain path
// costs what it cost before TLS existed.
class Connections {
 public:
  Connections(Hub& hub, Settings settings, hub::AppendOnlyFile* aof)
      : hub_(hub), settings_(std::move(settings)), aof_(aof) {}

  // A server's connection listener: net::Server's, or tls::Server's "secureConnection".
  template <class Socket>
  void accept(Socket socket);

  // Executes the requests received, until a command blocks the client; then writes the replies.
  template <class Socket>
  void process(Connection<Socket>& c);

  // Closes a client at once (a limit or a timeout), which stops counting against --max-clients
  // now: its peer may see the reset and connect again before the "close" (in Node too, new
  // connections are accepted in the poll phase, before the close callbacks). A blocked client
  // stops waiting now too: a push before its "close" would hand it an element it cannot send.
  template <class Socket>
  void cut(Connection<Socket>& c) {
    countOut(c);
    hub_.unblock(c);
    c.socket.destroy();
  }

 private:
  template <class Socket>
  void flush(Connection<Socket>& c);

  // --appendonly yes: replies wait, corked, for the changes to reach the file. One write (and
  // with appendfsync always, one fsync) then serves every connection the loop handled in the
  // meantime, as redis-server writes its file once per loop iteration, before any reply. The
  // write waits for a second round of ready handlers: asio polls its reactor between rounds, so
  // requests that arrived while the first ran join the write. With one round, the hub, which
  // polls far more often than redis-server sleeps, wrote once per 4 requests where redis-server
  // writes once per 6.5 (unpipelined LPUSH), and spent 6% more CPU per request (details.md).
  template <class Socket>
  void waitForFile(Connection<Socket>& c) {
    c.socket.cork();
    waiting_.push_back(c.shared_from_this());
    if (waiting_.size() == 1)
      asio::defer(evnet::defaultLoop(),
                  [this] { asio::defer(evnet::defaultLoop(), [this] { writeFile(); }); });
  }
  void writeFile() {
    aof_->flush();
    released_.swap(waiting_);
    for (const auto& c : released_) c->uncork();
    released_.clear();
  }

  // Once per client: it no longer counts against --max-clients.
  void countOut(Client& c) {
    if (std::exchange(c.counted, false)) --hub_.connectedClients;
  }

  Hub& hub_;
  Settings settings_;
  hub::AppendOnlyFile* aof_;                                 // --appendonly yes
  std::vector<std::shared_ptr<Client>> waiting_, released_;  // corked until writeFile()
};

template <class Socket>
struct Connection final : Client {
  Connection(Socket s, Connections& owner, hub::RequestParser p)
      : Client(std::move(p)), socket(std::move(s)), connections(owner) {}

  void deliver(std::string_view message, std::size_t limit) override {
    if (socket.destroyed()) return;
    socket.write(message);  // copied: a subscriber's pushes join one buffer
    if (socket.writableLength() > limit) connections.cut(*this);
  }
  void resume() override {
    if (!closing && !gone) connections.process(*this);
  }
  bool connected() const override { return !gone && !socket.destroyed(); }
  void uncork() override {
    if (!gone) socket.uncork();  // a gone client's socket is empty
  }

  Socket socket;
  Connections& connections;
};

// The client that replays the append-only file at start: it has no socket.
struct Replayer final : Client {
  Replayer() : Client(hub::RequestParser()) {}
  void deliver(std::string_view, std::size_t) override {}
  void resume() override {}
  bool connected() const override { return true; }
  void uncork() override {}
};

template <class Socket>
void Connections::accept(Socket socket) {
  if (hub_.connectedClients >= settings_.maxClients) {  // Redis: the error, then close
    socket.write("-ERR max number of clients reached\r\n");
    socket.destroySoon();
    return;
  }
  ++hub_.connectedClients;
  auto client =
      std::make_shared<Connection<Socket>>(socket, *this, hub::RequestParser(settings_.limits));
  socket.setTimeout(settings_.idleTimeoutMs);
  socket.on("timeout", [this, client] {
    // Redis: subscribers and blocked clients stay
    if (client->subscriptions() == 0 && !client->blocking.active) cut(*client);
  });
  socket.on("drain", [this, client] {
    if (!client->throttled) return;
    client->throttled = false;
    client->socket.resume();
    process(*client);
  });
  socket.on("data", [this, client](evnet::Buffer chunk) {
    if (client->closing) return;
    client->parser.feed(chunk);
    process(*client);
    // --client-query-buffer-limit, as Redis: requests that wait unexecuted, those a blocked
    // client sends, cannot grow the hub without bound; past the limit the client is closed.
    if (client->parser.buffered() > settings_.queryBufferLimit && !client->socket.destroyed()) {
      std::fprintf(stderr, "hub: closing a client that reached max query buffer length\n");
      cut(*client);
    }
  });
  // A client stops counting against --max-clients when the hub closes it (cut(), flush()), when
  // its peer ends (the hub ends then too), or at "close": a peer that saw the end and connects
  // again at once can be accepted before this connection's "close", which comes after the I/O
  // already polled (as in Node).
  // A blocked client whose peer ended waits no more, at once (Redis frees a client when its
  // read finds the end; a "close" may be turns away). One that failed: Hub::serve.
  socket.on("end", [this, client] {
    countOut(*client);
    hub_.unblock(*client);
  });
  socket.on("close", [this, client](bool) {
    countOut(*client);
    hub_.unsubscribeAll(*client);
    hub_.unblock(*client);
    client->gone = true;
    client->socket = {};  // break the cycle socket -> listener -> client -> socket
  });
}

template <class Socket>
void Connections::process(Connection<Socket>& c) {
  bool executed = false;
  auto unsent = [&] { return c.out.size() + c.socket.writableLength(); };
  for (; !c.closing && !c.blocking.active && !c.throttled && unsent() <= settings_.maxReplyQueue &&
         c.parser.next(c.command);
       executed = true)
    hub_.execute(c, c.command);
  if (c.parser.failed() && !c.closing) {  // Redis: the error, then close
    hub::appendError(c.out, c.parser.error());
    c.closing = true;
  }
  // --request-timeout: the clock starts with a request's first bytes and keeps running,
  // however slowly the rest trickles in, until the parser holds no partial request. The
  // requests of a blocked client, or of one whose replies wait to drain, wait untimed.
  const bool waiting = c.blocking.active || c.throttled || unsent() > settings_.maxReplyQueue;
  if (executed || !c.parser.pending() || waiting) c.deadline.clear();
  if (c.parser.pending() && !waiting && !c.deadline.pending() && settings_.requestTimeoutMs > 0) {
    c.deadline = evnet::setTimeout(
        [this, &c, ms = settings_.requestTimeoutMs] {
          hub::appendError(c.out, "ERR request not completed within " + std::to_string(ms) + " ms");
          c.closing = true;
          flush(c);
        },
        settings_.requestTimeoutMs);
  }
  flush(c);
}

// Writes the replies. A closing client (QUIT, a protocol error, a timeout) receives no more
// messages and is closed once they are out, or after --request-timeout if it does not take them.
template <class Socket>
void Connections::flush(Connection<Socket>& c) {
  if (aof_ != nullptr && aof_->pending()) {
    if (c.closing)
      aof_->flush();  // its end() below uncorks
    else
      waitForFile(c);
  }
  if (!c.out.empty()) c.socket.write(std::string_view(c.out));  // copied: c.out is reused
  c.out.clear();
  if (c.out.capacity() > 64 * 1024) c.out = std::string();  // unless a large reply grew it
  // A subscriber's limit counts its replies too, not only its messages.
  if (c.subscriptions() > 0 && c.socket.writableLength() > settings_.maxSubscriberQueue) {
    cut(c);
    return;
  }
  // --max-reply-queue: a client that does not read its replies is not read either until they
  // drain (Node's backpressure), so its requests wait in the kernel, not in the hub.
  if (!c.throttled && c.socket.writableLength() > settings_.maxReplyQueue) {
    c.throttled = true;
    c.socket.pause();
  }
  if (!c.closing) return;
  hub_.unsubscribeAll(c);
  countOut(c);  // its FIN may reach the peer, which may connect again, before its "close"
  c.socket.destroySoon();
  c.deadline.clear();
  if (settings_.requestTimeoutMs > 0)
    c.deadline = evnet::setTimeout([&c] { c.socket.destroy(); }, settings_.requestTimeoutMs);
}

#if HUB_TLS
// --tls-auth-clients (Redis's names and meaning).
enum class AuthClients { yes, no, optional };

// A file's bytes; a file that cannot be read stops the start.
std::string readFile(const std::string& path, const char* flag) {
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    std::fprintf(stderr, "hub: cannot read %s (--%s)\n", path.c_str(), flag);
    std::exit(1);
  }
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}
#endif

}  // namespace

int main(int argc, char** argv) {
#ifdef __GLIBC__
  // A buffer grown by a large request is let go once the request is read; for its memory to
  // go back to the system, glibc must keep allocating such buffers with mmap. By default it
  // raises that threshold after each large free (up to 32 MiB) and then keeps what is freed.
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);
#endif
  hub::Flags flags(argc, argv,
                   "hub [--port N] [--host H] [--max-bulk BYTES] [--max-inline BYTES] "
                   "[--max-args N] [--max-subscriber-queue BYTES] [--max-clients N] "
                   "[--timeout SECONDS] [--request-timeout MS] [--maxmemory BYTES] "
                   "[--appendonly yes|no] [--appendfsync always|everysec|no] [--dir DIR] "
                   "[--appendfilename NAME] [--appenddirname NAME] "
                   "[--auto-aof-rewrite-percentage N] [--auto-aof-rewrite-min-size BYTES] "
                   "[--max-reply-queue BYTES] [--client-query-buffer-limit BYTES] "
                   "[--busy-poll MICROSECONDS]"
#if HUB_TLS
                   " [--tls-port N --tls-cert-file FILE --tls-key-file FILE] "
                   "[--tls-ca-cert-file FILE] [--tls-auth-clients yes|no|optional]"
#endif
  );
  const auto port = static_cast<unsigned short>(flags.number("port", 6380, 65535));
  const std::string host = flags.text("host", "127.0.0.1");
  Settings settings;
  settings.limits.maxBulkLength = flags.number("max-bulk", settings.limits.maxBulkLength);
  settings.limits.maxInlineLength = flags.number("max-inline", settings.limits.maxInlineLength);
  settings.limits.maxArguments = flags.number("max-args", settings.limits.maxArguments);
  // Redis: client-output-buffer-limit pubsub, maxclients, timeout (in seconds there).
  settings.maxSubscriberQueue = flags.number("max-subscriber-queue", settings.maxSubscriberQueue);
  settings.maxClients = flags.number("max-clients", settings.maxClients);
  settings.idleTimeoutMs = static_cast<unsigned>(flags.number("timeout", 0, 4000000) * 1000);
  settings.requestTimeoutMs = static_cast<unsigned>(
      flags.number("request-timeout", settings.requestTimeoutMs, 4000000000));  // beyond Redis
  settings.maxReplyQueue = flags.number("max-reply-queue", settings.maxReplyQueue);
  settings.queryBufferLimit = flags.number("client-query-buffer-limit", settings.queryBufferLimit);
  const std::chrono::microseconds busyPoll(flags.number("busy-poll", 5, 1000000));
  const bool appendOnly = flags.choice("appendonly", {"yes", "no"}, "no") == "yes";
  hub::AofOptions aofOptions;
  const auto fsync = flags.choice("appendfsync", {"always", "everysec", "no"}, "everysec");
  aofOptions.fsync = fsync == "always" ? hub::Fsync::always
                     : fsync == "no"   ? hub::Fsync::no
                                       : hub::Fsync::everysec;
  aofOptions.dir = flags.text("dir", ".");
  aofOptions.filename = flags.text("appendfilename", aofOptions.filename);
  aofOptions.dirname = flags.text("appenddirname", aofOptions.dirname);
  aofOptions.rewritePercentage =
      flags.number("auto-aof-rewrite-percentage", aofOptions.rewritePercentage);
  aofOptions.rewriteMinSize = flags.number("auto-aof-rewrite-min-size", aofOptions.rewriteMinSize);
  const std::size_t maxMemory = flags.number("maxmemory", 0);
#if HUB_TLS
  // TLS, with redis-server's option names and defaults. The TLS listener runs when --tls-port
  // is given; 0 picks a free port (Redis: 0 turns TLS off).
  const bool tls = !flags.text("tls-port", "").empty();
  const auto tlsPort = static_cast<unsigned short>(flags.number("tls-port", 0, 65535));
  const std::string certFile = flags.text("tls-cert-file", "");
  const std::string keyFile = flags.text("tls-key-file", "");
  const std::string caFile = flags.text("tls-ca-cert-file", "");
  const std::string authClients =
      flags.choice("tls-auth-clients", {"yes", "no", "optional"}, "yes");
#endif
  flags.done();
#if HUB_TLS
  std::optional<evnet::tls::ServerOptions> tlsOptions;
  if (tls) {
    if (certFile.empty() || keyFile.empty())
      flags.usageError("--tls-port needs --tls-cert-file and --tls-key-file");
    if (caFile.empty() && authClients != "no")  // as redis-server refuses to start
      flags.usageError("--tls-ca-cert-file is required unless --tls-auth-clients no");
    try {
      evnet::tls::SecureContextOptions context;
      context.key = readFile(keyFile, "tls-key-file");
      context.cert = readFile(certFile, "tls-cert-file");
      if (!caFile.empty()) context.ca = readFile(caFile, "tls-ca-cert-file");
      tlsOptions.emplace();
      tlsOptions->secureContext = evnet::tls::createSecureContext(context);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "hub: TLS: %s\n", e.what());
      return 1;
    }
    // Clients' certificates are checked as redis-server checks them, by OpenSSL during the
    // handshake, so that a refused client gets the alert that says why. yes: a client without
    // a trusted certificate is refused; optional: a client may come without a certificate, not
    // with an untrusted one; no: none is asked for. (Node's requestCert and rejectUnauthorized
    // have no "optional", and judge the certificate after the handshake.)
    if (authClients != "no")
      SSL_CTX_set_verify(
          tlsOptions->secureContext.nativeHandle(),
          SSL_VERIFY_PEER | (authClients == "yes" ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
    // A handshake is held to --request-timeout, as a request is (Redis has no such limit).
    tlsOptions->handshakeTimeout = settings.requestTimeoutMs;
    tlsOptions->highWaterMark = kHighWaterMark;
  } else if (!certFile.empty() || !keyFile.empty() || !caFile.empty()) {
    flags.usageError("the --tls-* options need --tls-port");
  }
#endif

  Hub hub(settings.maxSubscriberQueue);
  hub.maxMemory = maxMemory;
  // --appendonly yes: the file is replayed, then every change is appended to it.
  std::optional<hub::AppendOnlyFile> aof;
  evnet::Timeout everySecond;
  if (appendOnly) {
    try {
      Replayer loader;
      const std::string note = aof.emplace(aofOptions).open([&](const hub::Command& cmd) {
        loader.out.clear();
        hub.execute(loader, cmd);
        hub.unblock(loader);  // Redis logs no blocking command; one in a crafted file waits not
        return !loader.out.starts_with("-ERR unknown command");
      });
      if (!note.empty()) std::fputs(note.c_str(), stderr);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "hub: %s\n", e.what());
      return 1;
    }
    hub.logTo(*aof);
    // Ten times a second: a rewrite is finished or started; once a second with everysec, the
    // file is synced.
    everySecond = evnet::setInterval(
        [&, tick = 0]() mutable {
          if (const std::string note = aof->poll(); !note.empty()) std::fputs(note.c_str(), stderr);
          if (aof->wantsRewrite()) hub.rewriteAof();
          if (++tick % 10 == 0 && aofOptions.fsync == hub::Fsync::everysec && aof->needsSync())
            aof->sync();
        },
        100);
  }

  Connections connections(hub, settings, aof ? &*aof : nullptr);
  // A subscriber's pushes go out in pieces of up to 64 KiB (Node 22's default high-water mark;
  // Node 20's is 16), near what redis-server writes to it per loop iteration under load.
  evnet::net::ServerOptions serverOptions;
  serverOptions.highWaterMark = kHighWaterMark;
  auto server = evnet::net::createServer(
      serverOptions, [&](evnet::net::Socket socket) { connections.accept(std::move(socket)); });
  // A port that cannot be had stops the start.
  auto cannotListen = [](std::error_code ec) {
    std::fprintf(stderr, "hub: %s\n", ec.message().c_str());
    std::exit(1);
  };
  server.on("error", cannotListen);
#if HUB_TLS
  std::optional<evnet::tls::Server> tlsServer;
  if (tls) {
    tlsServer.emplace(*tlsOptions);
    tlsServer->on("secureConnection",
                  [&](evnet::tls::Socket socket) { connections.accept(std::move(socket)); });
    // As redis-server logs a failed accept; only that connection closes.
    tlsServer->on("tlsClientError", [](std::error_code ec, const evnet::tls::Socket&) {
      std::fprintf(stderr, "hub: TLS handshake failed: %s\n", ec.message().c_str());
    });
    tlsServer->on("error", cannotListen);
  }
#endif
  // "listening on <host>:<port>", then, with TLS, "listening for TLS on <host>:<port>", once
  // both listen.
  int starting = 1;
  auto listening = [&] {
    if (--starting > 0) return;
    std::printf("listening on %s:%u\n", host.c_str(), server.address().port);
#if HUB_TLS
    if (tlsServer)
      std::printf("listening for TLS on %s:%u\n", host.c_str(), tlsServer->address().port);
#endif
    std::fflush(stdout);
  };
#if HUB_TLS
  if (tlsServer) {
    ++starting;
    tlsServer->listen(tlsPort, host, listening);
  }
#endif
  server.listen(port, host, listening);

  asio::signal_set signals(evnet::defaultLoop(), SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int) {
    server.close().closeAllConnections();
#if HUB_TLS
    if (tlsServer) tlsServer->close().closeAllConnections();
#endif
    everySecond.clear();
  });
  evnet::run(busyPoll);
}
