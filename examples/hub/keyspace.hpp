// The hub's keys: lists (the work queues) and plain strings, with the list and key commands of
// Redis 7.0, network-free. Each command appends its RESP2 reply to `out`; replies and their
// order of checks (arguments, then the key's existence, then its type) are redis-server 7.0's,
// as tests/examples/hub_lists_test.py shows by sending the same commands to both.
//
// Strings exist so that a key can hold "the wrong kind of value" as in Redis: GET and SET with
// NX, XX and GET. The hub does not expire keys: SET's EX, PX, EXAT, PXAT and KEEPTTL are a
// syntax error here.
#pragma once

#include "hub/resp.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace hub {

/// The end of a list an element is taken from or put at (Redis' LEFT and RIGHT).
enum class End { left, right };

/// Parses LEFT or RIGHT, in any case, as LMOVE's arguments.
inline bool parseEnd(std::string_view s, End& end) {
  auto equalsIgnoringCase = [&](std::string_view word) {
    return s.size() == word.size() &&
           std::equal(s.begin(), s.end(), word.begin(), [](char a, char b) {
             return (a >= 'a' && a <= 'z' ? static_cast<char>(a - 'a' + 'A') : a) == b;
           });
  };
  if (equalsIgnoringCase("LEFT")) return end = End::left, true;
  if (equalsIgnoringCase("RIGHT")) return end = End::right, true;
  return false;
}

/// A blocking command's timeout in seconds, fractions allowed, as redis-server 7.0 reads it:
/// strtold over the whole argument (no leading blank; hexadecimal and "inf" accepted, NaN and
/// underflow not), then truncated to milliseconds, where a value past the range of a long long
/// wraps to negative as it does in Redis. 0 ms waits forever. Returns the error text, or "".
inline std::string parseTimeout(const std::string& arg, long long& ms) {
  const char* text = arg.c_str();
  char* end = nullptr;
  errno = 0;
  const long double seconds =
      arg.empty() || arg.size() >= 5 * 1024 ? NAN : std::strtold(text, &end);
  const bool underflow = errno == ERANGE && seconds == 0;
  const bool overflow = errno == ERANGE && std::isinf(seconds);
  if (std::isnan(seconds) || detail::isSpace(text[0]) || end != text + arg.size() || underflow ||
      overflow || arg.find('\0') != std::string::npos)
    return "ERR timeout is not a float or out of range";
  const long double scaled = seconds * 1000.0L;
  if (!(scaled < 9223372036854775808.0L)) return "ERR timeout is negative";  // wraps in Redis
  ms = static_cast<long long>(scaled);
  return ms < 0 ? "ERR timeout is negative" : "";
}

class Keyspace {
 public:
  using List = std::deque<std::string>;
  using Value = std::variant<List, std::string>;

  /// Called when a command creates a list: clients blocked on that key may now be served.
  std::function<void(const std::string& key)> listCreated;
  /// Called with each change made, as a command that makes it again (for the append-only
  /// file): the command itself, or what it did (BLPOP's pop as LPOP key, SET without its
  /// conditions). Commands that change nothing are not told.
  std::function<void(const Command& change)> changed;

  // --- lists ------------------------------------------------------------------------------

  /// LPUSH / RPUSH key element [element ...]: the list's length after the push.
  void push(std::string& out, const Command& cmd, End end) {
    List* list = writableList(out, cmd[1]);
    if (list == nullptr) return;
    for (std::size_t i = 2; i < cmd.size(); ++i) pushTo(*list, cmd[i], end);
    appendInteger(out, static_cast<long long>(list->size()));
    tell(cmd);
  }

  /// LPOP / RPOP key [count].
  void pop(std::string& out, const Command& cmd, End end) {
    if (cmd.size() > 3) return appendError(out, arityError(cmd));
    long long count = 0;
    const bool hasCount = cmd.size() == 3;
    if (hasCount && (!detail::parseInteger(cmd[2], count) || count < 0))
      return appendError(out, "ERR value is out of range, must be positive");
    const auto it = data_.find(cmd[1]);
    if (it == data_.end()) return out.append(hasCount ? "*-1\r\n" : "$-1\r\n"), void();
    List* list = std::get_if<List>(&it->second);
    if (list == nullptr) return appendError(out, kWrongType);
    if (!hasCount) {
      appendBulkString(out, end == End::left ? list->front() : list->back());
      popFrom(*list, end);
    } else {
      const auto n = static_cast<std::size_t>(
          std::min<long long>(count, static_cast<long long>(list->size())));
      appendArrayHeader(out, n);
      for (std::size_t i = 0; i < n; ++i) {
        appendBulkString(out, end == End::left ? list->front() : list->back());
        popFrom(*list, end);
      }
    }
    if (list->empty()) eraseKey(it);
    if (!hasCount || count > 0) tell(cmd);
  }

