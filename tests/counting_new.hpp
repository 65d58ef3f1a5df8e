// Replaces the global operator new/delete with versions that count allocations. Include it from
// exactly one translation unit of a test program (the replacement is program-wide).
#ifndef EVNET_TESTS_COUNTING_NEW_HPP
#define EVNET_TESTS_COUNTING_NEW_HPP

#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

inline std::atomic<long> allocations{0};
// Allocations of at least largeFrom bytes are counted in largeAllocations too.
inline std::atomic<std::size_t> largeFrom{SIZE_MAX};
inline std::atomic<long> largeAllocations{0};
// The bytes that operator new gave out and operator delete has not taken back (malloc's usable
// sizes: the same for a block at both ends).
inline std::atomic<long> liveBytes{0};
// operator delete counts the times it frees `watched` in `watchedFrees`.
inline std::atomic<const void*> watched{nullptr};
inline std::atomic<int> watchedFrees{0};

[[gnu::noinline]] inline void countedFree(void* p) noexcept {
  if (p != nullptr && p == watched.load(std::memory_order_relaxed))
    watchedFrees.fetch_add(1, std::memory_order_relaxed);
  if (p != nullptr)
    liveBytes.fetch_sub(static_cast<long>(::malloc_usable_size(p)), std::memory_order_relaxed);
  std::free(p);
}

// Not inlined: where GCC sees both malloc() and operator delete, or operator new and free(), it
// takes them for a mismatch (-Wmismatched-new-delete, in Release builds).
[[gnu::noinline]] void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (size >= largeFrom.load(std::memory_order_relaxed))
    largeAllocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) {
    liveBytes.fetch_add(static_cast<long>(::malloc_usable_size(p)), std::memory_order_relaxed);
    return p;
  }
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { countedFree(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { countedFree(p); }
// The array forms too: under AddressSanitizer they would otherwise go to its own allocator,
// uncounted (without it, the standard library's call the ones above).
[[gnu::noinline]] void* operator new[](std::size_t size) { return ::operator new(size); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { countedFree(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { countedFree(p); }
// And the over-aligned forms (for types with alignas beyond malloc's 16 bytes).
[[gnu::noinline]] void* operator new(std::size_t size, std::align_val_t align) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  const auto alignment = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment)) {
    liveBytes.fetch_add(static_cast<long>(::malloc_usable_size(p)), std::memory_order_relaxed);
    return p;
  }
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p, std::align_val_t) noexcept { countedFree(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  countedFree(p);
}

// The number of allocations made while f runs.
long allocationsDuring(auto&& f) {
  const long before = allocations.load();
  f();
  return allocations.load() - before;
}

#endif  // EVNET_TESTS_COUNTING_NEW_HPP
