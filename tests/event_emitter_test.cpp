// EventEmitter follows Node's events module; each case names the Node behaviour it ports.
#include <evnet/event_emitter.hpp>

#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using Chat =
    evnet::EventEmitter<evnet::Event<"message", void(std::string_view from, std::string_view text)>,
                        evnet::Event<"leave", void(std::string_view who)>,
                        evnet::Event<"tick", void()>,
                        evnet::Event<"error", void(std::exception_ptr)>>;

using Log = std::vector<std::string>;

struct Recorder {
  Log& log;
  std::string tag;
  void operator()(std::string_view who) const { log.push_back(tag + ":" + std::string(who)); }
};

}  // namespace

TEST_CASE("listeners run synchronously in registration order with emit's arguments") {
  Chat chat;
  Log log;
  chat.on("message", [&](std::string_view from, std::string_view text) {
    log.push_back("a " + std::string(from) + " " + std::string(text));
  });
  chat.on("message", [&](std::string_view from, std::string_view) {
    log.push_back("b " + std::string(from));
  });
  chat.on("tick", [&] { log.push_back("tick"); });
  chat.emit("message", "ann", "hello");
  CHECK(log == Log{"a ann hello", "b ann"});
  chat.emit("tick");
  CHECK(log.back() == "tick");
}

TEST_CASE("call order holds as a name's list grows from one listener to many and shrinks") {
  // The list keeps its first listener in place and moves to the heap at 2, 5, 9 and 17.
  Chat chat;
  Log log;
  std::deque<std::string> want;
  std::vector<evnet::ListenerId> ids;
  for (int i = 0; i < 20; ++i) {
    const std::string tag = std::to_string(i);
    if (i % 3 == 1) {
      ids.push_back(chat.prependListener("leave", Recorder{log, tag}));
      want.push_front(tag + ":x");
    } else {
      ids.push_back(chat.on("leave", Recorder{log, tag}));
      want.push_back(tag + ":x");
    }
    log.clear();
    chat.emit("leave", "x");
    REQUIRE(log == Log(want.begin(), want.end()));
  }
  for (int i : {0, 19, 10, 7}) {  // the first, the last and two between
    chat.off("leave", ids[static_cast<std::size_t>(i)]);
    std::erase(want, std::to_string(i) + ":x");
  }
  log.clear();
  chat.emit("leave", "x");
  CHECK(log == Log(want.begin(), want.end()));
  CHECK(chat.listenerCount("leave") == 16);
}

TEST_CASE("prependListener and prependOnceListener put the listener first") {
  Chat chat;
  Log log;
  chat.on("leave", Recorder{log, "on"});
  chat.prependListener("leave", Recorder{log, "prepended"});
  chat.prependOnceListener("leave", Recorder{log, "prepended-once"});
  chat.emit("leave", "x");
  chat.emit("leave", "y");
  CHECK(log == Log{"prepended-once:x", "prepended:x", "on:x", "prepended:y", "on:y"});
}

TEST_CASE("the same callable registered twice is called twice") {
  Chat chat;
  int calls = 0;
  auto listener = [&](std::string_view) { ++calls; };
  const auto first = chat.on("leave", listener);
  const auto second = chat.on("leave", listener);
  CHECK(first != second);
  chat.emit("leave", "x");
  CHECK(calls == 2);
  chat.off("leave", first);
  chat.emit("leave", "x");
  CHECK(calls == 3);
}

TEST_CASE("a once listener is removed before it runs, so re-emitting inside it does not call it") {
  Chat chat;
  int calls = 0;
  unsigned countInside = 99;
  chat.once("leave", [&](std::string_view) {
    ++calls;
    countInside = chat.listenerCount("leave");
    chat.emit("leave", "again");
  });
  CHECK(chat.emit("leave", "x"));
  CHECK(calls == 1);
  CHECK(countInside == 0);
  CHECK_FALSE(chat.emit("leave", "x"));
  CHECK(calls == 1);
}

TEST_CASE("off removes a once listener that has not fired") {
  Chat chat;
  int calls = 0;
  const auto id = chat.once("leave", [&](std::string_view) { ++calls; });
  chat.off("leave", id);
  CHECK_FALSE(chat.emit("leave", "x"));
  CHECK(calls == 0);
}

