// Emitter micro-benchmarks: evnet's emit against the baselines the emitter issue names, measured
// in the same process, and printed as ratios (run: build/release/benchmarks/emitter_benchmark).
#include <evnet/event_emitter.hpp>

#if EVNET_CATCH2_MAJOR >= 3
#include <catch2/benchmark/catch_benchmark.hpp>
#include <catch2/catch_test_macros.hpp>
#else
#define CATCH_CONFIG_MAIN
#define CATCH_CONFIG_ENABLE_BENCHMARKING
#include <catch2/catch.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

namespace {

using Emitter = evnet::EventEmitter<evnet::Event<"data", void(int)>>;

// Listeners are added out of line so the compiler cannot see through the call.
[[gnu::noinline]] void addListeners(Emitter& emitter, long& sum, int n) {
  for (int i = 0; i < n; ++i) emitter.on("data", [&sum](int x) { sum += x; });
}
[[gnu::noinline]] void addFunctions(std::vector<std::function<void(int)>>& fns, long& sum, int n) {
  for (int i = 0; i < n; ++i) fns.emplace_back([&sum](int x) { sum += x; });
}

// Nanoseconds per call of body(i), best of several runs (the least disturbed one).
template <class Body>
double nsPerCall(Body&& body) {
  constexpr int kCalls = 2'000'000;
  double best = 1e9;
  for (int run = 0; run < 7; ++run) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kCalls; ++i) body(i);
    const std::chrono::duration<double, std::nano> elapsed =
        std::chrono::steady_clock::now() - start;
    best = std::min(best, elapsed.count() / kCalls);
  }
  return best;
}

}  // namespace

TEST_CASE("emit against std::function, as ratios") {
  long sum = 0;
  for (int n : {1, 5}) {
    Emitter emitter;
    addListeners(emitter, sum, n);
    std::vector<std::function<void(int)>> fns;
    addFunctions(fns, sum, n);
    double baseline = 0;
    double evnetNs = 0;
    // Alternate the two a few times so both see the same machine state.
    for (int round = 0; round < 3; ++round) {
      if (n == 1)
        baseline += nsPerCall([&](int i) { fns.front()(i); });  // a direct std::function call
      else
        baseline += nsPerCall([&](int i) {
          for (auto& f : fns) f(i);
        });
      evnetNs += nsPerCall([&](int i) { emitter.emit("data", i); });
    }
    std::printf("emit, %d listener%s: %.2f ns; %s: %.2f ns; ratio %.2fx (target <= 1.5x)\n", n,
                n == 1 ? "" : "s", evnetNs / 3,
                n == 1 ? "std::function call" : "loop over vector<std::function>", baseline / 3,
                evnetNs / baseline);
  }
  Emitter emitter;
  addListeners(emitter, sum, 100);
  const double onOff = nsPerCall([&](int) {
    const auto id = emitter.on("data", [&sum](int x) { sum += x; });
    emitter.off("data", id);
  });
  std::printf("on + off of one listener next to 100 others: %.2f ns\n", onOff);
  CHECK(sum != 0);
}

TEST_CASE("emitter micro-benchmarks") {
  long sum = 0;
  Emitter one;
  addListeners(one, sum, 1);
  Emitter five;
  addListeners(five, sum, 5);
  std::vector<std::function<void(int)>> fn1;
  addFunctions(fn1, sum, 1);
  std::vector<std::function<void(int)>> fn5;
  addFunctions(fn5, sum, 5);
  int i = 0;

  BENCHMARK("std::function call") { fn1[0](++i); };
  BENCHMARK("emit, 1 listener") { return one.emit("data", ++i); };
  BENCHMARK("loop over 5 std::function") {
    ++i;
    for (auto& f : fn5) f(i);
  };
  BENCHMARK("emit, 5 listeners") { return five.emit("data", ++i); };
  BENCHMARK("on + off") {
    const auto id = one.on("data", [&sum](int x) { sum += x; });
    one.off("data", id);
  };
  CHECK(sum != 0);
}
