// The threading rule: an emitter belongs to the thread that runs its loop; other threads emit by
// posting to the loop's executor. Run under ThreadSanitizer in CI.
#include <evnet/event_emitter.hpp>

#include <doctest/doctest.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include <thread>
#include <vector>

TEST_CASE("threads emit on an emitter by posting to the loop that owns it") {
  using Counter = evnet::EventEmitter<evnet::Event<"add", void(int)>>;
  asio::io_context loop;
  auto work = asio::make_work_guard(loop);
  Counter counter;
  long total = 0;
  int calls = 0;
  counter.on("add", [&](int n) {
    total += n;
    ++calls;
  });
  std::thread loopThread([&] { loop.run(); });

  constexpr int kThreads = 4;
  constexpr int kEmitsPerThread = 2000;
  std::vector<std::thread> producers;
  for (int t = 0; t < kThreads; ++t)
    producers.emplace_back([&, t] {
      for (int i = 0; i < kEmitsPerThread; ++i)
        asio::post(loop, [&counter, t] { counter.emit("add", t + 1); });
    });
  for (auto& producer : producers) producer.join();
  work.reset();
  loopThread.join();

  CHECK(calls == kThreads * kEmitsPerThread);
  CHECK(total == kEmitsPerThread * (1 + 2 + 3 + 4));
}