  /// LLEN key.
  void llen(std::string& out, const Command& cmd) {
    const List* list = nullptr;
    if (!readList(out, cmd[1], list, ":0\r\n")) return;
    appendInteger(out, static_cast<long long>(list->size()));
  }

  /// LRANGE key start stop: negative indexes count from the end; out of range is clamped.
  void lrange(std::string& out, const Command& cmd) {
    long long start = 0, stop = 0;
    if (!integerArgument(out, cmd[2], start) || !integerArgument(out, cmd[3], stop)) return;
    const List* list = nullptr;
    if (!readList(out, cmd[1], list, "*0\r\n")) return;
    const auto size = static_cast<long long>(list->size());
    if (start < 0) start += size;
    if (stop < 0) stop += size;
    if (start < 0) start = 0;
    if (start > stop || start >= size) return appendArrayHeader(out, 0);
    if (stop >= size) stop = size - 1;
    appendArrayHeader(out, static_cast<std::size_t>(stop - start + 1));
    for (auto i = start; i <= stop; ++i)
      appendBulkString(out, (*list)[static_cast<std::size_t>(i)]);
  }

  /// LINDEX key index.
  void lindex(std::string& out, const Command& cmd) {
    const List* list = nullptr;
    if (!readList(out, cmd[1], list, "$-1\r\n")) return;
    long long index = 0;
    if (!integerArgument(out, cmd[2], index)) return;
    const auto size = static_cast<long long>(list->size());
    if (index < 0) index += size;
    if (index < 0 || index >= size) return appendNullBulkString(out);
    appendBulkString(out, (*list)[static_cast<std::size_t>(index)]);
  }

  /// LREM key count element: removes up to |count| (0: all) equal elements, from the head if
  /// count > 0, from the tail if count < 0; replies how many.
  void lrem(std::string& out, const Command& cmd) {
    long long count = 0;
    if (!integerArgument(out, cmd[2], count)) return;
    const auto it = data_.find(cmd[1]);
    if (it == data_.end()) return appendInteger(out, 0);
    List* list = std::get_if<List>(&it->second);
    if (list == nullptr) return appendError(out, kWrongType);
    const auto limit = count == 0  ? ~0ULL
                       : count < 0 ? 0ULL - static_cast<unsigned long long>(count)
                                   : static_cast<unsigned long long>(count);
    unsigned long long removed = 0;
    auto matches = [&](const std::string& e) {
      if (removed == limit || e != cmd[3]) return false;
      ++removed;
      used_ -= elementBytes(e);
      return true;
    };
    if (count >= 0) {
      list->erase(std::remove_if(list->begin(), list->end(), matches), list->end());
    } else {
      const auto kept = std::remove_if(list->rbegin(), list->rend(), matches);
      list->erase(list->begin(), kept.base());
    }
    if (list->empty()) eraseKey(it);
    appendInteger(out, static_cast<long long>(removed));
    if (removed > 0) tell(cmd);
  }

  /// LMOVE source destination LEFT|RIGHT LEFT|RIGHT.
  void lmove(std::string& out, const Command& cmd) {
    End from{}, to{};
    if (!parseEnd(cmd[3], from) || !parseEnd(cmd[4], to))
      return appendError(out, "ERR syntax error");
    if (!move(out, cmd[1], cmd[2], from, to)) appendNullBulkString(out);
  }

  /// The move of LMOVE and BLMOVE: replies the element moved and returns true, or an error and
  /// returns true, or nothing and returns false when the source is missing (BLMOVE then blocks).
  bool move(std::string& out, const std::string& source, const std::string& destination, End from,
            End to) {
    const auto it = data_.find(source);
    if (it == data_.end()) return false;
    List* list = std::get_if<List>(&it->second);
    if (list == nullptr) return appendError(out, kWrongType), true;
    const auto target = data_.find(destination);
    if (target != data_.end() && !std::holds_alternative<List>(target->second))
      return appendError(out, kWrongType), true;
    std::string element = take(*list, from);
    appendBulkString(out, element);
    List* into = source == destination ? list : writableList(out, destination);
    pushTo(*into, std::move(element), to);
    if (list->empty()) eraseKey(it);  // (a list moved onto itself is never left empty)
    if (changed) changed({"LMOVE", source, destination, endName(from), endName(to)});
    return true;
  }

