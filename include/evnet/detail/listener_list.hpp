// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_LISTENER_LIST_HPP
#define EVNET_DETAIL_LISTENER_LIST_HPP

#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

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

// The listeners of one event name, in call order. Exists only while the name has listeners (or
// removed ones waiting for the end of an emit), so an emitter with no listeners for a name holds
// a null pointer for it.
struct ListenerList {
  std::vector<ListenerNode*> nodes;
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

  // Physically drops removed nodes; only while no emit runs.
  void sweep() noexcept {
    std::erase_if(nodes, [](ListenerNode* node) {
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

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_LISTENER_LIST_HPP
