// emit allocates nothing: this program counts every operator new.
#include <evnet/event_emitter.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "counting_new.hpp"

namespace {
using Emitter = evnet::EventEmitter<evnet::Event<"data", void(int, std::string_view)>,
                                    evnet::Event<"error", void(std::exception_ptr)>>;
using Log = std::vector<std::string>;
}  // namespace

TEST_CASE("the allocation counter sees allocations") {
  // A call of operator new, not a new-expression: the standard lets a compiler omit the
  // allocation of `delete new int(1)` (GCC does at -O2), but not a function call.
  void* p = nullptr;
  CHECK(allocationsDuring([&] { p = ::operator new(sizeof(int)); }) == 1);
  ::operator delete(p);
}

TEST_CASE("emit allocates nothing with one listener and with five") {
  for (int listeners : {1, 5}) {
    CAPTURE(listeners);
    Emitter emitter;
    long sum = 0;
    const std::string capture = "a capture larger than any small buffer, held by value";
    for (int i = 0; i < listeners; ++i)
      emitter.on("data", [&sum, capture](int n, std::string_view s) {
        sum += n + static_cast<long>(s.size() + capture.size());
      });
    CHECK(allocationsDuring([&] {
            for (int i = 0; i < 1000; ++i) emitter.emit("data", i, "payload");
          }) == 0);
    CHECK(sum > 0);
  }
}

TEST_CASE("once listeners and removal during emit allocate nothing once registered") {
  Emitter emitter;
  int calls = 0;
  emitter.on("data", [&](int, std::string_view) { ++calls; });
  evnet::ListenerId self;
  self = emitter.on("data", [&](int, std::string_view) { emitter.off("data", self); });
  emitter.once("data", [&](int, std::string_view) { ++calls; });
  CHECK(allocationsDuring([&] {
          emitter.emit("data", 1, "x");
          emitter.emit("data", 2, "y");
        }) == 0);
  CHECK(calls == 3);
}

TEST_CASE("a name's first listener costs one allocation: its list and node share it") {
  Emitter emitter;
  Log log;
  evnet::ListenerId first;
  CHECK(allocationsDuring([&] {
          first = emitter.on("data", [&](int, std::string_view) { log.push_back("first"); });
        }) == 1);
  // The second: its node, and room for more nodes than the one the list holds in place.
  evnet::ListenerId second;
  CHECK(allocationsDuring([&] {
          second = emitter.on("data", [&](int, std::string_view) { log.push_back("second"); });
        }) == 2);
  // The first, whose node lives in the list's block, goes while the second stays; the list goes
  // with the second; the next first listener makes a new list.
  emitter.off("data", first);
  emitter.emit("data", 1, "x");
  emitter.off("data", second);
  CHECK(emitter.listenerCount("data") == 0);
  CHECK(allocationsDuring([&] {
          emitter.once("data", [&](int, std::string_view) { log.push_back("once"); });
        }) == 1);
  emitter.emit("data", 2, "y");
  emitter.emit("data", 3, "z");
  CHECK(log == Log{"second", "once"});
}

TEST_CASE("an over-aligned listener gets a block of its own, and is called and destroyed") {
  struct alignas(256) Wide {
    int* calls;
    int* misaligned;
    void operator()(int, std::string_view) const {
      ++*calls;
      if (reinterpret_cast<std::uintptr_t>(this) % alignof(Wide) != 0) ++*misaligned;
    }
  };
  Emitter emitter;
  int calls = 0;
  int misaligned = 0;
  // Its list and itself: two blocks, where a name's first listener otherwise takes one.
  CHECK(allocationsDuring([&] { emitter.on("data", Wide{&calls, &misaligned}); }) == 2);
  emitter.on("data", Wide{&calls, &misaligned});
  emitter.emit("data", 1, "x");
  CHECK(calls == 2);
  CHECK(misaligned == 0);
}
