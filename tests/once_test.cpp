// evnet::once: Node's events.once (test-events-once.js) with asio completion tokens.
#include <evnet/once.hpp>

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <exception>
#include <string>
#include <system_error>
#include <tuple>

namespace {
using Chat =
    evnet::EventEmitter<evnet::Event<"message", void(std::string_view, int)>,
                        evnet::Event<"tick", void()>, evnet::Event<"error", void(std::error_code)>>;
}

TEST_CASE("co_await once resolves with the event's arguments and removes both listeners") {
  asio::io_context loop;
  Chat chat;
  std::string text;
  int number = 0;
  asio::co_spawn(
      loop,
      [&]() -> asio::awaitable<void> {
        auto [t, n] = co_await evnet::once<"message">(chat, asio::use_awaitable);
        text = t;  // a view: valid until this coroutine suspends again
        number = n;
      },
      asio::detached);
  loop.poll();
  CHECK(chat.listenerCount("message") == 1);
  CHECK(chat.listenerCount("error") == 1);
  chat.emit("message", "hello", 7);
  loop.poll();
  CHECK(text == "hello");
  CHECK(number == 7);
  CHECK(chat.listenerCount("message") == 0);
  CHECK(chat.listenerCount("error") == 0);
}

TEST_CASE("once fails with the error when error is emitted first, and removes both listeners") {
  asio::io_context loop;
  Chat chat;
  std::error_code caught;
  asio::co_spawn(
      loop,
      [&]() -> asio::awaitable<void> {
        try {
          co_await evnet::once<"tick">(chat, asio::use_awaitable);
        } catch (const std::system_error& e) {
          caught = e.code();
        }
      },
      asio::detached);
  loop.poll();
  const auto reset = std::make_error_code(std::errc::connection_reset);
  CHECK(chat.emit("error", reset));  // handled by once: emit does not throw
  loop.poll();
  CHECK(caught == reset);
  CHECK(chat.listenerCount("tick") == 0);
  CHECK(chat.listenerCount("error") == 0);
}

TEST_CASE("once of error itself resolves with the error") {
  Chat chat;
  std::tuple<std::error_code> result;
  evnet::once<"error">(chat, [&](std::exception_ptr e, std::tuple<std::error_code> args) {
    CHECK_FALSE(e);
    result = args;
  });
  const auto refused = std::make_error_code(std::errc::connection_refused);
  chat.emit("error", refused);
  CHECK(std::get<0>(result) == refused);
  CHECK(chat.listenerCount("error") == 0);
}

TEST_CASE("once accepts any completion token: a plain callback and use_future") {
  Chat chat;
  int calls = 0;
  evnet::once<"tick">(chat, [&](std::exception_ptr e, std::tuple<>) {
    CHECK_FALSE(e);
    ++calls;
  });
  auto future = evnet::once<"message">(chat, asio::use_future);
  chat.emit("tick");
  chat.emit("tick");
  chat.emit("message", "x", 1);
  CHECK(calls == 1);
  CHECK(std::get<1>(future.get()) == 1);
}

TEST_CASE("a pending once releases its handler when the emitter is destroyed") {
  auto token = std::make_shared<int>(0);
  {
    Chat chat;
    evnet::once<"tick">(chat, [token](std::exception_ptr, std::tuple<>) {});
    CHECK(token.use_count() == 2);
  }
  CHECK(token.use_count() == 1);
}