TEST_CASE("a listener removed during an emit still runs in that emit and not in the next") {
  Chat chat;
  Log log;
  evnet::ListenerId b;
  chat.on("leave", [&](std::string_view who) {
    log.push_back("a:" + std::string(who));
    chat.off("leave", b);
  });
  b = chat.on("leave", Recorder{log, "b"});
  chat.emit("leave", "1");
  chat.emit("leave", "2");
  CHECK(log == Log{"a:1", "b:1", "a:2"});
}

TEST_CASE(
    "a listener that removes itself keeps running, and removeAllListeners during emit "
    "leaves the emit's snapshot intact") {
  Chat chat;
  Log log;
  evnet::ListenerId self;
  self = chat.on("leave", [&](std::string_view who) {
    chat.off("leave", self);
    log.push_back("self:" + std::string(who));
  });
  chat.on("leave", [&](std::string_view who) {
    log.push_back("wiper:" + std::string(who));
    chat.removeAllListeners("leave");
  });
  chat.on("leave", Recorder{log, "last"});
  chat.emit("leave", "1");
  CHECK(log == Log{"self:1", "wiper:1", "last:1"});
  CHECK(chat.listenerCount("leave") == 0);
  CHECK_FALSE(chat.emit("leave", "2"));
}

TEST_CASE("a listener added during an emit is not called in that emit, but in the next") {
  Chat chat;
  Log log;
  bool added = false;
  chat.on("leave", [&](std::string_view who) {
    log.push_back("a:" + std::string(who));
    if (!added) {
      added = true;
      chat.on("leave", Recorder{log, "appended"});
      chat.prependListener("leave", Recorder{log, "prepended"});
    }
  });
  chat.on("leave", Recorder{log, "b"});
  chat.emit("leave", "1");
  CHECK(log == Log{"a:1", "b:1"});
  log.clear();
  chat.emit("leave", "2");
  CHECK(log == Log{"prepended:2", "a:2", "b:2", "appended:2"});
}

TEST_CASE("a nested emit sees the listeners as they are when it begins") {
  Chat chat;
  Log log;
  evnet::ListenerId victim;
  int depth = 0;
  chat.on("leave", [&](std::string_view who) {
    log.push_back("outer:" + std::string(who));
    if (depth++ == 0) {
      chat.off("leave", victim);
      chat.on("leave", Recorder{log, "late"});
      chat.emit("leave", "nested");
    }
  });
  victim = chat.on("leave", Recorder{log, "victim"});
  chat.emit("leave", "top");
  CHECK(log == Log{"outer:top", "outer:nested", "late:nested", "victim:top"});
}

TEST_CASE("a once listener fired by a nested emit is not called again by the outer emit") {
  Chat chat;
  Log log;
  bool nested = false;
  chat.on("leave", [&](std::string_view who) {
    log.push_back("first:" + std::string(who));
    if (!nested) {
      nested = true;
      chat.emit("leave", "nested");
    }
  });
  chat.once("leave", Recorder{log, "once"});
  chat.emit("leave", "top");
  CHECK(log == Log{"first:top", "first:nested", "once:nested"});
}

TEST_CASE("emit returns true iff the event had listeners") {
  Chat chat;
  CHECK_FALSE(chat.emit("tick"));
  const auto id = chat.on("tick", [] {});
  CHECK(chat.emit("tick"));
  chat.off("tick", id);
  CHECK_FALSE(chat.emit("tick"));
}

TEST_CASE("an exception from a listener leaves emit at once and the emitter stays usable") {
  Chat chat;
  Log log;
  chat.on("leave", Recorder{log, "a"});
  evnet::ListenerId thrower;
  thrower = chat.on("leave", [&](std::string_view) {
    chat.off("leave", thrower);
    throw std::runtime_error("boom");
  });
  chat.on("leave", Recorder{log, "c"});
  CHECK_THROWS_WITH_AS(chat.emit("leave", "1"), "boom", std::runtime_error);
  CHECK(log == Log{"a:1"});
  CHECK(chat.listenerCount("leave") == 2);
  chat.emit("leave", "2");
  CHECK(log == Log{"a:1", "a:2", "c:2"});
}

