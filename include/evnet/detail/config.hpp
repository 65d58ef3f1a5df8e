// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_CONFIG_HPP
#define EVNET_DETAIL_CONFIG_HPP

// EVNET_SEPARATE_COMPILATION (as asio's ASIO_SEPARATE_COMPILATION): defined in every translation
// unit of a program, evnet's sockets and servers are compiled once, in the one file that includes
// <evnet/impl/src.hpp> (and <evnet/impl/tls_src.hpp> for evnet::tls), instead of in every file
// that uses them. The headers then declare them `extern template`, and their member functions
// defined after the class (EVNET_DECL) are not inline, so that no other file instantiates them.
// The functions of classes that are not templates (the loop's service, the write queue, timers,
// the process emitter) live in evnet/detail/impl/*.ipp, as asio's do: a header includes its .ipp
// only when header-only; in compiled mode src.hpp alone includes them.
#ifdef EVNET_SEPARATE_COMPILATION
#define EVNET_DECL
#else
#define EVNET_DECL inline
#endif

#endif  // EVNET_DETAIL_CONFIG_HPP
