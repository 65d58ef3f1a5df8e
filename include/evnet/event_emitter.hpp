// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_EVENT_EMITTER_HPP
#define EVNET_EVENT_EMITTER_HPP

#include "evnet/detail/compile_errors.hpp"
#include "evnet/detail/listener_list.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace evnet {

/// A string usable as a template argument: the name in Event<"name", ...> (Node: the event
/// name string).
template <std::size_t N>
struct FixedString {
  char chars[N]{};  // the characters and the terminating '\0'

  /// From a string literal, at compile time.
  consteval FixedString(const char (&s)[N]) { std::copy_n(s, N, chars); }
  /// The characters, without the '\0'.
  constexpr std::string_view view() const { return {chars, N - 1}; }
};

/// Declares one event of an emitter: its name and the signature its listeners are called with.
template <FixedString Name, class Signature>
struct Event;

template <FixedString Name, class... Params>
struct Event<Name, void(Params...)> {
  static constexpr std::string_view name = Name.view();
  using Signature = void(Params...);
};

/// Identifies one registration of a listener, for off() (Node identifies it by the function).
class ListenerId {
 public:
  constexpr ListenerId() noexcept = default;
  /// The id whose value() is value.
  constexpr explicit ListenerId(std::uint64_t value) noexcept : value_(value) {}

  /// The registration's number; 0 for a default-constructed id, which names no listener.
  constexpr std::uint64_t value() const noexcept { return value_; }
  /// Whether the id names a registration (value() != 0).
  constexpr explicit operator bool() const noexcept { return value_ != 0; }
  friend constexpr auto operator<=>(const ListenerId&, const ListenerId&) = default;

 private:
  std::uint64_t value_ = 0;
};

/// Thrown by emit("error", value) when "error" has no listener and the value is neither a
/// std::exception_ptr, a std::error_code nor an exception (Node: ERR_UNHANDLED_ERROR).
class UnhandledError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The listener count every new emitter warns above; 0 means unlimited (Node:
/// events.defaultMaxListeners). Read when a listener is added.
inline std::atomic<unsigned> defaultMaxListeners{10};

/// What is reported when an event gets more listeners than the emitter's limit (Node: the
/// process 'warning' MaxListenersExceededWarning).
struct MaxListenersExceededWarning {
  const void* emitter;         // the emitter that got the listener (Node: warning.emitter)
  std::string_view eventName;  // Node: warning.type
  unsigned count;              // its listeners now (Node: warning.count)
  unsigned maxListeners;       // the limit it went over

  /// Node's text: "Possible EventEmitter memory leak detected. 11 message listeners added...".
  std::string message() const {
    return "Possible EventEmitter memory leak detected. " + std::to_string(count) + " " +
           std::string(eventName) + " listeners added to [EventEmitter]. MaxListeners is " +
           std::to_string(maxListeners) + ". Use emitter.setMaxListeners() to increase limit";
  }
};

/// A process-wide handler for warnings (Node: process.on('warning')).
using WarningHandler = void (*)(const MaxListenersExceededWarning&);

namespace detail {
inline void printWarning(const MaxListenersExceededWarning& warning) {
  std::fprintf(stderr, "(evnet) MaxListenersExceededWarning: %s\n", warning.message().c_str());
}
inline std::atomic<WarningHandler> warningHandler{&printWarning};
}  // namespace detail

/// Replaces the warning handler (the default prints one line on stderr) and returns the
/// previous one; nullptr restores the default.
inline WarningHandler setWarningHandler(WarningHandler handler) noexcept {
  return detail::warningHandler.exchange(handler != nullptr ? handler : &detail::printWarning);
}

/// Removes its listener when destroyed: a scoped on() (Node has no equivalent).
class Subscription {
 public:
  Subscription() = default;
  /// Calls remove when destroyed or reset(); what subscribe() returns.
  explicit Subscription(std::function<void()> remove) : remove_(std::move(remove)) {}
  Subscription(Subscription&& other) noexcept : remove_(std::exchange(other.remove_, nullptr)) {}
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      reset();
      remove_ = std::exchange(other.remove_, nullptr);
    }
    return *this;
  }
  ~Subscription() { reset(); }

  /// Removes the listener now; later calls do nothing.
  void reset() {
    if (auto remove = std::exchange(remove_, nullptr)) remove();
  }
  /// Keeps the listener registered for good; the Subscription forgets it.
  void release() noexcept { remove_ = nullptr; }
  /// Whether the Subscription still owns a listener.
  explicit operator bool() const noexcept { return static_cast<bool>(remove_); }

 private:
  std::function<void()> remove_;
};