TEST_CASE("emitting error without an error listener throws the error") {
  SUBCASE("an exception_ptr is rethrown") {
    Chat chat;
    auto error = std::make_exception_ptr(std::logic_error("bad state"));
    CHECK_THROWS_WITH_AS(chat.emit("error", error), "bad state", std::logic_error);
  }
  SUBCASE("a std::error_code is thrown as std::system_error") {
    evnet::EventEmitter<evnet::Event<"error", void(std::error_code)>> emitter;
    const auto ec = std::make_error_code(std::errc::connection_reset);
    try {
      emitter.emit("error", ec);
      FAIL("emit did not throw");
    } catch (const std::system_error& e) {
      CHECK(e.code() == ec);
    }
  }
  SUBCASE("another value is thrown as UnhandledError naming it") {
    evnet::EventEmitter<evnet::Event<"error", void(std::string_view)>> emitter;
    CHECK_THROWS_WITH_AS(emitter.emit("error", "boom"), "Unhandled error. ('boom')",
                         evnet::UnhandledError);
    evnet::EventEmitter<evnet::Event<"error", void(int)>> numeric;
    CHECK_THROWS_WITH_AS(numeric.emit("error", 42), "Unhandled error. (42)", evnet::UnhandledError);
  }
  SUBCASE("an exception object is thrown as itself") {
    evnet::EventEmitter<evnet::Event<"error", void(const std::runtime_error&)>> emitter;
    CHECK_THROWS_WITH_AS(emitter.emit("error", std::runtime_error("as is")), "as is",
                         std::runtime_error);
  }
  SUBCASE("with a listener, the listener gets it and nothing is thrown") {
    Chat chat;
    std::exception_ptr seen;
    chat.on("error", [&](std::exception_ptr e) { seen = e; });
    auto error = std::make_exception_ptr(std::logic_error("handled"));
    CHECK(chat.emit("error", error));
    CHECK(seen == error);
  }
}

TEST_CASE("newListener is emitted before the listener is added, with the event name") {
  Chat chat;
  Log log;
  unsigned countSeen = 99;
  chat.on("newListener", [&](std::string_view name) {
    log.push_back(std::string(name));
    if (name == "leave") countSeen = chat.listenerCount("leave");
  });
  chat.on("leave", [](std::string_view) {});
  chat.once("tick", [] {});
  CHECK(log == Log{"leave", "tick"});
  CHECK(countSeen == 0);
}

TEST_CASE("a listener added by a newListener handler for the same name runs before the new one") {
  Chat chat;
  Log log;
  bool inside = false;
  chat.on("newListener", [&](std::string_view name) {
    if (name != "leave" || inside) return;
    inside = true;
    chat.on("leave", Recorder{log, "from-handler"});
  });
  chat.on("leave", Recorder{log, "original"});
  chat.emit("leave", "x");
  CHECK(log == Log{"from-handler:x", "original:x"});
}

TEST_CASE(
    "removeListener is emitted after removal, also when a once listener fires, and not "
    "when nothing was removed") {
  Chat chat;
  Log log;
  chat.on("removeListener", [&](std::string_view name) {
    log.push_back(std::string(name) + "=" + std::to_string(chat.listenerCount("leave")));
  });
  const auto id = chat.on("leave", [](std::string_view) {});
  chat.once("leave", [&](std::string_view) { log.push_back("once ran"); });
  chat.off("leave", id);
  CHECK(log == Log{"leave=1"});
  chat.emit("leave", "x");
  CHECK(log == Log{"leave=1", "leave=0", "once ran"});
  chat.off("leave", id);
  chat.off("tick", evnet::ListenerId{12345});
  CHECK(log.size() == 3);
}

TEST_CASE("removeAllListeners(name) removes newest first, emitting removeListener for each") {
  Chat chat;
  Log log;
  std::vector<unsigned> remaining;
  chat.on("removeListener", [&](std::string_view name) {
    log.push_back(std::string(name));
    remaining.push_back(chat.listenerCount("leave"));
  });
  chat.on("leave", [](std::string_view) {});
  chat.on("leave", [](std::string_view) {});
  chat.on("leave", [](std::string_view) {});
  chat.removeAllListeners("leave");
  CHECK(log == Log{"leave", "leave", "leave"});
  CHECK(remaining == std::vector<unsigned>{2, 1, 0});
  CHECK(chat.listenerCount("leave") == 0);
}

TEST_CASE("removeAllListeners() removes every name, the removeListener listeners last") {
  Chat chat;
  Log log;
  chat.on("tick", [] {});
  chat.on("removeListener", [&](std::string_view name) { log.push_back(std::string(name)); });
  chat.on("leave", [](std::string_view) {});
  chat.on("removeListener",
          [&](std::string_view name) { log.push_back("2:" + std::string(name)); });
  chat.removeAllListeners();
  // Node: the newest removeListener listener goes first and the older one hears of it; removing
  // the last one is heard by nobody.
  CHECK(log == Log{"tick", "2:tick", "leave", "2:leave", "removeListener"});
  CHECK(chat.eventNames().empty());
}

