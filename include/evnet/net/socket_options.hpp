// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_NET_SOCKET_OPTIONS_HPP
#define EVNET_NET_SOCKET_OPTIONS_HPP

#include <cstddef>
#include <cstdint>

namespace evnet::net {

/// The kernel's view of a TCP connection (Linux TCP_INFO; Node has no equivalent).
struct TcpInfo {
  std::uint32_t rttUs = 0;         // smoothed round-trip time
  std::uint32_t rttVarUs = 0;      // its variation
  std::uint32_t retransmits = 0;   // retransmissions of the current segment
  std::uint32_t totalRetrans = 0;  // retransmitted segments over the connection's life
  std::uint32_t sndCwnd = 0;       // congestion window, in segments
  std::uint32_t sndMss = 0;        // sender maximum segment size
  std::uint32_t unacked = 0;       // segments sent and not yet acknowledged
  std::uint32_t lost = 0;          // segments considered lost
};

/// Options of a socket, given to net::connect / createConnection or inherited from a server
/// (Node: the options of new net.Socket and net.createServer).
struct SocketOptions {
  bool allowHalfOpen = false;             // false: after "end", end our side too once writes flush
  bool noDelay = true;                    // disable Nagle's algorithm (evnet's default, see README)
  bool keepAlive = false;                 // enable TCP keep-alive probes
  unsigned keepAliveInitialDelayMs = 0;   // idle time before the first probe; 0: the system's
  std::size_t highWaterMark = 16 * 1024;  // write() returns false at this many queued bytes
};

}  // namespace evnet::net

#endif  // EVNET_NET_SOCKET_OPTIONS_HPP