namespace detail {

template <class T>
inline constexpr bool isEvent = false;
template <FixedString Name, class Signature>
inline constexpr bool isEvent<Event<Name, Signature>> = true;

template <class Signature, class F>
inline constexpr bool listenerFits = false;
template <class... Params, class F>
inline constexpr bool listenerFits<void(Params...), F> = std::is_invocable_v<F&, Params...>;

template <class Signature, class... Args>
inline constexpr bool argumentsFit = false;
template <class... Params, class... Args>
inline constexpr bool argumentsFit<void(Params...), Args...> =
    std::is_invocable_v<void (*)(Params...), Args...>;

template <class Signature>
struct DecayedArguments;
template <class... Params>
struct DecayedArguments<void(Params...)> {
  using type = std::tuple<std::decay_t<Params>...>;
};

// The types that check an event name take the emitter's names joined into one string,
// "connect|ready|...", so that a compiler's message about a wrong name shows the declared names
// and no longer type (the way {fmt}'s format strings keep their errors short).
inline constexpr char kNameSeparator = '|';

template <std::size_t K>
consteval std::size_t joinedSize(const std::array<std::string_view, K>& names,
                                 const std::array<bool, K>& keep) {
  std::size_t size = 1;  // the terminating '\0'; a separator before every name but the first
  for (std::size_t i = 0; i < K; ++i)
    if (keep[i]) size += names[i].size() + (size > 1 ? 1 : 0);
  return size;
}

template <std::size_t Size, std::size_t K>
consteval FixedString<Size> joinNames(const std::array<std::string_view, K>& names,
                                      const std::array<bool, K>& keep) {
  char chars[Size]{};
  std::size_t at = 0;
  for (std::size_t i = 0; i < K; ++i) {
    if (!keep[i]) continue;
    if (at > 0) chars[at++] = kNameSeparator;
    for (char c : names[i]) chars[at++] = c;
  }
  return FixedString<Size>(chars);
}

// How many names the joined string holds ("" holds none).
constexpr std::size_t nameCount(std::string_view joined) {
  if (joined.empty()) return 0;
  return static_cast<std::size_t>(std::count(joined.begin(), joined.end(), kNameSeparator)) + 1;
}

// Where the name that starts at begin ends. Character by character, not string_view::find:
// GCC's UndefinedBehaviorSanitizer makes find's null check on a pointer into a template
// argument "not a constant expression".
constexpr std::size_t nameEnd(std::string_view joined, std::size_t begin) {
  while (begin < joined.size() && joined[begin] != kNameSeparator) ++begin;
  return begin;
}

// The position of name among the joined names; nameCount(joined) when it is not one of them.
constexpr std::size_t indexIn(std::string_view joined, std::string_view name) {
  const std::size_t count = nameCount(joined);
  for (std::size_t index = 0, begin = 0; index < count; ++index) {
    const std::size_t end = nameEnd(joined, begin);
    bool same = end - begin == name.size();
    for (std::size_t i = 0; same && i < name.size(); ++i) same = joined[begin + i] == name[i];
    if (same) return index;
    begin = end + 1;
  }
  return count;
}

// An event name of the emitter whose names are Names: what EventEmitter::EventName is.
template <FixedString Names>
class EventNameIn {
 public:
  template <std::size_t M>
  consteval EventNameIn(const char (&name)[M]) : index_(indexIn(Names.view(), {name, M - 1})) {
    if (index_ == kCount) eventNameIsNotDeclaredInThisEmitter();
  }
  consteval EventNameIn(std::string_view name) : index_(indexIn(Names.view(), name)) {
    if (index_ == kCount) eventNameIsNotDeclaredInThisEmitter();
  }
  constexpr std::size_t index() const noexcept { return index_; }
  constexpr std::string_view view() const noexcept { return kViews[index_]; }

