// Command-line flags of the hub's programs (hub, producer, worker): `--name value` pairs. A flag
// that is unknown, has no value or a bad one prints the usage and exits with status 2, as every
// evnet example does.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hub {

class Flags {
 public:
  Flags(int argc, char** argv, std::string usage) : usage_(std::move(usage)) {
    for (int i = 1; i < argc; i += 2) {
      const std::string_view name = argv[i];
      if (!name.starts_with("--") || i + 1 == argc) fail(name);
      given_.push_back({std::string(name.substr(2)), argv[i + 1], false});
    }
  }

  /// The value of --name, or `fallback`.
  std::string text(std::string_view name, std::string fallback) {
    const Given* flag = find(name);
    return flag != nullptr ? flag->value : std::move(fallback);
  }

  /// --name as a decimal integer in [0, max].
  unsigned long long number(std::string_view name, unsigned long long fallback,
                            unsigned long long max = ~0ULL) {
    const Given* flag = find(name);
    if (flag == nullptr) return fallback;
    const std::string& v = flag->value;
    char* end = nullptr;
    const unsigned long long n = std::strtoull(v.c_str(), &end, 10);
    if (v.empty() || v[0] < '0' || v[0] > '9' || *end != '\0' || n > max) fail(name, v);
    return n;
  }

  /// --name as one of `choices`.
  std::string choice(std::string_view name, std::initializer_list<std::string_view> choices,
                     std::string fallback) {
    const Given* flag = find(name);
    if (flag == nullptr) return fallback;
    for (auto c : choices)
      if (flag->value == c) return flag->value;
    fail(name, flag->value);
  }

  /// Call after reading every flag: one that no call asked for is unknown.
  void done() const {
    for (const auto& flag : given_)
      if (!flag.used) fail("--" + flag.name);
  }

  [[noreturn]] void fail(std::string_view flag, std::string_view value = {}) const {
    if (value.empty()) usageError("bad flag '" + std::string(flag) + "'");
    usageError("bad value '" + std::string(value) + "' for --" + std::string(flag));
  }

  /// Prints `what` is wrong with the flags, then the usage, and exits with status 2.
  [[noreturn]] void usageError(const std::string& what) const {
    std::fprintf(stderr, "%s\nusage: %s\n", what.c_str(), usage_.c_str());
    std::exit(2);
  }

 private:
  struct Given {
    std::string name, value;
    bool used;
  };

  Given* find(std::string_view name) {
    Given* found = nullptr;
    for (auto& flag : given_)
      if (flag.name == name) {
        flag.used = true;
        found = &flag;  // the last one given wins
      }
    return found;
  }

  std::string usage_;
  std::vector<Given> given_;
};

}  // namespace hub
