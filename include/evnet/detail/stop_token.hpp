// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_STOP_TOKEN_HPP
#define EVNET_DETAIL_STOP_TOKEN_HPP

// Node's `signal` options (listen, connect) are std::stop_tokens. A standard library without
// them (libc++ before 17) builds evnet without those options: EVNET_HAS_STOP_TOKEN is 0 there.
#if __has_include(<stop_token>)
#include <stop_token>
#endif
#if defined(__cpp_lib_jthread)
#define EVNET_HAS_STOP_TOKEN 1
#else
#define EVNET_HAS_STOP_TOKEN 0
#endif

#endif  // EVNET_DETAIL_STOP_TOKEN_HPP