 protected:
  static constexpr std::size_t kCount = nameCount(Names.view());
  constexpr explicit EventNameIn(std::size_t index, std::nullptr_t) noexcept : index_(index) {}

 private:
  static constexpr auto kViews = [] {
    std::array<std::string_view, kCount> views{};
    const std::string_view joined = Names.view();
    for (std::size_t i = 0, begin = 0; i < kCount; ++i) {
      const std::size_t end = nameEnd(joined, begin);
      views[i] = joined.substr(begin, end - begin);
      begin = end + 1;
    }
    return views;
  }();

  std::size_t index_;
};

// An event name whose event takes the arguments of a listener or of emit; Fits are the names of
// the events that do (what EventEmitter::ListenerName<F> and EmitName<Args...> are).
template <FixedString Names, FixedString Fits, bool Listener>
class EventNameFor : public EventNameIn<Names> {
 public:
  template <std::size_t M>
  consteval EventNameFor(const char (&name)[M])
      : EventNameIn<Names>(indexIn(Names.view(), {name, M - 1}), nullptr) {
    if (this->index() == this->kCount)
      eventNameIsNotDeclaredInThisEmitter();
    else if (indexIn(Fits.view(), {name, M - 1}) == nameCount(Fits.view()))
      Listener ? listenerCannotBeCalledWithTheEventsArguments()
               : emitArgumentsDoNotMatchTheEventsSignature();
  }
};

// An emitter's events, in order: their names, and the name types that check them.
template <class... Events>
struct EventTable {
  static constexpr std::size_t kCount = sizeof...(Events);
  static constexpr std::array<std::string_view, kCount> kNames{Events::name...};
  template <std::size_t I>
  using SignatureAt = typename std::tuple_element_t<I, std::tuple<Events...>>::Signature;

  template <class F>
  static constexpr std::array<bool, kCount> kListenerFits = [
  ]<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<bool, kCount>{listenerFits<SignatureAt<I>, F>...};
  }
  (std::make_index_sequence<kCount>{});

  template <class... Args>
  static constexpr std::array<bool, kCount> kArgumentsFit = [
  ]<std::size_t... I>(std::index_sequence<I...>) {
    return std::array<bool, kCount>{argumentsFit<SignatureAt<I>, Args...>...};
  }
  (std::make_index_sequence<kCount>{});

  // The names of the events whose flag is set, joined: the parameter of the name types.
  template <const std::array<bool, kCount>& Keep>
  static constexpr auto kJoined = joinNames<joinedSize(kNames, Keep)>(kNames, Keep);
  static constexpr std::array<bool, kCount> kEvery = [] {
    std::array<bool, kCount> every{};
    every.fill(true);
    return every;
  }();
  static_assert(std::none_of(kNames.begin(), kNames.end(),
                             [](std::string_view name) {
                               return name.find(kNameSeparator) != std::string_view::npos;
                             }),
                "an event name cannot contain '|'");

  using EventName = EventNameIn<kJoined<kEvery>>;
  template <class F>
  using ListenerName = EventNameFor<kJoined<kEvery>, kJoined<kListenerFits<F>>, true>;
  template <class... Args>
  using EmitName = EventNameFor<kJoined<kEvery>, kJoined<kArgumentsFit<Args...>>, false>;
};

template <class T>
std::string describeUnhandled(const T& value) {
  if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return "Unhandled error. ('" + std::string(std::string_view(value)) + "')";
  } else if constexpr (std::is_arithmetic_v<T>) {
    return "Unhandled error. (" + std::to_string(value) + ")";
  } else {
    return "Unhandled error.";
  }
}

