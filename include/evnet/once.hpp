// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_ONCE_HPP
#define EVNET_ONCE_HPP

#include "evnet/event_emitter.hpp"

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/dispatch.hpp>

#include <exception>
#include <memory>
#include <tuple>
#include <utility>

namespace evnet {

namespace detail {
// The error an "error" event carries, as the exception emit would throw without a listener.
template <class... Args>
std::exception_ptr errorAsExceptionPtr(const Args&... args) {
  try {
    throwUnhandledError(args...);
  } catch (...) {
    return std::current_exception();
  }
}
}  // namespace detail

/// Waits for the next emit of event Name and completes with its arguments as a tuple; if
/// "error" is emitted first, completes with that error instead; either way both listeners are
/// removed (Node: events.once). Takes any asio completion token:
///   auto [from, text] = co_await evnet::once<"message">(chat, asio::use_awaitable);
/// The name is a template argument because the completion's type depends on it. The handler
/// runs through its associated executor (inline when that is the emitting thread), so view
/// arguments such as std::string_view are valid until the waiting coroutine suspends again.
template <FixedString Name, class Emitter, class CompletionToken>
auto once(Emitter& emitter, CompletionToken&& token) {
  using Arguments = typename Emitter::template ArgumentsTuple<Name>;
  constexpr bool watchesError = Emitter::hasEvent("error") && Name.view() != "error";
  return asio::async_initiate<CompletionToken, void(std::exception_ptr, Arguments)>(
      [&emitter](auto handler) {
        using Handler = decltype(handler);
        struct State {
          Handler handler;
          ListenerId eventId{};
          ListenerId errorId{};

          void complete(std::exception_ptr error, Arguments arguments) {
            auto executor = asio::get_associated_executor(handler);
            asio::dispatch(executor, [h = std::move(handler), error,
                                      arguments = std::move(arguments)]() mutable {
              std::move(h)(error, std::move(arguments));
            });
          }
        };
        auto state = std::make_shared<State>(State{std::move(handler)});
        state->eventId = emitter.template once<Name>([state, &emitter](const auto&... args) {
          if constexpr (watchesError)
            emitter.off("error", state->errorId);
          else
            static_cast<void>(emitter);
          state->complete(nullptr, Arguments(args...));
        });
        if constexpr (watchesError) {
          state->errorId = emitter.template once<"error">([state, &emitter](const auto&... error) {
            emitter.off(Name.view(), state->eventId);
            state->complete(detail::errorAsExceptionPtr(error...), Arguments{});
          });
        }
      },
      token);
}

}  // namespace evnet

#endif  // EVNET_ONCE_HPP
