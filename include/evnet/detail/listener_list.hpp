// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_LISTENER_LIST_HPP
#define EVNET_DETAIL_LISTENER_LIST_HPP

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace evnet::detail {

inline constexpr std::uint64_t kNotRemoved = std::numeric_limits<std::uint64_t>::max();

// One registration of a listener. Allocated once by on()/once(); emit never allocates. The node
// stays where it is while any emit runs, so a listener can remove itself, or be removed, and
// keep running.
struct ListenerNode {
  std::uint64_t id = 0;
  // The emit clock when the node was removed: emits that began at or before that time still
  // call it (Node's emit iterates over a snapshot), later ones do not.
  std::uint64_t removedAt = kNotRemoved;
  bool once = false;
  bool fired = false;  // a once listener runs at most once, even if an older emit still sees it
  bool plain = true;   // registered and not once: emit calls it without further checks
  void (*destroy)(ListenerNode*) noexcept = nullptr;
};

// A node that can be called with the event's parameters.
template <class... Params>
struct TypedListenerNode : ListenerNode {
  void (*invoke)(TypedListenerNode*, Params...) = nullptr;
};

template <class F, class... Params>
struct ListenerNodeFor final : TypedListenerNode<Params...> {
  F fn;

  template <class G>
  explicit ListenerNodeFor(G&& g) : fn(std::forward<G>(g)) {
    this->invoke = [](TypedListenerNode<Params...>* self, Params... params) {
      static_cast<void>(static_cast<ListenerNodeFor*>(self)->fn(static_cast<Params&&>(params)...));
    };
    this->destroy = [](ListenerNode* self) noexcept { delete static_cast<ListenerNodeFor*>(self); };
  }
};

// The nodes of one name in call order: the first in place, since most names have one listener
// (a std::vector cost an allocation more for each name that got a listener), more on the heap.
// Not movable: it points into itself.
class NodeList {
 public:
  using iterator = ListenerNode**;

  NodeList() noexcept = default;
  NodeList(const NodeList&) = delete;
  NodeList& operator=(const NodeList&) = delete;
  ~NodeList() {
    if (data_ != &first_) delete[] data_;
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  ListenerNode* operator[](std::size_t i) const noexcept { return data_[i]; }
  ListenerNode* front() const noexcept { return data_[0]; }
  iterator begin() const noexcept { return data_; }
  iterator end() const noexcept { return data_ + size_; }

  void pushBack(ListenerNode* node) {
    reserveOneMore();
    data_[size_++] = node;
  }
  void pushFront(ListenerNode* node) {
    reserveOneMore();
    std::copy_backward(begin(), end(), end() + 1);
    data_[0] = node;
    ++size_;
  }
  void erase(std::size_t position) noexcept {
    std::copy(begin() + position + 1, end(), begin() + position);
    --size_;
  }
  // Drops the nodes for which drop(node) is true (which may destroy them), keeping the order.
  template <class Pred>
  void eraseIf(Pred drop) {
    iterator kept = std::remove_if(begin(), end(), drop);
    size_ = static_cast<std::size_t>(kept - data_);
  }

 private:
  void reserveOneMore() {
    if (size_ < capacity_) return;
    const std::size_t capacity = capacity_ < 4 ? 4 : 2 * capacity_;
    auto* grown = new ListenerNode*[capacity];
    std::copy(begin(), end(), grown);
    if (data_ != &first_) delete[] data_;
    data_ = grown;
    capacity_ = capacity;
  }

  ListenerNode* first_ = nullptr;
  ListenerNode** data_ = &first_;
  std::size_t size_ = 0;
  std::size_t capacity_ = 1;
};

// The listeners of one event name, in call order. Exists only while the name has listeners (or
// removed ones waiting for the end of an emit), so an emitter with no listeners for a name holds
// a null pointer for it. Made by makeWith() together with its first node, in one allocation
// (most names only ever have one listener); destroyed by release(), never by delete.
struct ListenerList {
  NodeList nodes;
  ListenerNode* single = nullptr;  // the only node, when it is plain: emit's fast path
  std::uint32_t live = 0;          // registered, not removed
  std::uint32_t prepended = 0;     // prepends so far: how far running emits' positions moved
  std::uint64_t firstAdded = 0;    // when the name got its first listener (eventNames order)
  bool warned = false;             // max-listeners warning given since the name got listeners
  bool hasRemoved = false;         // removed nodes wait for the outermost emit to end

  ListenerList() = default;
  ListenerList(const ListenerList&) = delete;
  ListenerList& operator=(const ListenerList&) = delete;
  ~ListenerList() {
    for (ListenerNode* node : nodes) node->destroy(node);
  }

  // A new list and its first node, constructed from g. The node lives after the list in the
  // same block; its destroy() runs its destructor only, and the block goes with the list.
  template <class Node, class G>
  static std::pair<ListenerList*, Node*> makeWith(G&& g) {
    constexpr std::size_t offset =
        (sizeof(ListenerList) + alignof(Node) - 1) & ~(alignof(Node) - 1);
    if constexpr (alignof(Node) > __STDCPP_DEFAULT_NEW_ALIGNMENT__) {
      auto node = std::make_unique<Node>(std::forward<G>(g));  // over-aligned: a block of its own
      return {new (::operator new(sizeof(ListenerList))) ListenerList, node.release()};
    } else {
      void* block = ::operator new(offset + sizeof(Node));
      Node* node = nullptr;
      try {
        node = new (static_cast<char*>(block) + offset) Node(std::forward<G>(g));
      } catch (...) {
        ::operator delete(block);
        throw;
      }
      node->destroy = [](ListenerNode* self) noexcept { static_cast<Node*>(self)->~Node(); };
      return {new (block) ListenerList, node};
    }
  }

  // Destroys the list, its nodes and the block they share. A null list is nothing to do.
  static void release(ListenerList* list) noexcept {
    if (list == nullptr) return;
    list->~ListenerList();
    ::operator delete(list);
  }

  // Physically drops removed nodes; only while no emit runs.
  void sweep() noexcept {
    nodes.eraseIf([](ListenerNode* node) {
      if (node->removedAt == kNotRemoved) return false;
      node->destroy(node);
      return true;
    });
    hasRemoved = false;
    refreshSingle();
  }

  void refreshSingle() noexcept {
    single = nodes.size() == 1 && nodes.front()->plain ? nodes.front() : nullptr;
  }
};

// A set of indices below N: which event names of an emitter have a list, so that
// removeAllListeners() and the destructor visit those alone (a socket declares some twenty
// names and has listeners for two or three). Up to 32 names it fits in an emitter's padding.
template <std::size_t N>
class IndexSet {
 public:
  void insert(std::size_t i) noexcept { words_[i / 32] |= bit(i); }
  void erase(std::size_t i) noexcept { words_[i / 32] &= ~bit(i); }
  bool empty() const noexcept {
    return std::all_of(words_.begin(), words_.end(), [](std::uint32_t w) { return w == 0; });
  }
  // Calls f(i) for every index, in increasing order; f may change the set, not this walk.
  template <class F>
  void forEach(F f) const {
    for (std::size_t w = 0; w < words_.size(); ++w)
      for (std::uint32_t word = words_[w]; word != 0; word &= word - 1)
        f(w * 32 + static_cast<std::size_t>(std::countr_zero(word)));
  }

 private:
  static constexpr std::uint32_t bit(std::size_t i) noexcept {
    return std::uint32_t{1} << (i % 32);
  }
  std::array<std::uint32_t, (N + 31) / 32> words_{};
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_LISTENER_LIST_HPP