// emit("error", ...) without an "error" listener: Node throws the error.
template <class... Args>
[[noreturn]] void throwUnhandledError(const Args&... args) {
  if constexpr (sizeof...(Args) == 0) {
    throw UnhandledError("Unhandled error.");
  } else {
    const auto& error = std::get<0>(std::forward_as_tuple(args...));
    using E = std::remove_cvref_t<decltype(error)>;
    if constexpr (std::is_same_v<E, std::exception_ptr>) {
      if (error) std::rethrow_exception(error);
      throw UnhandledError("Unhandled error. (null exception_ptr)");
    } else if constexpr (std::is_same_v<E, std::error_code>) {
      throw std::system_error(error);
    } else if constexpr (std::is_base_of_v<std::exception, E>) {
      throw error;
    } else {
      throw UnhandledError(describeUnhandled(error));
    }
  }
}

}  // namespace detail

/// An object that emits named events to listeners, checked at compile time (Node: EventEmitter).
///
/// Events<...> are Event<"name", void(Params...)> declarations. Every emitter also has
/// "newListener" and "removeListener", with listeners taking (std::string_view eventName).
/// Behaviour follows Node's events module (see the README for the few differences). An emitter
/// belongs to one thread: to emit from another thread, post the emit to the emitter's loop.
/// Derive from it to make a class an emitter.
template <class... Events>
class EventEmitter {
  static_assert((detail::isEvent<Events> && ...),
                "EventEmitter's arguments must be evnet::Event<\"name\", void(Params...)>");

  using Table = detail::EventTable<Events..., Event<"newListener", void(std::string_view)>,
                                   Event<"removeListener", void(std::string_view)>>;
  static constexpr std::size_t kCount = Table::kCount;
  static constexpr const auto& kNames = Table::kNames;
  template <std::size_t I>
  using SignatureAt = typename Table::template SignatureAt<I>;

  static constexpr std::size_t find(std::string_view name) {
    return static_cast<std::size_t>(std::find(kNames.begin(), kNames.end(), name) - kNames.begin());
  }
  static consteval bool namesAreUnique() {
    for (std::size_t i = 0; i < kCount; ++i)
      if (find(kNames[i]) != i) return false;
    return true;
  }
  static_assert(namesAreUnique(),
                "an event name is declared twice (newListener and "
                "removeListener are declared by every emitter)");

  static constexpr std::size_t kNewListener = kCount - 2;
  static constexpr std::size_t kRemoveListener = kCount - 1;
  static constexpr std::size_t kError = find("error");

 public:
  /// An event name of this emitter; an undeclared name does not compile.
  using EventName = typename Table::EventName;

  /// An event name together with a listener F; F not callable with its arguments does not
  /// compile. F is tried against every event with as many parameters, so a generic lambda
  /// whose body compiles only for its own event's types needs the form on<"name">(f).
  template <class F>
  using ListenerName = typename Table::template ListenerName<F>;

  /// An event name together with emit's arguments; arguments that do not convert to the
  /// event's parameters do not compile.
  template <class... Args>
  using EmitName = typename Table::template EmitName<Args...>;

  /// Whether this emitter declares an event of that name.
  static constexpr bool hasEvent(std::string_view name) noexcept { return find(name) != kCount; }

  /// The event's parameters, decayed, as a std::tuple: what evnet::once completes with.
  template <FixedString Name>
  requires(hasEvent(Name.view())) using ArgumentsTuple =
      typename detail::DecayedArguments<SignatureAt<find(Name.view())>>::type;

  EventEmitter() = default;
  EventEmitter(const EventEmitter&) = delete;
  EventEmitter& operator=(const EventEmitter&) = delete;
  ~EventEmitter() {
    // A listener's destructor may add listeners: released too, in a further round.
    for (auto present = std::exchange(present_, {}); !present.empty();
         present = std::exchange(present_, {}))
      present.forEach([this](std::size_t i) {
        detail::ListenerList::release(std::exchange(lists_[i], nullptr));
      });
  }

