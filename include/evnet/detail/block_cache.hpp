// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_BLOCK_CACHE_HPP
#define EVNET_DETAIL_BLOCK_CACHE_HPP

#include <algorithm>
#include <cstddef>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define EVNET_DETAIL_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EVNET_DETAIL_SANITIZED 1
#endif
#endif

namespace evnet::detail {

#ifdef EVNET_DETAIL_SANITIZED
inline constexpr bool kAddressSanitized = true;  // built with AddressSanitizer
#undef EVNET_DETAIL_SANITIZED
#else
inline constexpr bool kAddressSanitized = false;
#endif

// The freed blocks one thread keeps for a cache: Lists lists, each of blocks of one size and at
// most PerList long; Owner, the cache, makes them its own. A thread's blocks are freed when it
// exits; blocks freed after that go to operator delete. Under AddressSanitizer nothing is kept,
// so that a use after free is still caught.
template <class Owner, std::size_t Lists, std::size_t PerList>
class ThreadBlocks {
 public:
  // A kept block of list k, else a new one of size bytes.
  static void* allocate(std::size_t k, std::size_t size) {
    if constexpr (!kAddressSanitized) {
      State& state = local();
      if (state.count[k] != 0) return state.blocks[k][--state.count[k]];
    }
    return ::operator new(size);
  }

  // Keeps block in list k if that holds fewer than limit (at most PerList), else frees it.
  static void deallocate(std::size_t k, std::size_t limit, void* block) noexcept {
    if constexpr (!kAddressSanitized) {
      State& state = local();
      if (state.count[k] < std::min(limit, PerList) && !state.closed) {
        state.blocks[k][state.count[k]++] = block;
        return;
      }
    }
    ::operator delete(block);
  }

 private:
  struct State {  // trivially destructible: usable until the thread's very end
    void* blocks[Lists][PerList];
    std::size_t count[Lists];
    bool closed;
  };
  struct Drain {
    State& state;
    ~Drain() {
      for (std::size_t k = 0; k < Lists; ++k)
        while (state.count[k] != 0) ::operator delete(state.blocks[k][--state.count[k]]);
      state.closed = true;
    }
  };

  static State& local() noexcept {
    thread_local State state{};
    thread_local Drain drain{state};
    return state;
  }
};

// Blocks of Size bytes kept per thread for reuse, at most Count of them. Every accepted
// connection allocates its socket and its first write's block, and frees both when it closes
// (on io_uring, a connection's send state too, for each burst of sends);
// when tens of connections close at once, glibc's per-thread cache (7 blocks per size) is full
// and the rest goes the long way through free() and malloc().
template <std::size_t Size, std::size_t Count = 64>
class BlockCache {
 public:
  static void* allocate() { return Blocks::allocate(0, Size); }
  static void deallocate(void* block) noexcept { Blocks::deallocate(0, Count, block); }

 private:
  using Blocks = ThreadBlocks<BlockCache, 1, Count>;
};

// Blocks of Classes sizes kept per thread for reuse: class k's blocks all have the same size,
// which the caller gives with each call; at most 64 blocks and MaxBytes bytes of a class are
// kept (at least one block). For a write queue's blocks, which grow by doubling: a connection
// that queued a burst gives them back to its thread when they are sent.
template <std::size_t Classes, std::size_t MaxBytes = 64 * 1024>
class SizedBlockCache {
 public:
  static void* allocate(std::size_t k, std::size_t size) { return Blocks::allocate(k, size); }
  static void deallocate(std::size_t k, std::size_t size, void* block) noexcept {
    Blocks::deallocate(k, size >= MaxBytes ? 1 : MaxBytes / size, block);
  }

 private:
  using Blocks = ThreadBlocks<SizedBlockCache, Classes, 64>;
};

// An allocator whose single objects come from a BlockCache (arrays, and over-aligned types, from
// operator new): for std::allocate_shared of an object made per connection.
template <class T>
struct CachingAllocator {
  using value_type = T;

  CachingAllocator() noexcept = default;
  template <class U>
  CachingAllocator(const CachingAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    if (n == 1 && alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__)
      return static_cast<T*>(BlockCache<sizeof(T)>::allocate());
    return static_cast<T*>(::operator new(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    if (n == 1 && alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__)
      return BlockCache<sizeof(T)>::deallocate(p);
    ::operator delete(p);
  }

  template <class U>
  bool operator==(const CachingAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_BLOCK_CACHE_HPP
