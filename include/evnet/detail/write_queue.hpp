// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_WRITE_QUEUE_HPP
#define EVNET_DETAIL_WRITE_QUEUE_HPP

#include "evnet/detail/block_cache.hpp"
#include "evnet/detail/config.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace evnet::detail {

// Bytes waiting to be written, sent in order with gather writes: evnet's own copies (small
// writes coalesce into one block) and buffers moved in by the caller. A singly linked list of
// blocks, each allocated once with its header, that never move: a queued byte is never copied
// again, and keeps its address until sent (io_uring sends it from there while more is queued).
// A full copy block is not grown but followed by a new one, twice as large up to 64 KiB (a
// larger write gets a block of its own size). When everything is sent, the smallest block (128
// bytes) is kept for the next write, and larger ones go back to the thread's cache of blocks: the
// steady state of a connection does not allocate, its first write allocates once, and a
// connection that queued a burst and went idle holds no more than one that did not.
class WriteQueue {
 public:
  using Owned = std::variant<std::string, std::vector<char>, std::vector<unsigned char>,
                             std::vector<std::byte>>;

  WriteQueue() noexcept = default;
  // Movable, not assignable: a destroyed socket's queue moves to its send in flight.
  WriteQueue(WriteQueue&& other) noexcept
      : head_(std::exchange(other.head_, nullptr)),
        tail_(std::exchange(other.tail_, nullptr)),
        spare_(std::exchange(other.spare_, nullptr)),
        offset_(std::exchange(other.offset_, 0)) {}
  ~WriteQueue() { clear(); }

  bool empty() const noexcept { return head_ == nullptr; }

  // Empty writes queue nothing: an empty block would make flush() send zero bytes forever.
  void copy(const char* data, std::size_t size);
  void own(Owned&& bytes);

  // Fills iov with the unsent bytes, at most max entries; returns how many.
  int gather(iovec* iov, int max) const noexcept;
  void consume(std::size_t n) noexcept;

  // Drops everything, the kept block too.
  void clear() noexcept;

 private:
  // A block's header. A copy block's bytes follow it (capacity of them); an owned block is an
  // OwnedBlock (capacity 0), whose bytes are those of the buffer it holds.
  struct Block {
    Block* next = nullptr;
    const char* data = nullptr;
    std::size_t size = 0;
    std::size_t capacity = 0;
    char* room() noexcept { return reinterpret_cast<char*>(this + 1); }
  };
  struct OwnedBlock : Block {
    explicit OwnedBlock(Owned&& b) noexcept : bytes(std::move(b)) {}
    Owned bytes;
  };

  static std::span<const char> viewOf(const Owned& bytes) noexcept;
  static Block* makeCopyBlock(std::size_t k, std::size_t size);
  static void destroy(Block* block) noexcept;
  void append(Block* block) noexcept {
    (tail_ != nullptr ? tail_->next : head_) = block;
    tail_ = block;
  }
  // A sent block: kept for the next copy if it is the smallest copy block and none is kept yet.
  void retire(Block* block) noexcept;

  // Copy blocks come in kClasses sizes: class 0 holds kMinCopy bytes (128 from malloc, its
  // header included), class k > 0 holds 128 << k (256 bytes to 64 KiB).
  static constexpr std::size_t kClasses = 10;
  static constexpr std::size_t kMinCopy = 128 - sizeof(Block) - 8;
  static constexpr std::size_t capacityOf(std::size_t k) noexcept {
    return k == 0 ? kMinCopy : std::size_t{128} << k;
  }
  // The class of a copy block's capacity; kClasses for a block of a write's own size.
  static constexpr std::size_t classOf(std::size_t capacity) noexcept {
    if (capacity == kMinCopy) return 0;
    if (!std::has_single_bit(capacity) || capacity < 256 || capacity > capacityOf(kClasses - 1))
      return kClasses;
    return static_cast<std::size_t>(std::bit_width(capacity)) - 8;
  }
  using CopyBlocks = SizedBlockCache<kClasses>;

  Block* head_ = nullptr;  // null when empty
  Block* tail_ = nullptr;
  Block* spare_ = nullptr;  // a kept copy block, empty
  std::size_t offset_ = 0;  // bytes of head_ already sent
};

}  // namespace evnet::detail

#ifndef EVNET_SEPARATE_COMPILATION
#include "evnet/detail/impl/write_queue.ipp"
#endif

#endif  // EVNET_DETAIL_WRITE_QUEUE_HPP
