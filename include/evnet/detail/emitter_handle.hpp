// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_EMITTER_HANDLE_HPP
#define EVNET_DETAIL_EMITTER_HANDLE_HPP

#include "evnet/event_emitter.hpp"

#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace evnet::detail {

// The EventEmitter interface of a handle (net::Socket, net::Server) whose emitter is the shared
// object it points to: every method forwards, chaining methods return the handle.
template <class Handle, class Emitter>
class EmitterHandle {
 public:
  using EventName = typename Emitter::EventName;
  template <class F>
  using ListenerName = typename Emitter::template ListenerName<F>;
  template <class... Args>
  using EmitName = typename Emitter::template EmitName<Args...>;
  template <FixedString Name>
  using ArgumentsTuple = typename Emitter::template ArgumentsTuple<Name>;
  static constexpr bool hasEvent(std::string_view name) noexcept { return Emitter::hasEvent(name); }

  template <class F>
  ListenerId on(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return handle().listenerAdded(name, emitter().on(name, std::forward<F>(f)));
  }
  template <class F>
  ListenerId addListener(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return on(name, std::forward<F>(f));
  }
  template <class F>
  ListenerId once(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return handle().listenerAdded(name, emitter().once(name, std::forward<F>(f)));
  }
  template <class F>
  ListenerId prependListener(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return handle().listenerAdded(name, emitter().prependListener(name, std::forward<F>(f)));
  }
  template <class F>
  ListenerId prependOnceListener(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return handle().listenerAdded(name, emitter().prependOnceListener(name, std::forward<F>(f)));
  }
  template <FixedString Name, class F>
  ListenerId on(F&& f) {
    return handle().listenerAdded(EventName(Name.view()),
                                  emitter().template on<Name>(std::forward<F>(f)));
  }
  template <FixedString Name, class F>
  ListenerId once(F&& f) {
    return handle().listenerAdded(EventName(Name.view()),
                                  emitter().template once<Name>(std::forward<F>(f)));
  }
  template <class F>
  [[nodiscard]] Subscription subscribe(std::type_identity_t<ListenerName<F>> name, F&& f) {
    const ListenerId id = on(name, std::forward<F>(f));
    return Subscription([weak = std::weak_ptr(handle().impl_), name, id] {
      if (auto impl = weak.lock()) impl->off(name, id);
    });
  }

  Handle& off(EventName name, ListenerId id) {
    emitter().off(name, id);
    return handle();
  }
  Handle& removeListener(EventName name, ListenerId id) { return off(name, id); }
  Handle& removeAllListeners(EventName name) {
    emitter().removeAllListeners(name);
    return handle();
  }
  Handle& removeAllListeners() {
    emitter().removeAllListeners();
    return handle();
  }
  template <class... Args>
  bool emit(std::type_identity_t<EmitName<Args...>> name, Args&&... args) {
    return emitter().emit(name, std::forward<Args>(args)...);
  }
  unsigned listenerCount(EventName name) const noexcept { return emitter().listenerCount(name); }
  std::vector<std::string_view> eventNames() const { return emitter().eventNames(); }
  Handle& setMaxListeners(unsigned n) noexcept {
    emitter().setMaxListeners(n);
    return handle();
  }
  unsigned getMaxListeners() const noexcept { return emitter().getMaxListeners(); }

 private:
  Handle& handle() noexcept { return static_cast<Handle&>(*this); }
  const Handle& handle() const noexcept { return static_cast<const Handle&>(*this); }
  Emitter& emitter() const noexcept { return *handle().impl_; }
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_EMITTER_HANDLE_HPP
