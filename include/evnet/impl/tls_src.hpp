// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_IMPL_TLS_SRC_HPP
#define EVNET_IMPL_TLS_SRC_HPP

// With EVNET_SEPARATE_COMPILATION, exactly one source file of a program that uses evnet::tls
// includes this header (besides <evnet/impl/src.hpp>): it compiles tls's sockets and servers.
#ifndef EVNET_SEPARATE_COMPILATION
#error "<evnet/impl/tls_src.hpp> is for programs built with EVNET_SEPARATE_COMPILATION defined"
#endif

#include "evnet/tls.hpp"

namespace evnet::detail {
template class SocketImpl<TlsLayer>;
template class ServerImpl<tls::detail::ServerTraits>;
template class ServerHandle<tls::Server, ServerImpl<tls::detail::ServerTraits>>;
}  // namespace evnet::detail

#endif  // EVNET_IMPL_TLS_SRC_HPP
