// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_BUFFER_HPP
#define EVNET_BUFFER_HPP

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace evnet {

/// A read-only view of received bytes, valid while the "data" listener runs; copy what you keep
/// (Node: Buffer, which evnet does not copy out of its read buffer).
class Buffer {
 public:
  constexpr Buffer() noexcept = default;
  /// A view of size bytes at data (Node: Buffer.from, without the copy).
  constexpr Buffer(const char* data, std::size_t size) noexcept : data_(data), size_(size) {}
  /// A view of the bytes of a string.
  constexpr Buffer(std::string_view bytes) noexcept : data_(bytes.data()), size_(bytes.size()) {}

  /// The number of bytes (Node: buf.length).
  constexpr std::size_t size() const noexcept { return size_; }
  /// Whether size() is 0.
  constexpr bool empty() const noexcept { return size_ == 0; }
  /// The first byte.
  constexpr const char* data() const noexcept { return data_; }
  /// The range of the bytes, for range-for and algorithms.
  constexpr const char* begin() const noexcept { return data_; }
  /// The end of the range.
  constexpr const char* end() const noexcept { return data_ + size_; }
  /// The byte at i, unchecked (Node: buf[i]).
  constexpr char operator[](std::size_t i) const noexcept { return data_[i]; }

  /// A copy of the bytes as a string (Node: buf.toString()).
  std::string toString() const { return std::string(data_, size_); }
  /// The bytes [start, end) as a view (Node: buf.subarray).
  constexpr Buffer subarray(std::size_t start, std::size_t end = std::string_view::npos) const {
    const std::size_t last = end < size_ ? end : size_;
    return start < last ? Buffer(data_ + start, last - start) : Buffer();
  }

  /// The bytes as a string_view or a span, which also serve write(); valid as long as the view.
  constexpr operator std::string_view() const noexcept { return {data_, size_}; }
  /// The bytes as std::byte.
  operator std::span<const std::byte>() const noexcept {
    return std::as_bytes(std::span<const char>(data_, size_));
  }
  /// The bytes as a span.
  constexpr operator std::span<const char>() const noexcept { return {data_, size_}; }

 private:
  const char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace evnet

#endif  // EVNET_BUFFER_HPP