  /// The pop of BLPOP and BRPOP: from the first key holding a list, replying [key, element],
  /// and returns true; or an error for a key of another type before it, and returns true;
  /// false when every key is missing (the client then blocks).
  bool popFirst(std::string& out, std::span<const std::string> keys, End end) {
    for (const auto& key : keys) {
      const auto it = data_.find(key);
      if (it == data_.end()) continue;
      List* list = std::get_if<List>(&it->second);
      if (list == nullptr) return appendError(out, kWrongType), true;
      appendArrayHeader(out, 2);
      appendBulkString(out, key);
      appendBulkString(out, end == End::left ? list->front() : list->back());
      popFrom(*list, end);
      if (list->empty()) eraseKey(it);
      if (changed) changed({end == End::left ? "LPOP" : "RPOP", key});
      return true;
    }
    return false;
  }

  /// Whether `key` holds a list (lists are never empty: the last pop deletes the key).
  bool hasList(const std::string& key) const {
    const auto it = data_.find(key);
    return it != data_.end() && std::holds_alternative<List>(it->second);
  }

  // --- keys -------------------------------------------------------------------------------

  /// DEL key [key ...]: how many existed.
  void del(std::string& out, const Command& cmd) {
    long long deleted = 0;
    for (std::size_t i = 1; i < cmd.size(); ++i) {
      if (const auto it = data_.find(cmd[i]); it != data_.end()) {
        eraseKey(it);
        ++deleted;
      }
    }
    appendInteger(out, deleted);
    if (deleted > 0) tell(cmd);
  }

  /// EXISTS key [key ...]: how many of the keys exist, a key named twice counted twice.
  void exists(std::string& out, const Command& cmd) {
    long long found = 0;
    for (std::size_t i = 1; i < cmd.size(); ++i) found += data_.contains(cmd[i]) ? 1 : 0;
    appendInteger(out, found);
  }

  /// TYPE key: list, string or none.
  void type(std::string& out, const Command& cmd) {
    const auto it = data_.find(cmd[1]);
    appendSimpleString(out, it == data_.end()                          ? "none"
                            : std::holds_alternative<List>(it->second) ? "list"
                                                                       : "string");
  }

  /// KEYS pattern: the keys matching a Redis glob, in no particular order (as in Redis).
  void keys(std::string& out, const Command& cmd) {
    std::vector<const std::string*> found;
    for (const auto& entry : data_)
      if (globMatch(cmd[1], entry.first)) found.push_back(&entry.first);
    appendArrayHeader(out, found.size());
    for (const auto* key : found) appendBulkString(out, *key);
  }

  /// DBSIZE.
  void dbsize(std::string& out, const Command&) {
    appendInteger(out, static_cast<long long>(data_.size()));
  }

  /// FLUSHALL / FLUSHDB [ASYNC | SYNC]: every key deleted (the hub has one database).
  void flushall(std::string& out, const Command& cmd) {
    if (cmd.size() > 2 || (cmd.size() == 2 && upper(cmd[1]) != "ASYNC" && upper(cmd[1]) != "SYNC"))
      return appendError(out, "ERR syntax error");
    data_.clear();
    used_ = 0;
    appendSimpleString(out, "OK");
    tell(cmd);
  }

  // --- strings ----------------------------------------------------------------------------

  /// GET key.
  void get(std::string& out, const Command& cmd) {
    const auto it = data_.find(cmd[1]);
    if (it == data_.end()) return appendNullBulkString(out);
    const auto* text = std::get_if<std::string>(&it->second);
    if (text == nullptr) return appendError(out, kWrongType);
    appendBulkString(out, *text);
  }

  /// SET key value [NX | XX] [GET].
  void set(std::string& out, const Command& cmd) {
    bool nx = false, xx = false, get = false;
    for (std::size_t i = 3; i < cmd.size(); ++i) {
      const std::string option = upper(cmd[i]);
      if (option == "NX" && !xx) {
        nx = true;
      } else if (option == "XX" && !nx) {
        xx = true;
      } else if (option == "GET") {
        get = true;
      } else {
        return appendError(out, "ERR syntax error");
      }
    }
    const auto it = data_.find(cmd[1]);
    const bool found = it != data_.end();
    if (get) {
      if (found && !std::holds_alternative<std::string>(it->second))
        return appendError(out, kWrongType);
      if (found)
        appendBulkString(out, std::get<std::string>(it->second));
      else
        appendNullBulkString(out);
    }
    if ((nx && found) || (xx && !found)) {
      if (!get) appendNullBulkString(out);
      return;
    }
    if (found) eraseKey(it);
    used_ += keyBytes(cmd[1]) + elementBytes(cmd[2]);
    data_.try_emplace(cmd[1], std::in_place_type<std::string>, cmd[2]);
    if (!get) appendSimpleString(out, "OK");
    if (changed) changed({"SET", cmd[1], cmd[2]});
  }

