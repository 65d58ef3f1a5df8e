// A small Redis client on evnet::net::Socket, for the producer and worker examples: it speaks to
// the hub and, unchanged, to redis-server. Commands are pipelined: each is written at once and
// its reply is matched to it in order (RESP2 replies come back in request order).
//
//   hub::RespClient redis(evnet::net::connect(6380, "127.0.0.1"));
//   redis.command({"LPUSH", "jobs", "job-1"}, [](std::error_code ec, hub::Reply reply) {...});
//   hub::Reply job = co_await redis.command({"BLMOVE", ...}, asio::use_awaitable);
#pragma once

#include "hub/resp.hpp"

#include <evnet/evnet.hpp>

#include <asio/async_result.hpp>

#include <charconv>
#include <deque>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace hub {

/// One RESP2 reply.
struct Reply {
  enum class Type { simple, error, integer, bulk, null, array };
  Type type = Type::null;
  std::string text;  // simple string, error or bulk string
  long long integer = 0;
  std::vector<Reply> elements;

  bool isNull() const { return type == Type::null; }
  bool isError() const { return type == Type::error; }
};

/// Parses replies as they arrive, in chunks of any size.
class ReplyParser {
 public:
  void feed(std::string_view bytes) { buf_.append(bytes); }

  /// Moves the next complete reply into `out` and returns true; false if more bytes are
  /// needed. Throws std::runtime_error on bytes that are not RESP2.
  bool next(Reply& out) {
    std::size_t pos = pos_;
    Reply reply;
    if (!parse(pos, reply)) return false;
    out = std::move(reply);
    pos_ = pos;
    if (pos_ == buf_.size()) buf_.clear(), pos_ = 0;
    return true;
  }

 private:
  bool parse(std::size_t& pos, Reply& r) {
    const std::size_t eol = buf_.find("\r\n", pos);
    if (eol == std::string::npos) return false;
    const char kind = buf_[pos];
    const std::string_view line(buf_.data() + pos + 1, eol - pos - 1);
    pos = eol + 2;
    switch (kind) {
      case '+':
      case '-':
        r.type = kind == '+' ? Reply::Type::simple : Reply::Type::error;
        r.text = line;
        return true;
      case ':':
        r.type = Reply::Type::integer;
        r.integer = number(line);
        return true;
      case '$': {
        const long long n = number(line);
        if (n < 0) return r.type = Reply::Type::null, true;
        if (buf_.size() - pos < static_cast<std::size_t>(n) + 2) return false;
        r.type = Reply::Type::bulk;
        r.text = buf_.substr(pos, static_cast<std::size_t>(n));
        pos += static_cast<std::size_t>(n) + 2;
        return true;
      }
      case '*': {
        const long long n = number(line);
        if (n < 0) return r.type = Reply::Type::null, true;
        r.type = Reply::Type::array;
        r.elements.resize(static_cast<std::size_t>(n));
        for (auto& element : r.elements)
          if (!parse(pos, element)) return false;
        return true;
      }
      default:
        throw std::runtime_error("not a RESP2 reply");
    }
  }

  static long long number(std::string_view s) {
    long long n = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size())
      throw std::runtime_error("bad number in a RESP2 reply");
    return n;
  }

  std::string buf_;
  std::size_t pos_ = 0;
};

/// A connection to a Redis server (the hub or redis-server). Copies share the connection.
class RespClient {
 public:
  using Callback = std::function<void(std::error_code, Reply)>;

  /// Takes a socket, connected or still connecting (writes made meanwhile are queued).
  explicit RespClient(evnet::net::Socket socket) : state_(std::make_shared<State>()) {
    state_->socket = std::move(socket);
    // The listeners hold the state, and the state the socket, until "close" drops them.
    state_->socket.on("data", [s = state_](evnet::Buffer chunk) { s->received(chunk); });
    state_->socket.on("error", [s = state_](std::error_code ec) { s->error = ec; });
    state_->socket.on("close", [s = state_](bool) { s->closed(); });
  }

  /// Sends a command. Completes with its reply (an error reply is a Reply of type error), or
  /// with an error_code if the connection closes first. The token is a callback
  /// void(std::error_code, Reply) or asio::use_awaitable: co_await redis.command({...}, ...).
  template <class CompletionToken>
  auto command(const Command& args, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::error_code, Reply)>(
        [this, args](auto handler) {
          auto shared = std::make_shared<decltype(handler)>(std::move(handler));
          send(args, [shared](std::error_code ec, Reply reply) {
            std::move (*shared)(ec, std::move(reply));
          });
        },
        token);
  }

  /// Ends the connection once the replies are in (QUIT, as redis-cli does).
  void quit() {
    send({"QUIT"}, [](std::error_code, Reply) {});
  }

 private:
  void send(const Command& args, Callback callback) {
    if (state_->ended)
      return callback(
          state_->error ? state_->error : std::make_error_code(std::errc::not_connected), {});
    std::string request;
    appendCommand(request, args);
    state_->socket.write(std::move(request));
    state_->pending.push_back(std::move(callback));
  }

  struct State {
    evnet::net::Socket socket;
    ReplyParser parser;
    std::deque<Callback> pending;
    std::error_code error;
    bool ended = false;  // "close" was emitted

    void received(evnet::Buffer chunk) {
      parser.feed(std::string_view(chunk.data(), chunk.size()));
      Reply reply;
      try {
        while (!pending.empty() && parser.next(reply)) {
          Callback done = std::move(pending.front());
          pending.pop_front();
          done({}, std::move(reply));
        }
      } catch (const std::runtime_error&) {
        error = std::make_error_code(std::errc::protocol_error);
        socket.destroy();
      }
    }
    void closed() {
      ended = true;
      const auto ec = error ? error : std::make_error_code(std::errc::connection_reset);
      while (!pending.empty()) {
        Callback done = std::move(pending.front());
        pending.pop_front();
        done(ec, {});
      }
      socket = {};  // break the cycle socket -> listener -> state -> socket
    }
  };

  std::shared_ptr<State> state_;
};

}  // namespace hub
