// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_IMPL_SRC_HPP
#define EVNET_IMPL_SRC_HPP

// With EVNET_SEPARATE_COMPILATION, exactly one source file of the program includes this header:
// it compiles net's sockets and servers for every other file (see evnet/detail/config.hpp).
#ifndef EVNET_SEPARATE_COMPILATION
#error "<evnet/impl/src.hpp> is for programs built with EVNET_SEPARATE_COMPILATION defined"
#endif

#include "evnet/net.hpp"

// The functions of evnet's classes that are not templates, defined here only.
#include "evnet/detail/impl/block_list.ipp"
#include "evnet/detail/impl/loop.ipp"
#include "evnet/detail/impl/loop_service.ipp"
#include "evnet/detail/impl/process.ipp"
#include "evnet/detail/impl/timers.ipp"
#include "evnet/detail/impl/write_queue.ipp"

namespace evnet::detail {
template class SocketImpl<PlainLayer>;
template class ServerImpl<net::detail::ServerTraits>;
template class ServerHandle<net::Server, ServerImpl<net::detail::ServerTraits>>;
}  // namespace evnet::detail

#endif  // EVNET_IMPL_SRC_HPP
