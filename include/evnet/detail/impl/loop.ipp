// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_IMPL_LOOP_IPP
#define EVNET_DETAIL_IMPL_LOOP_IPP

// LoopRef's constructors from an io_context: out of the class because converting its executor to
// asio::any_io_executor costs every file that compiles it about a tenth of a second.
#include "evnet/loop.hpp"

namespace evnet {

EVNET_DECL LoopRef::LoopRef() : executor_(defaultLoop().get_executor()) {}
EVNET_DECL LoopRef::LoopRef(asio::io_context& loop) : executor_(loop.get_executor()) {}

}  // namespace evnet

#endif  // EVNET_DETAIL_IMPL_LOOP_IPP