  /// Adds a listener called on every emit of the event, after the present ones (Node: on).
  template <class F>
  ListenerId on(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return add(name.index(), std::forward<F>(f), Placement::back, false);
  }
  /// Same as on (Node: addListener).
  template <class F>
  ListenerId addListener(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return add(name.index(), std::forward<F>(f), Placement::back, false);
  }
  /// Adds a listener called at the next emit only, and removed before it runs (Node: once).
  template <class F>
  ListenerId once(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return add(name.index(), std::forward<F>(f), Placement::back, true);
  }
  /// Adds a listener before the present ones (Node: prependListener).
  template <class F>
  ListenerId prependListener(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return add(name.index(), std::forward<F>(f), Placement::front, false);
  }
  /// Adds a one-time listener before the present ones (Node: prependOnceListener).
  template <class F>
  ListenerId prependOnceListener(std::type_identity_t<ListenerName<F>> name, F&& f) {
    return add(name.index(), std::forward<F>(f), Placement::front, true);
  }

  /// on(), with the name as a template argument: on<"message">(listener).
  template <FixedString Name, class F>
  ListenerId on(F&& f) {
    constexpr std::size_t index = find(Name.view());
    static_assert(index != kCount, "this emitter declares no event of that name");
    if constexpr (index != kCount) {  // else no second message
      static_assert(detail::listenerFits<SignatureAt<index>, F>,
                    "the listener cannot be called with the event's arguments");
      if constexpr (detail::listenerFits<SignatureAt<index>, F>)
        return addAt<index>(std::forward<F>(f), Placement::back, false);
    }
    return ListenerId{};
  }
  /// once(), with the name as a template argument: once<"message">(listener).
  template <FixedString Name, class F>
  ListenerId once(F&& f) {
    constexpr std::size_t index = find(Name.view());
    static_assert(index != kCount, "this emitter declares no event of that name");
    if constexpr (index != kCount) {  // else no second message
      static_assert(detail::listenerFits<SignatureAt<index>, F>,
                    "the listener cannot be called with the event's arguments");
      if constexpr (detail::listenerFits<SignatureAt<index>, F>)
        return addAt<index>(std::forward<F>(f), Placement::back, true);
    }
    return ListenerId{};
  }

  /// Adds a listener that is removed when the returned Subscription is destroyed.
  template <class F>
  [[nodiscard]] Subscription subscribe(std::type_identity_t<ListenerName<F>> name, F&& f) {
    const ListenerId id = add(name.index(), std::forward<F>(f), Placement::back, false);
    return Subscription([this, index = name.index(), id] { remove(index, id); });
  }

  /// Removes the listener registered as id, if it still is (Node: off).
  EventEmitter& off(EventName name, ListenerId id) {
    remove(name.index(), id);
    return *this;
  }
  /// Same as off (Node: removeListener).
  EventEmitter& removeListener(EventName name, ListenerId id) { return off(name, id); }

  /// Removes every listener of the event, newest first (Node: removeAllListeners(name)).
  EventEmitter& removeAllListeners(EventName name) {
    removeAll(name.index());
    return *this;
  }
  /// Removes every listener of every event, "removeListener" listeners last (Node:
  /// removeAllListeners()).
  EventEmitter& removeAllListeners() {
    const detail::ListenerList* watchers = lists_[kRemoveListener];
    if (depth_ == 0 && (watchers == nullptr || watchers->live == 0)) {
      // Nobody hears the removals, so their order does not show: every list goes at once,
      // taken out before its nodes are destroyed (a listener's destructor may add listeners).
      std::array<detail::ListenerList*, kCount> taken;  // the first `count` are set
      std::size_t count = 0;
      std::exchange(present_, {}).forEach([&](std::size_t i) {
        taken[count++] = std::exchange(lists_[i], nullptr);
      });
      for (std::size_t i = 0; i < count; ++i) detail::ListenerList::release(taken[i]);
      return *this;
    }
    for (std::size_t index : namesInOrder())
      if (index != kRemoveListener) removeAll(index);
    removeAll(kRemoveListener);
    return *this;
  }

