// The hub's protocol layer: the publish/subscribe subset of Redis RESP2, network-free.
//
// Requests are parsed the way redis-server 7 parses them (src/networking.c), quirks included,
// so a client sees the same replies and the same protocol errors from the hub as from Redis:
// - a request starting with '*' is a RESP array of bulk strings; anything else is an inline
//   command, split on spaces with Redis' quoting rules ("...", '...', \xHH escapes);
// - the two bytes after a bulk string's data are skipped, not checked (Redis does the same);
// - like Redis' strchr() over its NUL-terminated buffer, a line never ends after a NUL byte:
//   such a request waits until it is too long and then fails;
// - a line (inline command, `*N`, `$N`) must end within Limits::maxInlineLength bytes. Redis
//   checks that only when a read leaves the buffer without a line end, so a longer line that
//   arrives in one read may pass there; here the outcome never depends on how bytes arrive.
#pragma once

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hub {

/// One request: the command name and its arguments, binary-safe.
using Command = std::vector<std::string>;

/// Limits on a request. Redis' own values are in the comments.
struct Limits {
  std::size_t maxBulkLength = 64 * 1024 * 1024;  // proto-max-bulk-len: 512 MiB
  std::size_t maxInlineLength = 64 * 1024;       // PROTO_INLINE_MAX_SIZE: 64 KiB
  std::size_t maxArguments = 1024 * 1024;        // INT_MAX in Redis 7 (1024 * 1024 before)
};

namespace detail {

inline bool isSpace(char c) {  // isspace() in the C locale, as Redis uses it
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

inline int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline char unescape(char c) {  // the byte after a backslash in double quotes
  constexpr std::string_view from = "nrtba", to = "\n\r\t\b\a";
  const auto k = from.find(c);
  return k == std::string_view::npos ? c : to[k];
}

/// Redis' string2ll(): an optional '-', then digits without leading zeros, at most 20 bytes.
inline bool parseInteger(std::string_view s, long long& value) {
  if (s.empty() || s.size() > 20) return false;
  if (s == "0") return value = 0, true;
  const bool negative = s[0] == '-';
  if (negative) s.remove_prefix(1);
  if (s.empty() || s[0] < '1' || s[0] > '9') return false;
  unsigned long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<unsigned long long>(c - '0');
    if (v > (~0ULL - digit) / 10) return false;
    v = v * 10 + digit;
  }
  const auto max = static_cast<unsigned long long>(LLONG_MAX);
  if (v > max + (negative ? 1 : 0)) return false;
  value = negative ? static_cast<long long>(0 - v) : static_cast<long long>(v);
  return true;
}

}  // namespace detail

/// Splits an inline command line into arguments like Redis' sdssplitargs(): blanks separate
/// arguments; "double quotes" take \n \r \t \b \a \xHH and \<any> escapes; 'single quotes' take
/// only \'; a closing quote must be followed by a blank or the end. Returns false on
/// unbalanced quotes. A NUL byte ends the line, as in C. Appends to `out`.
inline bool splitArgs(std::string_view line, Command& out) {
  line = line.substr(0, line.find('\0'));
  auto at = [&](std::size_t k) { return k < line.size() ? line[k] : '\0'; };
  std::size_t i = 0;
  for (;;) {
    while (i < line.size() && detail::isSpace(line[i])) ++i;
    if (i == line.size()) return true;
    std::string arg;
    bool inDouble = false, inSingle = false, done = false;
    while (!done) {
      const char c = at(i);
      if (inDouble) {
        if (c == '\\' && at(i + 1) == 'x' && detail::hexValue(at(i + 2)) >= 0 &&
            detail::hexValue(at(i + 3)) >= 0) {
          arg += static_cast<char>(detail::hexValue(at(i + 2)) * 16 + detail::hexValue(at(i + 3)));
          i += 3;
        } else if (c == '\\' && at(i + 1) != '\0') {
          arg += detail::unescape(at(++i));
        } else if (c == '"') {
          if (at(i + 1) != '\0' && !detail::isSpace(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          arg += c;
        }
      } else if (inSingle) {
        if (c == '\\' && at(i + 1) == '\'') {
          arg += at(++i);
        } else if (c == '\'') {
          if (at(i + 1) != '\0' && !detail::isSpace(at(i + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          arg += c;
        }
      } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0') {
        done = true;
      } else if (c == '"') {
        inDouble = true;
      } else if (c == '\'') {
        inSingle = true;
      } else {
        arg += c;
      }
      if (at(i) != '\0') ++i;
    }
    out.push_back(std::move(arg));
  }
}

/// Incremental request parser: feed() it bytes as they arrive, in chunks of any size, then
/// call next() until it returns false. After a protocol error, failed() is true and error()
/// is the message to reply with (see appendError); Redis then closes the connection.
///
///   parser.feed(chunk);
///   hub::Command cmd;
///   while (parser.next(cmd)) execute(cmd);
///   if (parser.failed()) { hub::appendError(out, parser.error()); closeAfterWrite(); }
class RequestParser {
 public:
  explicit RequestParser(Limits limits = {}) : limits_(limits) {}

  /// Appends received bytes. After a protocol error they are dropped.
  void feed(std::string_view bytes) {
    if (failed()) return;
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    } else if (pos_ >= 4096 && pos_ >= buf_.size() / 2) {
      buf_.erase(0, pos_);  // linear in what is left, which is at most what was consumed
      pos_ = 0;
    }
    buf_.append(bytes);
  }

  /// Moves the next complete command into `out` and returns true; returns false when more
  /// bytes are needed or on a protocol error. Empty commands (blank lines, `*0`) are skipped.
  /// What `out` held becomes storage for the commands to come: a caller that reuses one
  /// Command for several next() calls saves an allocation per argument.
  bool next(Command& out) {
    while (!failed() && pos_ < buf_.size()) {
      if (!inRequest_) {
        multibulk_ = buf_[pos_] == '*';
        inRequest_ = true;
      }
      if (!(multibulk_ ? parseMultibulk() : parseInline())) return false;
      inRequest_ = false;
      if (argc_ > 0) {
        args_.resize(argc_);
        out.swap(args_);
        argc_ = 0;
        dropLargeStorage(args_);
        return true;
      }
    }
    releaseLargeBuffer();
    dropLargeStorage(out);  // the last command's: an idle connection keeps no large request
    return false;
  }

  /// Bytes the parser holds allocated for its buffer (a large request's are let go once it
  /// has been read).
  std::size_t capacity() const { return buf_.capacity(); }

  bool failed() const { return !error_.empty(); }
  /// The error without the leading '-', e.g. "ERR Protocol error: invalid bulk length".
  const std::string& error() const { return error_; }
  /// Bytes received and not yet consumed (a partial request).
  std::size_t buffered() const { return buf_.size() - pos_; }
  /// Whether a request has begun and is not complete yet, once next() returned false: bytes are
  /// buffered, or an array's header lines were consumed and its elements are awaited. A
  /// server times such a request (the hub's --request-timeout).
  bool pending() const { return !failed() && (inRequest_ || buffered() > 0); }

 private:
  bool fail(std::string_view what) {
    error_ = "ERR Protocol error: ";
    error_ += what;
    return false;
  }

  std::size_t available() const { return buf_.size() - pos_; }

  // Finds the line end `term` of the line at pos_, searching no further than the limit allows;
  // a NUL byte hides everything after it. Returns its index, or npos. Resumes where the last
  // search stopped, so a line that arrives byte by byte is scanned once.
  std::size_t findLineEnd(char term) {
    if (sawNul_) return std::string::npos;
    const std::size_t window =
        available() > limits_.maxInlineLength ? limits_.maxInlineLength + 1 : available();
    for (std::size_t i = pos_ + scanned_; i < pos_ + window; ++i) {
      if (buf_[i] == term) return scanned_ = i - pos_, i;
      if (buf_[i] == '\0') return sawNul_ = true, std::string::npos;
    }
    scanned_ = window;
    return std::string::npos;
  }

  void consumeTo(std::size_t next) {
    pos_ = next;
    scanned_ = 0;
  }

  bool tooLong() const { return available() > limits_.maxInlineLength; }

  bool parseInline() {
    const std::size_t nl = findLineEnd('\n');
    if (nl == std::string::npos) return tooLong() ? fail("too big inline request") : false;
    std::string_view line(buf_.data() + pos_, nl - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    args_.clear();
    if (!splitArgs(line, args_)) return fail("unbalanced quotes in request");
    argc_ = args_.size();
    consumeTo(nl + 1);
    return true;
  }

  // The common `*N` / `$N` line in one pass: `kind`, 1 to 18 digits without a leading zero
  // (so no overflow), '\r' and the byte after it, all received and within the line limit.
  // Returns false, consuming nothing, for anything else: readCountLine() then decides.
  bool readShortCount(char kind, long long& n) {
    if (sawNul_ || buf_[pos_] != kind) return false;
    const std::size_t digitsEnd = std::min(buf_.size(), pos_ + 19);  // kind, 18 digits at most
    std::size_t i = pos_ + 1;
    long long value = 0;
    for (; i < digitsEnd && buf_[i] >= '0' && buf_[i] <= '9'; ++i)
      value = value * 10 + (buf_[i] - '0');
    const std::size_t digits = i - pos_ - 1;
    if (digits == 0 || i + 1 >= buf_.size() || buf_[i] != '\r') return false;
    if (digits > 1 && buf_[pos_ + 1] == '0') return false;  // invalid: leading zero
    if (i - pos_ > limits_.maxInlineLength) return false;   // too long (a tiny --max-inline)
    n = value;
    consumeTo(i + 2);
    return true;
  }

  // Reads the `*N` or `$N` line at pos_ (`kind` is '*' or '$') and consumes it; `valid` tells
  // whether N is an integer. Returns false when more bytes are needed or on an error.
  bool readCountLine(char kind, std::string_view tooLongError, long long& n, bool& valid) {
    if (readShortCount(kind, n)) {
      valid = true;
      return true;
    }
    const std::size_t cr = findLineEnd('\r');
    if (cr == std::string::npos) return tooLong() ? fail(tooLongError) : false;
    if (cr + 1 == buf_.size()) return false;  // the byte after '\r' (never checked to be '\n')
    // Only '$' can differ (a request starts with '*' to get here). Redis' error lines have CR
    // and LF replaced by spaces.
    if (buf_[pos_] != kind) {
      const char got = buf_[pos_] == '\r' || buf_[pos_] == '\n' ? ' ' : buf_[pos_];
      return fail(std::string("expected '$', got '") + got + '\'');
    }
    valid = detail::parseInteger({buf_.data() + pos_ + 1, cr - pos_ - 1}, n);
    consumeTo(cr + 2);
    return true;
  }

  bool parseMultibulk() {
    long long n = 0;
    bool valid = false;
    if (remaining_ == 0) {
      if (!readCountLine('*', "too big mbulk count string", n, valid)) return false;
      const auto max = std::min<std::size_t>(limits_.maxArguments, INT_MAX);
      if (!valid || n > static_cast<long long>(max)) return fail("invalid multibulk length");
      if (n <= 0) return true;  // an empty command, skipped
      remaining_ = static_cast<std::size_t>(n);
      args_.reserve(std::min<std::size_t>(remaining_, 1024));
    }
    while (remaining_ > 0) {
      if (bulkLength_ < 0) {
        if (!readCountLine('$', "too big bulk count string", n, valid)) return false;
        if (!valid || n < 0 || static_cast<unsigned long long>(n) > limits_.maxBulkLength)
          return fail("invalid bulk length");
        bulkLength_ = n;
      }
      const auto need = static_cast<std::size_t>(bulkLength_) + 2;  // data, then 2 skipped bytes
      if (available() < need) {
        // A large argument gets a buffer of its size at once, starting with it: no doubling
        // and copying while it arrives, and the buffer becomes the argument (as Redis does).
        if (need > kLargeArgument && buf_.capacity() < need) {
          buf_.erase(0, pos_);
          consumeTo(0);
          buf_.reserve(need);
        }
        return false;
      }
      if (pos_ == 0 && need > kLargeArgument) {
        std::string rest(buf_, need);  // a pipelined next request, if any
        buf_.resize(static_cast<std::size_t>(bulkLength_));
        if (argc_ == args_.size()) args_.emplace_back();
        args_[argc_++] = std::exchange(buf_, std::move(rest));
        consumeTo(0);
      } else {
        addArgument({buf_.data() + pos_, static_cast<std::size_t>(bulkLength_)});
        consumeTo(pos_ + need);
      }
      bulkLength_ = -1;
      --remaining_;
    }
    return true;
  }

  // Arguments are assigned into the strings left in args_ by earlier commands, reusing them.
  void addArgument(std::string_view arg) {
    if (argc_ == args_.size()) args_.emplace_back();
    args_[argc_++].assign(arg);
  }

  // Everything read: a buffer grown past 64 KiB by a large request is let go, not kept for the
  // life of the connection.
  void releaseLargeBuffer() {
    if (pos_ != buf_.size() || buf_.capacity() <= 64 * 1024) return;
    std::string().swap(buf_);
    pos_ = 0;
  }

  // Argument strings are kept for reuse, but not large ones: one big request must not stay
  // allocated for the life of the connection.
  static void dropLargeStorage(Command& command) {
    static constexpr std::size_t kKeepArguments = 64, kKeepBytes = 4096;
    if (command.size() > kKeepArguments) {
      Command().swap(command);
      return;
    }
    for (auto& arg : command)
      if (arg.capacity() > kKeepBytes) std::string().swap(arg);  // (assigning "" keeps it)
  }

  static constexpr std::size_t kLargeArgument = 64 * 1024;

  Limits limits_;
  std::string buf_;
  std::size_t pos_ = 0;      // start of the unconsumed bytes in buf_
  std::size_t scanned_ = 0;  // bytes after pos_ already searched for a line end
  bool sawNul_ = false;      // the line at pos_ has a NUL byte: it can never end
  bool inRequest_ = false;
  bool multibulk_ = false;
  std::size_t remaining_ = 0;  // bulk strings still to read in the current array
  long long bulkLength_ = -1;  // length of the bulk string being read, -1 before its header
  Command args_;               // the arguments of the command being read: the first argc_
  std::size_t argc_ = 0;       // arguments read so far (args_ may hold more strings, for reuse)
  std::string error_;
};

// Reply encoders: each appends one RESP2 value to `out`.

namespace detail {

// A line of `kind` and a decimal number (`:5`, `$5`, `*5`, then CRLF), appended in one step.
inline void appendNumberLine(std::string& out, char kind, long long value) {
  char line[24];  // the kind, a sign and 19 digits, CR, LF
  line[0] = kind;
  char* end = std::to_chars(line + 1, line + sizeof line - 2, value).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out.append(line, end);
}

// Makes room for `more` bytes at once, growing geometrically as append() would: a value
// built up from several appends then allocates once instead of once per append.
inline void reserveMore(std::string& out, std::size_t more) {
  if (out.capacity() - out.size() < more)
    out.reserve(std::max(out.size() + more, 2 * out.capacity()));
}

}  // namespace detail

/// `s` must not contain CR or LF.
inline void appendSimpleString(std::string& out, std::string_view s) {
  out += '+';
  out += s;
  out += "\r\n";
}

/// `message` includes the code, e.g. "ERR unknown command". Like Redis, line breaks at the
/// ends are dropped and those inside become spaces, so the reply stays one line.
inline void appendError(std::string& out, std::string_view message) {
  const auto first = message.find_first_not_of("\r\n");
  message = first == std::string_view::npos
                ? std::string_view()
                : message.substr(first, message.find_last_not_of("\r\n") - first + 1);
  out += '-';
  for (char c : message) out += c == '\r' || c == '\n' ? ' ' : c;
  out += "\r\n";
}

inline void appendInteger(std::string& out, long long value) {
  detail::appendNumberLine(out, ':', value);
}

inline void appendBulkString(std::string& out, std::string_view s) {
  detail::reserveMore(out, s.size() + 32);  // the header, the data, CRLF
  detail::appendNumberLine(out, '$', static_cast<long long>(s.size()));
  out += s;
  out += "\r\n";
}

inline void appendNullBulkString(std::string& out) { out += "$-1\r\n"; }

inline void appendArrayHeader(std::string& out, std::size_t count) {
  detail::appendNumberLine(out, '*', static_cast<long long>(count));
}

/// A command as a client sends it: an array of bulk strings.
inline void appendCommand(std::string& out, const Command& args) {
  appendArrayHeader(out, args.size());
  for (const auto& a : args) appendBulkString(out, a);
}

namespace detail {

// Redis' stringmatchlen() (util.c), case-sensitive. Bytes past the end read as NUL, as they do
// in Redis' NUL-terminated strings; ranges compare bytes as signed char, as Redis on x86-64.
// `skipLonger` and the nesting cap are Redis' guards against exponential backtracking.
inline bool globMatch(std::string_view p, std::string_view s, bool& skipLonger, int nesting) {
  if (nesting > 1000) return false;
  auto pat = [&](std::size_t k) { return k < p.size() ? p[k] : '\0'; };
  std::size_t pi = 0, si = 0;
  while (pi < p.size() && si < s.size()) {
    switch (p[pi]) {
      case '*':
        while (pat(pi + 1) == '*') ++pi;
        if (pi + 1 == p.size()) return true;
        for (; si < s.size(); ++si) {
          if (globMatch(p.substr(pi + 1), s.substr(si), skipLonger, nesting + 1)) return true;
          if (skipLonger) return false;
        }
        skipLonger = true;  // the rest matches no suffix, so no longer '*' match can help
        return false;
      case '?':
        ++si;
        break;
      case '[': {
        ++pi;
        const bool negate = pat(pi) == '^';
        if (negate) ++pi;
        bool match = false;
        for (;; ++pi) {
          if (pat(pi) == '\\' && p.size() - pi >= 2) {
            ++pi;
            if (p[pi] == s[si]) match = true;
          } else if (pat(pi) == ']') {
            break;
          } else if (pi == p.size()) {  // no closing ']': the class ends with the pattern
            --pi;
            break;
          } else if (p.size() - pi >= 3 && p[pi + 1] == '-') {
            int lo = static_cast<signed char>(p[pi]), hi = static_cast<signed char>(p[pi + 2]);
            if (lo > hi) std::swap(lo, hi);
            const int c = static_cast<signed char>(s[si]);
            if (c >= lo && c <= hi) match = true;
            pi += 2;
          } else if (p[pi] == s[si]) {
            match = true;
          }
        }
        if (match == negate) return false;
        ++si;
        break;
      }
      case '\\':
        if (p.size() - pi >= 2) ++pi;
        [[fallthrough]];
      default:
        if (p[pi] != s[si]) return false;
        ++si;
        break;
    }
    ++pi;
    if (si == s.size()) {
      while (pat(pi) == '*') ++pi;
      break;
    }
  }
  return pi == p.size() && si == s.size();
}

}  // namespace detail

/// Redis glob matching, as PSUBSCRIBE uses it: `*` any run, `?` any byte, `[abc]`, `[^a]`,
/// `[a-z]`, and `\` to take the next byte literally. Binary-safe.
inline bool globMatch(std::string_view pattern, std::string_view string) {
  bool skipLonger = false;
  return detail::globMatch(pattern, string, skipLonger, 0);
}

}  // namespace hub
