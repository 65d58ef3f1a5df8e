// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_IMPL_WRITE_QUEUE_IPP
#define EVNET_DETAIL_IMPL_WRITE_QUEUE_IPP

// WriteQueue's functions that are not inline: included by write_queue.hpp, or in compiled mode by
// <evnet/impl/src.hpp> only.
#include "evnet/detail/write_queue.hpp"

namespace evnet::detail {

// GCC 12 at -O3 warns that the moved variant "may be used uninitialized" when copy() or own() is
// inlined into some callers (a false positive of its std::variant analysis); a user's -Werror build
// would fail on it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
EVNET_DECL void WriteQueue::copy(const char* data, std::size_t size) {
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

EVNET_DECL void WriteQueue::own(Owned&& bytes) {
  if (std::visit([](const auto& b) { return b.empty(); }, bytes)) return;
  if (const auto* text = std::get_if<std::string>(&bytes);
      stable_ && text != nullptr && text->capacity() < kMinStable)
    return copy(text->data(), text->size());  // maybe held inside the string object
  chunks_.push_back(Chunk{std::move(bytes), false});
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

EVNET_DECL int WriteQueue::gather(iovec* iov, int max) const noexcept {
  int n = 0;
  for (std::size_t i = head_; i < chunks_.size() && n < max; ++i) {
    const std::span<const char> bytes = chunks_[i].view();
    const std::size_t skip = i == head_ ? offset_ : 0;
    iov[n++] = {const_cast<char*>(bytes.data() + skip), bytes.size() - skip};
  }
  return n;
}

EVNET_DECL void WriteQueue::consume(std::size_t n) noexcept {
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

EVNET_DECL std::span<const char> WriteQueue::Chunk::view() const noexcept {
  if (const auto* text = std::get_if<std::string>(&bytes)) return {text->data(), text->size()};
  return std::visit(
      [](const auto& b) {
        return std::span<const char>(reinterpret_cast<const char*>(b.data()), b.size());
      },
      bytes);
}

EVNET_DECL void WriteQueue::reset() noexcept {
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

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_IMPL_WRITE_QUEUE_IPP
