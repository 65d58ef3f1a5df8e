// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_DETAIL_ADDRESS_HPP
#define EVNET_DETAIL_ADDRESS_HPP

#include "evnet/net/address.hpp"

#include <asio/basic_socket_acceptor.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

namespace evnet::detail {

using net::AddressInfo;
// Every socket and listener, TCP or Unix, is a generic stream socket to asio.
using Protocol = asio::generic::stream_protocol;
// On its loop's own executor, not asio::any_io_executor: each asynchronous operation's work
// tracking then goes without type erasure.
using StreamSocket = asio::basic_stream_socket<Protocol, asio::io_context::executor_type>;
using Acceptor = asio::basic_socket_acceptor<Protocol, asio::io_context::executor_type>;

// Dotted decimal; inet_ntop goes through sprintf, which costs more than accepting a connection.
inline std::string formatIPv4(const in_addr& address) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(&address.s_addr);
  std::string text;
  text.reserve(INET_ADDRSTRLEN - 1);
  for (int i = 0; i < 4; ++i) {
    if (i != 0) text += '.';
    const unsigned byte = bytes[i];
    if (byte >= 100) text += static_cast<char>('0' + byte / 100);
    if (byte >= 10) text += static_cast<char>('0' + byte / 10 % 10);
    text += static_cast<char>('0' + byte % 10);
  }
  return text;
}

inline AddressInfo toAddressInfo(const sockaddr* sa, std::size_t size) {
  AddressInfo info;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    info = {formatIPv4(in->sin_addr), "IPv4", ntohs(in->sin_port)};
  } else if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    info = {text, "IPv6", ntohs(in6->sin6_port)};
  } else if (sa->sa_family == AF_UNIX) {
    const auto* un = reinterpret_cast<const sockaddr_un*>(sa);
    const std::size_t max =
        size > offsetof(sockaddr_un, sun_path) ? size - offsetof(sockaddr_un, sun_path) : 0;
    info = {std::string(un->sun_path, ::strnlen(un->sun_path, max)), "Unix", 0};
  }
  return info;
}
inline AddressInfo toAddressInfo(const Protocol::endpoint& endpoint) {
  return toAddressInfo(endpoint.data(), endpoint.size());
}

// The address a connected descriptor has on this side (getsockname), if the kernel tells it.
inline std::optional<Protocol::endpoint> localEndpoint(int fd) {
  sockaddr_storage address{};
  socklen_t size = sizeof address;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) return std::nullopt;
  return Protocol::endpoint(&address, size, address.ss_family == AF_UNIX ? 0 : IPPROTO_TCP);
}

// A socket's address as the kernel gave it, turned into an AddressInfo only when first asked
// for: most servers never read it, and its strings would cost more than the rest of accepting
// a connection. 40 bytes where an AddressInfo takes 72.
class LazyAddress {
 public:
  void set(const Protocol::endpoint& endpoint) {
    reset();
    const sockaddr* sa = endpoint.data();
    if ((sa->sa_family == AF_INET || sa->sa_family == AF_INET6) && endpoint.size() <= sizeof raw_) {
      // A fixed size compiles to a few moves; the endpoint's storage (capacity(): a
      // sockaddr_storage) is larger than raw_.
      std::memcpy(&raw_, sa, sizeof raw_);
      size_ = static_cast<std::uint8_t>(endpoint.size());
    } else {
      info_ = std::make_unique<AddressInfo>(toAddressInfo(endpoint));  // a path: no formatting
    }
  }
  void reset() noexcept {
    info_.reset();
    size_ = 0;
  }
  bool known() const noexcept { return size_ != 0 || info_ != nullptr; }
  const AddressInfo& get() const {
    if (!info_) {
      static const AddressInfo none;
      if (size_ == 0) return none;
      info_ = std::make_unique<AddressInfo>(
          toAddressInfo(reinterpret_cast<const sockaddr*>(&raw_), size_));
    }
    return *info_;
  }

 private:
  union {
    sockaddr_in v4;
    sockaddr_in6 v6;
  } raw_{};
  std::uint8_t size_ = 0;
  mutable std::unique_ptr<AddressInfo> info_;
};

}  // namespace evnet::detail

#endif  // EVNET_DETAIL_ADDRESS_HPP