  /// Calls the event's listeners, in order, with args; true iff it had listeners (Node: emit).
  /// "error" without a listener throws (see UnhandledError).
  template <class... Args>
  bool emit(std::type_identity_t<EmitName<Args...>> name, Args&&... args) {
    return visit(name.index(), [&]<std::size_t I>() {
      if constexpr (detail::argumentsFit<SignatureAt<I>, Args...>)
        return emitAt<I>(std::forward<Args>(args)...);
      else
        return false;  // not reached: EmitName did not compile
    });
  }
  /// emit(), with the name as a template argument: emit<"message">(args...).
  template <FixedString Name, class... Args>
  bool emit(Args&&... args) {
    constexpr std::size_t index = find(Name.view());
    static_assert(index != kCount, "this emitter declares no event of that name");
    if constexpr (index != kCount) {  // else no second message
      static_assert(detail::argumentsFit<SignatureAt<index>, Args...>,
                    "the arguments do not convert to the event's parameters");
      if constexpr (detail::argumentsFit<SignatureAt<index>, Args...>)
        return emitAt<index>(std::forward<Args>(args)...);
    }
    return false;
  }

  /// The number of listeners of the event (Node: listenerCount).
  unsigned listenerCount(EventName name) const noexcept {
    const detail::ListenerList* list = lists_[name.index()];
    return list != nullptr ? list->live : 0;
  }
  /// The names that have listeners, in the order they got their first one (Node: eventNames).
  std::vector<std::string_view> eventNames() const {
    std::vector<std::string_view> names;
    for (std::size_t index : namesInOrder()) names.push_back(kNames[index]);
    return names;
  }

  /// Sets the listener count above which a warning is reported; 0 = unlimited (Node:
  /// setMaxListeners).
  EventEmitter& setMaxListeners(unsigned n) noexcept {
    maxListeners_ = n;
    hasOwnMax_ = true;
    return *this;
  }
  /// This emitter's limit, or defaultMaxListeners if none was set (Node: getMaxListeners).
  unsigned getMaxListeners() const noexcept {
    return hasOwnMax_ ? maxListeners_ : defaultMaxListeners.load(std::memory_order_relaxed);
  }

 private:
  enum class Placement { front, back };

  // Keeps nodes in place while listeners run; the outermost emit sweeps removed nodes.
  struct EmitScope {
    EventEmitter& emitter;
    explicit EmitScope(EventEmitter& e) noexcept : emitter(e) { ++emitter.depth_; }
    EmitScope(const EmitScope&) = delete;
    EmitScope& operator=(const EmitScope&) = delete;
    ~EmitScope() {
      if (--emitter.depth_ == 0 && emitter.sweepPending_) emitter.sweep();
    }
  };

