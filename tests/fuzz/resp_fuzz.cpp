// libFuzzer target for the hub's RESP2 layer (examples/hub/resp.hpp).
//
// Input: one byte choosing the limits, then the byte stream a client would send. Checks that
// - the stream gives the same commands, error and leftover whether it arrives in one chunk, in
//   chunks cut where the input says, or byte by byte;
// - every parsed command survives encoding as a RESP array, and as a quoted inline line;
// - the reply encoders produce well-formed RESP2 values;
// and runs globMatch over the parsed arguments, with two identities that must hold.
#include "hub/resp.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Result {
  std::vector<hub::Command> commands;
  std::string error;
  std::size_t buffered = 0;  // compared only without an error: bytes after it are ignored
  bool operator==(const Result& o) const {
    return commands == o.commands && error == o.error && (!error.empty() || buffered == o.buffered);
  }
};

void check(bool ok) {
  if (!ok) std::abort();
}

void drain(hub::RequestParser& parser, Result& r) {
  hub::Command cmd;
  while (parser.next(cmd)) r.commands.push_back(cmd);
  r.error = parser.error();
  r.buffered = parser.buffered();
}

// Feeds `data` in chunks whose sizes come from `sizes` (cycled; 0 means 1).
Result parseChunked(std::string_view data, hub::Limits limits, std::string_view sizes) {
  hub::RequestParser parser(limits);
  Result r;
  for (std::size_t i = 0, k = 0; i < data.size() && !parser.failed(); ++k) {
    const std::size_t n =
        sizes.empty() ? 1 : 1 + static_cast<unsigned char>(sizes[k % sizes.size()]) % 64;
    parser.feed(data.substr(i, n));
    i += std::min(n, data.size() - i);
    drain(parser, r);
  }
  drain(parser, r);
  return r;
}

// An inline line that splitArgs() turns back into `args`: each byte as \xHH in double quotes.
std::string quoteInline(const hub::Command& args) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string line;
  for (const auto& a : args) {
    line += line.empty() ? "\"" : " \"";
    for (unsigned char c : a) line += {'\\', 'x', hex[c >> 4], hex[c & 15]};
    line += '"';
  }
  return line;
}

void checkEncoders(const std::string& arg) {
  std::string out;
  hub::appendBulkString(out, arg);
  check(out == "$" + std::to_string(arg.size()) + "\r\n" + arg + "\r\n");

  out.clear();
  hub::appendError(out, arg);
  check(out.size() >= 3 && out[0] == '-' && out.ends_with("\r\n"));
  check(out.find_first_of("\r\n", 1) == out.size() - 2);  // one line

  out.clear();
  unsigned long long hash = 0;
  for (unsigned char c : arg) hash = hash * 131 + c;
  const auto value = static_cast<long long>(hash);  // any value, negative too
  hub::appendInteger(out, value);
  check(out == ":" + std::to_string(value) + "\r\n");
}

void checkGlob(const std::string& pattern, const std::string& text) {
  (void)hub::globMatch(pattern, text);
  // Every byte escaped matches exactly the string itself.
  std::string escaped;
  for (char c : text) escaped += {'\\', c};
  check(hub::globMatch(escaped, text));
  check(hub::globMatch("*", text) == !text.empty());  // '*' needs at least one byte in Redis
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(bytes), size);
  hub::Limits limits;  // defaults, or small limits so that every limit is reached
  const auto mode = static_cast<unsigned char>(input[0]);
  if (mode & 1) limits = {std::size_t(mode >> 1 & 15), std::size_t(mode >> 5) * 9, 3};
  const std::string_view data = input.substr(1);

  hub::RequestParser whole(limits);
  whole.feed(data);
  Result one;
  drain(whole, one);

  check(parseChunked(data, limits, input) == one);
  if (data.size() <= 4096) check(parseChunked(data, limits, {}) == one);

  hub::Limits roomy{SIZE_MAX, SIZE_MAX, SIZE_MAX};
  for (const auto& cmd : one.commands) {
    check(!cmd.empty());
    std::string wire;
    hub::appendCommand(wire, cmd);
    hub::RequestParser again(roomy);
    again.feed(wire);
    hub::Command back;
    check(again.next(back) && back == cmd && again.buffered() == 0 && !again.failed());

    hub::Command split;
    check(hub::splitArgs(quoteInline(cmd), split) && split == cmd);

    for (const auto& arg : cmd) checkEncoders(arg);
    checkGlob(cmd[0], cmd.size() > 1 ? cmd[1] : cmd[0]);
  }
  if (!one.error.empty()) {
    check(one.error.starts_with("ERR Protocol error: "));
    std::string out;
    hub::appendError(out, one.error);
    check(out == "-" + one.error + "\r\n");  // already one clean line
  }
  return 0;
}
