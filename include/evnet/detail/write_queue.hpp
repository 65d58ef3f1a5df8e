// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_WRITE_QUEUE_HPP
#define EVNET_DETAIL_WRITE_QUEUE_HPP

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

// GCC 12 at -O3 warns that the moved variant "may be used uninitialized" when copy() or own() is
// inlined into some callers (a false positive of its std::variant analysis); a user's -Werror build
// would fail on it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
  // Empty writes queue nothing: an empty chunk would make flush() send zero bytes forever.
  void copy(const char* data, std::size_t size) {
    if (size == 0) return;
    if (empty() && !chunks_.empty())
      head_ = chunks_.size() - 1;  // an empty queue holds only the kept copy buffer: reuse it
    std::string* tail =
        empty() || !chunks_.back().copy ? nullptr : &std::get<std::string>(chunks_.back().bytes);
    if (tail == nullptr || tail->capacity() - tail->size() < size) {
      std::string next;
      next.reserve(
          std::max({size, stable_ ? kMinStable : std::size_t{0},
                    tail == nullptr ? std::size_t{0} : std::min(2 * tail->capacity(), kChunk)}));
      chunks_.push_back(Chunk{std::move(next), true});
      tail = &std::get<std::string>(chunks_.back().bytes);
    }
    tail->append(data, size);
  }
  void own(Owned&& bytes) {
    if (std::visit([](const auto& b) { return b.empty(); }, bytes)) return;
    if (const auto* text = std::get_if<std::string>(&bytes);
        stable_ && text != nullptr && text->capacity() < kMinStable)
      return copy(text->data(), text->size());  // maybe held inside the string object
    chunks_.push_back(Chunk{std::move(bytes), false});
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  // Fills iov with the unsent bytes, at most max entries; returns how many.
  int gather(iovec* iov, int max) const noexcept {
    int n = 0;
    for (std::size_t i = head_; i < chunks_.size() && n < max; ++i) {
      const std::span<const char> bytes = chunks_[i].view();
      const std::size_t skip = i == head_ ? offset_ : 0;
      iov[n++] = {const_cast<char*>(bytes.data() + skip), bytes.size() - skip};
    }
    return n;
  }

  void consume(std::size_t n) noexcept {
    while (n > 0) {
      const std::size_t left = chunks_[head_].view().size() - offset_;
      if (n < left) {
        offset_ += n;
        return;
      }
      n -= left;
      offset_ = 0;
      ++head_;
    }
    if (empty()) reset();
  }

  void clear() noexcept {
    chunks_.clear();
    head_ = offset_ = 0;
  }

 private:
  struct Chunk {
    Owned bytes;
    bool copy;
    std::span<const char> view() const noexcept {
      if (const auto* text = std::get_if<std::string>(&bytes)) return {text->data(), text->size()};
      return std::visit(
          [](const auto& b) {
            return std::span<const char>(reinterpret_cast<const char*>(b.data()), b.size());
          },
          bytes);
    }
  };

  // Everything is sent: keep one copy buffer (unless it grew large) so the steady state of a
  // connection does not allocate.
  void reset() noexcept {
    const bool keep =
        chunks_.back().copy && std::get<std::string>(chunks_.back().bytes).capacity() <= kChunk;
    if (keep) {
      if (chunks_.size() > 1) {
        std::swap(chunks_.front(), chunks_.back());
        chunks_.resize(1);
      }
      std::get<std::string>(chunks_.front().bytes).clear();
      head_ = 1;
    } else {
      chunks_.clear();
      head_ = 0;
    }
    offset_ = 0;
  }

  static constexpr std::size_t kChunk = 64 * 1024;  // the largest copy buffer grown to, or kept
  static constexpr std::size_t kMinStable = 64;     // above any std::string's inline capacity

  std::vector<Chunk> chunks_;
  std::size_t head_ = 0;    // first chunk with unsent bytes
  std::size_t offset_ = 0;  // bytes of chunks_[head_] already sent
  bool stable_ = false;     // see keepAddresses()
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_WRITE_QUEUE_HPP
