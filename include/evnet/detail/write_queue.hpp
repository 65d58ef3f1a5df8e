// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_WRITE_QUEUE_HPP
#define EVNET_DETAIL_WRITE_QUEUE_HPP

#include "evnet/detail/config.hpp"

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace evnet::detail {

// Bytes waiting to be written: evnet's own copies (small writes coalesce into one buffer that
// is kept for reuse) and buffers moved in by the caller, sent in order with gather writes.
// A queued byte is never copied again: a copy buffer that is full is not grown (which would
// move everything in it, on the loop thread, for a peer that does not read) but followed by a
// new one, twice as large up to 64 KiB.
class WriteQueue {
 public:
  using Owned = std::variant<std::string, std::vector<char>, std::vector<unsigned char>,
                             std::vector<std::byte>>;

  bool empty() const noexcept { return head_ == chunks_.size(); }

  // Queued bytes keep their address until sent (io_uring sends them from there while more is
  // queued): no chunk keeps its bytes inside itself (a short std::string does), where growing
  // chunks_ would move them.
  void keepAddresses() noexcept { stable_ = true; }

  // Empty writes queue nothing: an empty chunk would make flush() send zero bytes forever.
  void copy(const char* data, std::size_t size);
  void own(Owned&& bytes);

  // Fills iov with the unsent bytes, at most max entries; returns how many.
  int gather(iovec* iov, int max) const noexcept;
  void consume(std::size_t n) noexcept;

  void clear() noexcept {
    chunks_.clear();
    head_ = offset_ = 0;
  }

 private:
  struct Chunk {
    Owned bytes;
    bool copy;
    std::span<const char> view() const noexcept;
  };

  // Everything is sent: keep one copy buffer (unless it grew large) so the steady state of a
  // connection does not allocate.
  void reset() noexcept;

  static constexpr std::size_t kChunk = 64 * 1024;  // the largest copy buffer grown to, or kept
  static constexpr std::size_t kMinStable = 64;     // above any std::string's inline capacity

  std::vector<Chunk> chunks_;
  std::size_t head_ = 0;    // first chunk with unsent bytes
  std::size_t offset_ = 0;  // bytes of chunks_[head_] already sent
  bool stable_ = false;     // see keepAddresses()
};

}  // namespace evnet::detail

#ifndef EVNET_SEPARATE_COMPILATION
#include "evnet/detail/impl/write_queue.ipp"
#endif

#endif  // EVNET_DETAIL_WRITE_QUEUE_HPP
