// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_TRANSPORT_HPP
#define EVNET_TRANSPORT_HPP

namespace evnet {

/// How the sockets and servers of a loop do their I/O (beyond Node, whose libuv has one way per
/// platform); see setTransport(). `automatic` is epoll for now; `ioUring` needs evnet built with
/// it (EVNET_HAS_IO_URING) and a kernel that allows it (Linux 6.0; containers often forbid it).
enum class Transport { automatic, epoll, ioUring };

}  // namespace evnet

#endif  // EVNET_TRANSPORT_HPP
