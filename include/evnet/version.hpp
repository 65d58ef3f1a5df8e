// evnet — Node.js events and net for C++20. Distributed under the Boost Software License 1.0.
#ifndef EVNET_VERSION_HPP
#define EVNET_VERSION_HPP

/// evnet's version as three numbers; the CMake project version is the same (a test checks it).
#define EVNET_VERSION_MAJOR 0
#define EVNET_VERSION_MINOR 1
#define EVNET_VERSION_PATCH 0

/// The version as one number, MMmmpp (0.1.0 is 100), for preprocessor comparisons.
#define EVNET_VERSION \
  (EVNET_VERSION_MAJOR * 10000 + EVNET_VERSION_MINOR * 100 + EVNET_VERSION_PATCH)

namespace evnet {

/// The version of the evnet headers in use, as "major.minor.patch" (Node: process.versions).
inline constexpr const char* version = "0.1.0";

}  // namespace evnet

#endif  // EVNET_VERSION_HPP