  /// Every key as the commands that make it again (RPUSH of up to 64 elements at a time, SET),
  /// after SELECT 0, as redis-server rewrites its append-only file: `write(bytes)` is called
  /// with each 64 KiB or so.
  template <class Write>
  void snapshot(Write&& write) const {
    std::string out = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n";
    for (const auto& [key, value] : data_) {
      if (const auto* text = std::get_if<std::string>(&value)) {
        appendCommand(out, {"SET", key, *text});
      } else {
        const List& list = std::get<List>(value);
        for (std::size_t i = 0; i < list.size(); i += 64) {
          const std::size_t n = std::min<std::size_t>(64, list.size() - i);
          appendArrayHeader(out, n + 2);
          appendBulkString(out, "RPUSH");
          appendBulkString(out, key);
          for (std::size_t k = i; k < i + n; ++k) appendBulkString(out, list[k]);
          if (out.size() >= 64 * 1024) write(std::string_view(out)), out.clear();
        }
      }
      if (out.size() >= 64 * 1024) write(std::string_view(out)), out.clear();
    }
    write(std::string_view(out));
  }

  std::size_t size() const { return data_.size(); }
  /// The bytes the keys hold by the hub's count (what --maxmemory limits): each key's and
  /// element's bytes, plus kKeyOverhead a key and kElementOverhead an element or string.
  std::size_t usedMemory() const { return used_; }
  static constexpr std::size_t kKeyOverhead = 64, kElementOverhead = 32;
  const std::unordered_map<std::string, Value>& data() const { return data_; }

  static constexpr std::string_view kWrongType =
      "WRONGTYPE Operation against a key holding the wrong kind of value";

 private:
  static std::string upper(std::string_view s) {
    std::string r(s);
    for (char& c : r)
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    return r;
  }

  void tell(const Command& change) {
    if (changed) changed(change);
  }

  static std::string endName(End end) { return end == End::left ? "LEFT" : "RIGHT"; }

  static std::string arityError(const Command& cmd) {
    std::string name = cmd[0];
    for (char& c : name)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return "ERR wrong number of arguments for '" + name + "' command";
  }

  static bool integerArgument(std::string& out, const std::string& arg, long long& value) {
    if (detail::parseInteger(arg, value)) return true;
    appendError(out, "ERR value is not an integer or out of range");
    return false;
  }

  static std::size_t keyBytes(const std::string& key) { return key.size() + kKeyOverhead; }
  static std::size_t elementBytes(const std::string& e) { return e.size() + kElementOverhead; }

  void eraseKey(std::unordered_map<std::string, Value>::iterator it) {
    used_ -= keyBytes(it->first);
    if (const auto* list = std::get_if<List>(&it->second))
      for (const auto& e : *list) used_ -= elementBytes(e);
    else
      used_ -= elementBytes(std::get<std::string>(it->second));
    data_.erase(it);
  }

  template <class T>
  void pushTo(List& list, T&& element, End end) {
    used_ += elementBytes(element);
    if (end == End::left)
      list.push_front(std::forward<T>(element));
    else
      list.push_back(std::forward<T>(element));
  }

  // Removes the element at `end` and returns it.
  std::string take(List& list, End end) {
    std::string& e = end == End::left ? list.front() : list.back();
    used_ -= elementBytes(e);
    std::string taken = std::move(e);
    if (end == End::left)
      list.pop_front();
    else
      list.pop_back();
    return taken;
  }
  void popFrom(List& list, End end) { static_cast<void>(take(list, end)); }

  // The list at `key` for reading: false after replying `missing` (raw RESP) or WRONGTYPE.
  bool readList(std::string& out, const std::string& key, const List*& list,
                std::string_view missing) const {
    const auto it = data_.find(key);
    if (it == data_.end()) return out.append(missing), false;
    list = std::get_if<List>(&it->second);
    if (list == nullptr) return appendError(out, kWrongType), false;
    return true;
  }

  // The list at `key` for writing, created if missing (then listCreated is told); null after
  // replying WRONGTYPE.
  List* writableList(std::string& out, const std::string& key) {
    auto it = data_.find(key);
    if (it == data_.end()) {
      it = data_.try_emplace(key, std::in_place_type<List>).first;
      used_ += keyBytes(key);
      if (listCreated) listCreated(key);
      return &std::get<List>(it->second);
    }
    List* list = std::get_if<List>(&it->second);
    if (list == nullptr) appendError(out, kWrongType);
    return list;
  }

  std::unordered_map<std::string, Value> data_;
  std::size_t used_ = 0;
};

}  // namespace hub