TEST_CASE("removeAllListeners() with nobody hearing removals drops every listener at once") {
  Chat chat;
  auto alive = std::make_shared<int>(0);
  chat.on("tick", [alive] {});
  chat.on("leave", [alive](std::string_view) {});
  chat.once("leave", [alive](std::string_view) {});
  // A listener whose destructor registers another: the new one is kept, as one added after
  // removeAllListeners() returned would be.
  struct AddsOnDestroy {
    Chat* chat;
    ~AddsOnDestroy() {
      if (chat != nullptr) chat->on("message", [](std::string_view, std::string_view) {});
    }
    explicit AddsOnDestroy(Chat* c) : chat(c) {}
    AddsOnDestroy(AddsOnDestroy&& other) noexcept : chat(std::exchange(other.chat, nullptr)) {}
    void operator()() const {}
  };
  chat.on("tick", AddsOnDestroy(&chat));
  CHECK(alive.use_count() == 4);
  chat.removeAllListeners();
  CHECK(alive.use_count() == 1);  // every listener destroyed
  CHECK(chat.listenerCount("tick") == 0);
  CHECK(chat.listenerCount("leave") == 0);
  CHECK(chat.eventNames() == std::vector<std::string_view>{"message"});
  CHECK_FALSE(chat.emit("tick"));
}

namespace {
// An emitter with 40 names, "e00" to "e39": more than the 32 that one word of the set of names
// with listeners holds.
template <std::size_t I>
struct ManyName {
  static constexpr char value[4] = {'e', static_cast<char>('0' + I / 10),
                                    static_cast<char>('0' + I % 10), '\0'};
};
template <std::size_t... I>
auto manyEvents(std::index_sequence<I...>)
    -> evnet::EventEmitter<evnet::Event<evnet::FixedString<4>(ManyName<I>::value), void()>...>;
using Many = decltype(manyEvents(std::make_index_sequence<40>{}));
}  // namespace

TEST_CASE("an emitter of more than 32 names drops the listeners of every one of them") {
  auto alive = std::make_shared<int>(0);
  {
    Many many;
    int calls = 0;
    const auto counter = [&] { return [alive, &calls] { ++calls; }; };
    many.on("e00", counter());
    many.on("e31", counter());
    many.on("e32", counter());
    many.on("e39", counter());
    CHECK(many.eventNames() == std::vector<std::string_view>{"e00", "e31", "e32", "e39"});
    // A listener removed while an emit runs waits for its end, then goes.
    many.on("e35", [&many, alive] { many.removeAllListeners("e35"); });
    CHECK(many.emit("e35"));
    CHECK(many.listenerCount("e35") == 0);
    CHECK(alive.use_count() == 5);
    CHECK(many.emit("e32"));
    CHECK(calls == 1);
    many.removeAllListeners();
    CHECK(alive.use_count() == 1);
    CHECK(many.eventNames().empty());
    CHECK_FALSE(many.emit("e39"));
    many.on("e33", [alive] {});
    many.on("e38", [alive] {});
    CHECK(alive.use_count() == 3);
  }
  CHECK(alive.use_count() == 1);  // the destructor released e33 and e38
}

TEST_CASE("listeners that a listener's destructor adds while the emitter goes are released") {
  auto alive = std::make_shared<int>(0);
  struct AddsOnDestroy {
    Chat* chat;
    std::shared_ptr<int> alive;
    AddsOnDestroy(Chat* c, std::shared_ptr<int> a) : chat(c), alive(std::move(a)) {}
    AddsOnDestroy(AddsOnDestroy&& other) noexcept
        : chat(std::exchange(other.chat, nullptr)), alive(std::move(other.alive)) {}
    ~AddsOnDestroy() {
      if (chat != nullptr) chat->on("error", [kept = alive](std::exception_ptr) {});
    }
    void operator()(std::string_view, std::string_view) const {}
  };
  {
    Chat chat;
    chat.on("message", AddsOnDestroy(&chat, alive));  // adds to "error", a later name
    CHECK(alive.use_count() == 2);
  }
  CHECK(alive.use_count() == 1);
}

