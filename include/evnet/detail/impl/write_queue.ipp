// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_IMPL_WRITE_QUEUE_IPP
#define EVNET_DETAIL_IMPL_WRITE_QUEUE_IPP

// WriteQueue's functions that are not inline: included by write_queue.hpp, or in compiled mode by
// <evnet/impl/src.hpp> only.
#include "evnet/detail/write_queue.hpp"

namespace evnet::detail {

EVNET_DECL void WriteQueue::copy(const char* data, std::size_t size) {
  if (size == 0) return;
  Block* tail = tail_;
  if (tail == nullptr || tail->capacity == 0 || tail->capacity - tail->size < size) {
    if (spare_ != nullptr && spare_->capacity >= size) {
      tail = std::exchange(spare_, nullptr);
    } else {
      // The class after the tail's (twice as large, up to 64 KiB), or the first that holds size.
      std::size_t k = tail == nullptr || tail->capacity == 0
                          ? 0
                          : std::min(classOf(tail->capacity) + 1, kClasses - 1);
      while (k < kClasses && capacityOf(k) < size) ++k;
      tail = makeCopyBlock(k, size);
    }
    append(tail);
  }
  std::memcpy(tail->room() + tail->size, data, size);
  tail->size += size;
}

EVNET_DECL void WriteQueue::own(Owned&& bytes) {
  if (viewOf(bytes).empty()) return;
  auto* block = new OwnedBlock(std::move(bytes));
  // Viewed once moved: a short std::string's bytes are inside it, so in the block now.
  const std::span<const char> view = viewOf(block->bytes);
  block->data = view.data();
  block->size = view.size();
  append(block);
}

EVNET_DECL std::span<const char> WriteQueue::viewOf(const Owned& bytes) noexcept {
  return std::visit(
      [](const auto& b) {
        return std::span<const char>(reinterpret_cast<const char*>(b.data()), b.size());
      },
      bytes);
}

EVNET_DECL int WriteQueue::gather(iovec* iov, int max) const noexcept {
  int n = 0;
  std::size_t skip = offset_;
  for (const Block* block = head_; block != nullptr && n < max; block = block->next) {
    iov[n++] = {const_cast<char*>(block->data + skip), block->size - skip};
    skip = 0;
  }
  return n;
}

EVNET_DECL void WriteQueue::consume(std::size_t n) noexcept {
  while (n > 0) {
    Block* head = head_;
    const std::size_t left = head->size - offset_;
    if (n < left) {
      offset_ += n;
      return;
    }
    n -= left;
    offset_ = 0;
    head_ = head->next;
    if (head_ == nullptr) tail_ = nullptr;
    retire(head);
  }
}

EVNET_DECL void WriteQueue::clear() noexcept {
  while (head_ != nullptr) destroy(std::exchange(head_, head_->next));
  tail_ = nullptr;
  offset_ = 0;
  destroy(std::exchange(spare_, nullptr));
}

EVNET_DECL WriteQueue::Block* WriteQueue::makeCopyBlock(std::size_t k, std::size_t size) {
  const std::size_t capacity = k < kClasses ? capacityOf(k) : size;
  void* memory = k < kClasses ? CopyBlocks::allocate(k, sizeof(Block) + capacity)
                              : ::operator new(sizeof(Block) + capacity);
  auto* block = new (memory) Block;
  block->data = block->room();
  block->capacity = capacity;
  return block;
}

EVNET_DECL void WriteQueue::destroy(Block* block) noexcept {
  if (block == nullptr) return;
  if (block->capacity == 0) {
    delete static_cast<OwnedBlock*>(block);
  } else if (const std::size_t k = classOf(block->capacity); k < kClasses) {
    CopyBlocks::deallocate(k, sizeof(Block) + block->capacity, block);  // trivially destructible
  } else {
    ::operator delete(block);
  }
}

EVNET_DECL void WriteQueue::retire(Block* block) noexcept {
  if (spare_ == nullptr && block->capacity == kMinCopy) {
    block->next = nullptr;
    block->size = 0;
    spare_ = block;
  } else {
    destroy(block);
  }
}

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_IMPL_WRITE_QUEUE_IPP