  // Calls fn.template operator()<I>() for the runtime index; after inlining, emit's index is a
  // constant and this folds to a direct call.
  template <class Fn>
  static decltype(auto) visit(std::size_t index, Fn&& fn) {
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      using Result = decltype(fn.template operator()<0>());
      Result result{};
      static_cast<void>(
          ((index == I ? (result = fn.template operator()<I>(), true) : false) || ...));
      return result;
    }
    (std::make_index_sequence<kCount>{});
  }

  // The signature that every event F fits has, or void if F fits events of different ones.
  template <class F>
  static constexpr auto commonFit() {
    return []<std::size_t... I>(std::index_sequence<I...>) {
      constexpr std::size_t first =
          std::min({(detail::listenerFits<SignatureAt<I>, F> ? I : kCount)...});
      if constexpr (first == kCount) {
        return std::type_identity<void>{};
      } else {
        using Signature = SignatureAt<first>;
        if constexpr (((!detail::listenerFits<SignatureAt<I>, F> ||
                        std::is_same_v<SignatureAt<I>, Signature>)&&...))
          return std::type_identity<Signature>{};
        else
          return std::type_identity<void>{};
      }
    }
    (std::make_index_sequence<kCount>{});
  }

  // Adds f to the event at index, which ListenerName checked f fits. The node's type depends on
  // the event's signature only, so events of one signature share one instantiation, and when
  // every event F fits has the same signature, no dispatch on the index is compiled at all.
  template <class F>
  ListenerId add(std::size_t index, F&& f, Placement placement, bool once) {
    using Common = typename decltype(commonFit<F>())::type;
    if constexpr (!std::is_void_v<Common>) {
      return addWith(std::type_identity<Common>{}, index, std::forward<F>(f), placement, once);
    } else {
      return visit(index, [&]<std::size_t I>() {
        if constexpr (detail::listenerFits<SignatureAt<I>, F>)
          return addWith(std::type_identity<SignatureAt<I>>{}, I, std::forward<F>(f), placement,
                         once);
        else
          return ListenerId{};  // not reached: ListenerName did not compile
      });
    }
  }

  template <std::size_t I, class F>
  ListenerId addAt(F&& f, Placement placement, bool once) {
    return addWith(std::type_identity<SignatureAt<I>>{}, I, std::forward<F>(f), placement, once);
  }

  template <class F, class... Params>
  ListenerId addWith(std::type_identity<void(Params...)>, std::size_t index, F&& f,
                     Placement placement, bool once) {
    emitAt<kNewListener>(kNames[index]);  // before the listener is added, as in Node
    using Node = detail::ListenerNodeFor<std::decay_t<F>, Params...>;
    detail::ListenerList*& list = lists_[index];
    std::unique_ptr<Node> owned;  // until the list holds it
    Node* node = nullptr;
    if (list == nullptr) {
      std::tie(list, node) = detail::ListenerList::makeWith<Node>(std::forward<F>(f));
      present_.insert(index);
    } else {
      owned = std::make_unique<Node>(std::forward<F>(f));
      node = owned.get();
    }
    node->id = ++sequence_;
    node->once = once;
    node->plain = !once;
    if (placement == Placement::front) {
      list->nodes.pushFront(node);
      ++list->prepended;
    } else {
      list->nodes.pushBack(node);
    }
    static_cast<void>(owned.release());
    const ListenerId id(node->id);
    if (list->live++ == 0) list->firstAdded = id.value();
    list->refreshSingle();
    warnIfTooMany(index, *list);
    return id;
  }

  void warnIfTooMany(std::size_t index, detail::ListenerList& list) {
    const unsigned max = getMaxListeners();
    if (max == 0 || list.live <= max || list.warned) return;
    list.warned = true;
    detail::warningHandler.load()(MaxListenersExceededWarning{this, kNames[index], list.live, max});
  }

  template <std::size_t I, class... Args>
  bool emitAt(Args&&... args) {
    return [&]<class... Params>(std::type_identity<void(Params...)>) {
      return emitWith<I, Params...>(std::forward<Args>(args)...);
    }(std::type_identity<SignatureAt<I>>{});
  }

  // The emit loop. It walks the nodes present when it began: nodes added meanwhile sit after
  // `count` (or before the start, when prepended, which `prepended` accounts for), and removed
  // ones stay in place, skipped only by emits that began after their removal.
  template <std::size_t I, class... Params>
  bool emitWith(Params... params) {
    detail::ListenerList* list = lists_[I];
    if (list != nullptr && list->single != nullptr) {  // one plain listener: the common case
      auto* node = static_cast<detail::TypedListenerNode<Params...>*>(list->single);
      EmitScope scope(*this);
      node->invoke(node, params...);
      return true;
    }
    if (list == nullptr || list->live == 0) {
      if constexpr (I == kError) detail::throwUnhandledError(params...);
      return false;
    }
    emitEach<Params...>(I, *list, params...);
    return true;
  }

  template <class... Params>
  void emitEach(std::size_t index, detail::ListenerList& list, Params... params) {
    EmitScope scope(*this);
    // Only this path reads the clock, so only it advances it: a node removed while the fast
    // path runs is no longer plain and sends every later emit here.
    const std::uint64_t now = ++clock_;
    const std::size_t count = list.nodes.size();
    const std::uint32_t prepended = list.prepended;
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t position = i + (list.prepended - prepended);
      auto* node = static_cast<detail::TypedListenerNode<Params...>*>(list.nodes[position]);
      if (!node->plain && !admit(index, list, position, now)) continue;
      node->invoke(node, params...);
    }
  }

  // Whether an emit that began at `now` calls the removed or once node at position; a once node
  // is unregistered here, before it runs.
  bool admit(std::size_t index, detail::ListenerList& list, std::size_t position,
             std::uint64_t now) {
    detail::ListenerNode* node = list.nodes[position];
    if (node->removedAt < now) return false;
    if (node->once) {
      if (node->fired) return false;
      node->fired = true;
      if (node->removedAt == detail::kNotRemoved) removeAt(index, list, position);
    }
    return true;
  }

  void remove(std::size_t index, ListenerId id) {
    detail::ListenerList* list = lists_[index];
    if (list == nullptr) return;
    for (std::size_t position = list->nodes.size(); position-- > 0;) {
      const detail::ListenerNode* node = list->nodes[position];
      if (node->id == id.value() && node->removedAt == detail::kNotRemoved) {
        removeAt(index, *list, position);
        return;
      }
    }
  }

  void removeAll(std::size_t index) {
    const detail::ListenerList* list = lists_[index];
    for (unsigned n = list != nullptr ? list->live : 0; n > 0; --n) {
      if ((list = lists_[index]) == nullptr) return;
      const auto& nodes = list->nodes;
      auto newest = std::find_if(
          std::make_reverse_iterator(nodes.end()), std::make_reverse_iterator(nodes.begin()),
          [](const detail::ListenerNode* node) { return node->removedAt == detail::kNotRemoved; });
      if (newest.base() == nodes.begin()) return;
      remove(index, ListenerId((*newest)->id));
    }
  }

  // Unregisters the node at position, then emits "removeListener" (after removal, as Node).
  void removeAt(std::size_t index, detail::ListenerList& list, std::size_t position) {
    detail::ListenerNode* node = list.nodes[position];
    if (depth_ > 0) {
      node->removedAt = clock_;
      node->plain = false;
      list.hasRemoved = true;
      sweepPending_ = true;
    } else {
      list.nodes.erase(position);
      node->destroy(node);
    }
    list.refreshSingle();
    if (--list.live == 0) {
      list.warned = false;
      if (depth_ == 0) {
        detail::ListenerList::release(std::exchange(lists_[index], nullptr));
        present_.erase(index);
      }
    }
    emitAt<kRemoveListener>(kNames[index]);
  }

  void sweep() noexcept {
    sweepPending_ = false;
    present_.forEach([this](std::size_t i) {
      detail::ListenerList*& list = lists_[i];
      if (list == nullptr || !list->hasRemoved) return;  // null: a destructor above released it
      list->sweep();
      if (list->nodes.empty()) {
        detail::ListenerList::release(std::exchange(list, nullptr));
        present_.erase(i);
      }
    });
  }

  std::vector<std::size_t> namesInOrder() const {
    std::vector<std::size_t> indices;
    for (std::size_t i = 0; i < kCount; ++i)
      if (lists_[i] != nullptr && lists_[i]->live > 0) indices.push_back(i);
    std::sort(indices.begin(), indices.end(), [this](std::size_t a, std::size_t b) {
      return lists_[a]->firstAdded < lists_[b]->firstAdded;
    });
    return indices;
  }

  std::array<detail::ListenerList*, kCount> lists_{};
  std::uint64_t sequence_ = 0;  // listener ids
  std::uint64_t clock_ = 0;     // advances at every emit that checks removal times
  unsigned depth_ = 0;          // emits running on this emitter
  unsigned maxListeners_ = 0;
  detail::IndexSet<kCount> present_;  // the names whose list is not null
  bool hasOwnMax_ = false;
  bool sweepPending_ = false;
};

}  // namespace evnet

#endif  // EVNET_EVENT_EMITTER_HPP