TEST_CASE("eventNames lists names with listeners in order of first registration") {
  Chat chat;
  CHECK(chat.eventNames().empty());
  const auto tick = chat.on("tick", [] {});
  chat.on("leave", [](std::string_view) {});
  chat.on("tick", [] {});
  CHECK(chat.eventNames() == std::vector<std::string_view>{"tick", "leave"});
  chat.removeAllListeners("tick");
  CHECK(chat.eventNames() == std::vector<std::string_view>{"leave"});
  chat.on("tick", [] {});
  CHECK(chat.eventNames() == std::vector<std::string_view>{"leave", "tick"});
  chat.off("tick", tick);  // already gone: no change
  CHECK(chat.eventNames().size() == 2);
}

namespace {
std::vector<evnet::MaxListenersExceededWarning> warnings;
std::vector<std::string> warningTexts;
void collectWarning(const evnet::MaxListenersExceededWarning& warning) {
  warnings.push_back(warning);
  warningTexts.push_back(warning.message());
}
struct WarningCapture {
  evnet::WarningHandler previous = evnet::setWarningHandler(&collectWarning);
  WarningCapture() {
    warnings.clear();
    warningTexts.clear();
  }
  ~WarningCapture() { evnet::setWarningHandler(previous); }
};
}  // namespace

TEST_CASE(
    "max listeners: the default is 10, exceeding it adds the listener and warns once per "
    "event name") {
  WarningCapture capture;
  Chat chat;
  CHECK(chat.getMaxListeners() == 10);
  for (int i = 0; i < 10; ++i) chat.on("tick", [] {});
  CHECK(warnings.empty());
  chat.on("tick", [] {});
  chat.on("tick", [] {});
  CHECK(chat.listenerCount("tick") == 12);
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].eventName == "tick");
  CHECK(warnings[0].count == 11);
  CHECK(warnings[0].maxListeners == 10);
  CHECK(warnings[0].emitter == &chat);
  CHECK(warningTexts[0] ==
        "Possible EventEmitter memory leak detected. 11 tick listeners added to [EventEmitter]. "
        "MaxListeners is 10. Use emitter.setMaxListeners() to increase limit");
  for (int i = 0; i < 11; ++i) chat.on("leave", [](std::string_view) {});
  CHECK(warnings.size() == 2);
  chat.removeAllListeners("tick");
  for (int i = 0; i < 11; ++i) chat.on("tick", [] {});
  CHECK(warnings.size() == 3);  // the list emptied and refilled: warned again
}

TEST_CASE(
    "max listeners: setMaxListeners overrides per emitter, 0 means unlimited, and the "
    "process-wide default is read when a listener is added") {
  WarningCapture capture;
  Chat limited;
  limited.setMaxListeners(2).setMaxListeners(1);
  CHECK(limited.getMaxListeners() == 1);
  limited.on("tick", [] {});
  limited.on("tick", [] {});
  CHECK(warnings.size() == 1);

  Chat unlimited;
  unlimited.setMaxListeners(0);
  for (int i = 0; i < 100; ++i) unlimited.on("tick", [] {});
  CHECK(warnings.size() == 1);

  Chat byDefault;
  const unsigned saved = evnet::defaultMaxListeners;
  evnet::defaultMaxListeners = 3;
  CHECK(byDefault.getMaxListeners() == 3);
  for (int i = 0; i < 4; ++i) byDefault.on("tick", [] {});
  evnet::defaultMaxListeners = saved;
  CHECK(warnings.size() == 2);
}

TEST_CASE("the default warning handler prints one line on stderr naming the event and count") {
  std::fflush(stderr);
  std::FILE* capture = std::tmpfile();
  REQUIRE(capture != nullptr);
  const int savedStderr = ::dup(2);
  ::dup2(::fileno(capture), 2);
  {
    Chat chat;
    chat.setMaxListeners(1);
    chat.on("leave", [](std::string_view) {});
    chat.on("leave", [](std::string_view) {});
  }
  std::fflush(stderr);
  ::dup2(savedStderr, 2);
  ::close(savedStderr);
  std::rewind(capture);
  char line[512] = {};
  REQUIRE(std::fgets(line, sizeof line, capture) != nullptr);
  std::fclose(capture);
  CHECK(std::string_view(line) ==
        "(evnet) MaxListenersExceededWarning: Possible EventEmitter memory leak detected. 2 leave "
        "listeners added to [EventEmitter]. MaxListeners is 1. Use emitter.setMaxListeners() to "
        "increase limit\n");
}

