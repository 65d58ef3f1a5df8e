// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_EVNET_HPP
#define EVNET_EVNET_HPP

/// The umbrella header: everything evnet offers.
#include "evnet/buffer.hpp"
#include "evnet/error.hpp"
#include "evnet/event_emitter.hpp"
#include "evnet/loop.hpp"
#include "evnet/net.hpp"
#include "evnet/once.hpp"
#include "evnet/process.hpp"
#include "evnet/timers.hpp"
#include "evnet/version.hpp"

#endif  // EVNET_EVNET_HPP