TEST_CASE("emitting from inside a listener works to any reasonable depth") {
  Chat chat;
  int deepest = 0;
  chat.on("leave", [&](std::string_view who) {
    const int level = std::stoi(std::string(who));
    deepest = std::max(deepest, level);
    if (level < 1000) chat.emit("leave", std::to_string(level + 1));
  });
  chat.emit("leave", "0");
  CHECK(deepest == 1000);
}

TEST_CASE("ListenerId is a small regular value type") {
  static_assert(std::is_nothrow_default_constructible_v<evnet::ListenerId>);
  static_assert(std::is_trivially_copyable_v<evnet::ListenerId>);
  static_assert(std::totally_ordered<evnet::ListenerId>);
  static_assert(sizeof(evnet::ListenerId) == sizeof(std::uint64_t));
  Chat chat;
  const evnet::ListenerId a = chat.on("tick", [] {});
  const evnet::ListenerId b = chat.on("tick", [] {});
  evnet::ListenerId copy = a;
  CHECK(copy == a);
  CHECK(a != b);
  CHECK(a < b);
  CHECK_FALSE(evnet::ListenerId{});
  CHECK(a);
}

TEST_CASE("a Subscription removes its listener when destroyed") {
  Chat chat;
  int calls = 0;
  {
    evnet::Subscription sub = chat.subscribe("tick", [&] { ++calls; });
    chat.emit("tick");
    CHECK(chat.listenerCount("tick") == 1);
    evnet::Subscription moved = std::move(sub);
    CHECK_FALSE(sub);
    CHECK(moved);
  }
  CHECK(chat.listenerCount("tick") == 0);
  chat.emit("tick");
  CHECK(calls == 1);

  evnet::Subscription kept = chat.subscribe("tick", [&] { ++calls; });
  kept.release();
  { evnet::Subscription dropped = std::move(kept); }
  CHECK(chat.listenerCount("tick") == 1);
}

TEST_CASE("the template forms on<\"name\"> and emit<\"name\"> behave like the string forms") {
  Chat chat;
  Log log;
  chat.on<"leave">(Recorder{log, "t"});
  chat.once<"leave">(Recorder{log, "once"});
  CHECK(chat.emit<"leave">("x"));
  CHECK(chat.emit<"leave">("y"));
  CHECK(log == Log{"t:x", "once:x", "t:y"});
}

namespace {
// A class becomes an emitter by deriving from EventEmitter, as net::Server does.
class Door : public evnet::EventEmitter<evnet::Event<"open", void(int floor)>> {
 public:
  void openAt(int floor) { emit("open", floor); }
};
}  // namespace

TEST_CASE("a class derives from EventEmitter to become an emitter") {
  Door door;
  int floor = -1;
  door.on("open", [&](int f) { floor = f; });
  door.openAt(3);
  CHECK(floor == 3);
}

TEST_CASE(
    "listeners may take parameters by const reference or by convertible type and may "
    "return a value") {
  evnet::EventEmitter<evnet::Event<"data", void(const std::string&)>> emitter;
  std::string seen;
  emitter.on("data", [&](std::string_view text) { seen = text; });
  emitter.on("data", [](const std::string& text) { return text.size(); });
  emitter.emit("data", std::string("payload"));
  CHECK(seen == "payload");
}

TEST_CASE("a mutable listener keeps its own state between emits") {
  Chat chat;
  int last = 0;
  chat.on("tick", [count = 0, &last]() mutable { last = ++count; });
  chat.emit("tick");
  chat.emit("tick");
  CHECK(last == 2);
}

TEST_CASE("listeners are destroyed when removed and when the emitter is destroyed") {
  auto token = std::make_shared<int>(0);
  {
    Chat chat;
    const auto id = chat.on("tick", [token] {});
    chat.on("tick", [token] {});
    CHECK(token.use_count() == 3);
    chat.off("tick", id);
    CHECK(token.use_count() == 2);
  }
  CHECK(token.use_count() == 1);
}

TEST_CASE("a listener removed during an emit is destroyed once the emit ends") {
  auto token = std::make_shared<int>(0);
  Chat chat;
  evnet::ListenerId id;
  long countInside = 0;
  id = chat.on("tick", [&, token] {
    chat.off("tick", id);
    countInside = token.use_count();
  });
  chat.emit("tick");
  CHECK(countInside == 2);
  CHECK(token.use_count() == 1);
}
