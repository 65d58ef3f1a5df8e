// The hub's RESP2 layer (examples/hub/resp.hpp). Expected bytes and error texts were observed
// from redis-server 7.0.15 on the same input; cases marked "Redis' tests" come from Redis' own
// test suite (tests/unit/protocol.tcl, keyspace.tcl, pubsub.tcl).
#include "hub/keyspace.hpp"
#include "hub/resp.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <climits>
#include <string>
#include <string_view>
#include <vector>

using namespace std::string_literals;
using hub::Command;

namespace {

struct Parsed {
  std::vector<Command> commands;
  std::string error;  // empty: no protocol error
  std::size_t buffered = 0;
};

Parsed drain(hub::RequestParser& parser, Parsed parsed) {
  Command cmd;
  while (parser.next(cmd)) parsed.commands.push_back(cmd);
  parsed.error = parser.error();
  parsed.buffered = parser.buffered();
  return parsed;
}

Parsed parse(std::string_view input, hub::Limits limits = {}) {
  hub::RequestParser parser(limits);
  parser.feed(input);
  return drain(parser, {});
}

// Feeds `input` in pieces cut at `cuts` (ascending offsets), draining after each piece.
Parsed parseInPieces(std::string_view input, const std::vector<std::size_t>& cuts,
                     hub::Limits limits = {}) {
  hub::RequestParser parser(limits);
  Parsed parsed;
  std::size_t from = 0;
  for (std::size_t cut : cuts) {
    parser.feed(input.substr(from, cut - from));
    parsed = drain(parser, std::move(parsed));
    from = cut;
  }
  parser.feed(input.substr(from));
  return drain(parser, std::move(parsed));
}

// What a client receives for the parser's error.
std::string errorReply(std::string_view input, hub::Limits limits = {}) {
  std::string out;
  hub::appendError(out, parse(input, limits).error);
  return out;
}

// redis-server's own limits, for comparisons at its boundaries.
constexpr hub::Limits kRedisLimits{std::size_t{512} << 20, std::size_t{64} << 10, INT_MAX};

}  // namespace

TEST_SUITE("hub::RequestParser") {
  TEST_CASE("a RESP array of bulk strings is one command") {
    auto p = parse("*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n");
    REQUIRE(p.commands.size() == 1);
    CHECK(p.commands[0] == Command{"ECHO", "hello"});
    CHECK(p.error.empty());
    CHECK(p.buffered == 0);
  }

  TEST_CASE("bulk strings are binary-safe: CR, LF and NUL inside survive") {
    auto p = parse("*3\r\n$7\r\nPUBLISH\r\n$4\r\n\r\n\r\n\r\n$5\r\na\0b\r\n\r\n"s);
    REQUIRE(p.commands.size() == 1);
    CHECK(p.commands[0] == Command{"PUBLISH", "\r\n\r\n", "a\0b\r\n"s});
  }

  TEST_CASE("an empty bulk string is an empty argument") {
    auto p = parse("*2\r\n$4\r\nECHO\r\n$0\r\n\r\n");
    REQUIRE(p.commands.size() == 1);
    CHECK(p.commands[0] == Command{"ECHO", ""});
  }

  TEST_CASE("the two bytes after bulk data are skipped without being checked, as Redis does") {
    auto p = parse("*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n");
    CHECK(p.commands == std::vector<Command>{{"PING"}, {"PING"}});
    CHECK(p.error.empty());
  }

  TEST_CASE("the byte after the CR of a count line is skipped without being checked") {
    auto p = parse("*1\rx$4\r\nPING\r\n");
    CHECK(p.commands == std::vector<Command>{{"PING"}});
  }

  TEST_CASE("empty arrays (*0, *-1, *-10) are skipped, like an empty query (Redis' tests)") {
    auto p = parse("*0\r\n*-1\r\n*-10\r\n\r\nPING\r\n");
    CHECK(p.commands == std::vector<Command>{{"PING"}});
    CHECK(p.error.empty());
  }

  TEST_CASE("an inline command is split on blanks and ends at LF, with or without CR") {
    auto p = parse("ECHO  hello\r\nPING\n  SUBSCRIBE\ta b  \r\n");
    CHECK(p.commands == std::vector<Command>{{"ECHO", "hello"}, {"PING"}, {"SUBSCRIBE", "a", "b"}});
  }

  TEST_CASE("blank inline lines are skipped") {
    auto p = parse("\r\n\n   \r\n\t\nPING\n");
    CHECK(p.commands == std::vector<Command>{{"PING"}});
  }

  TEST_CASE("only one CR before the LF belongs to the line end") {
    auto p = parse("ECHO a\r\r\n");  // the first CR separates, like a blank
    CHECK(p.commands == std::vector<Command>{{"ECHO", "a"}});
  }

  TEST_CASE("inline quoting follows Redis' sdssplitargs") {
    struct Case {
      std::string line;
      Command args;
    };
    // Each reply was checked with ECHO against redis-server.
    const std::vector<Case> cases = {
        {R"(ECHO "\x41\x4")", {"ECHO", "Ax4"}},  // \xHH needs two hex digits
        {R"(ECHO "a\"b")", {"ECHO", "a\"b"}},
        {R"(ECHO "a\nb\r\t\b\a\z")", {"ECHO", "a\nb\r\t\b\az"}},
        {R"(ECHO 'a\'b')", {"ECHO", "a'b"}},
        {R"(ECHO 'a\nb')", {"ECHO", R"(a\nb)"}},  // single quotes keep backslashes
        {R"(ECHO a"b c")", {"ECHO", "ab c"}},     // a quote may open mid-argument
        {R"(ECHO "")", {"ECHO", ""}},
        {"ECHO a\rb", {"ECHO", "a", "b"}},  // CR separates arguments
        {"ECHO a\vb", {"ECHO", "a\vb"}},    // \v and \f do not separate ...
        {"ECHO \va", {"ECHO", "a"}},        // ... but are skipped between arguments
        {"ECHO \"x\"\v", {"ECHO", "x"}},    // and may follow a closing quote
        {"ECHO \xe9", {"ECHO", "\xe9"}},    // other bytes pass through
        {R"(ECHO "\x00")", {"ECHO", "\0"s}},
    };
    for (const auto& c : cases) {
      CAPTURE(c.line);
      auto p = parse(c.line + "\r\n");
      CHECK(p.error.empty());
      CHECK(p.commands == std::vector<Command>{c.args});
    }
  }

  TEST_CASE("a pipelined stream gives the same commands split at every byte boundary") {
    const std::string stream =
        "*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$3\r\nb\r\n\r\n"
        "PING\r\n\r\n*0\r\nECHO \"x y\" 'z'\n"
        "*2\r\n$7\r\nPUBLISH\r\n$6\r\n\0\r\n*\r\n\r\n"s
        "*-1\r\n*1\r\n$4\r\nPINGzz  PSUBSCRIBE h?llo\r\n";
    const auto whole = parse(stream);
    REQUIRE(whole.commands.size() == 6);
    CHECK(whole.commands[0] == Command{"SUBSCRIBE", "a", "b\r\n"});
    CHECK(whole.commands[1] == Command{"PING"});
    CHECK(whole.commands[2] == Command{"ECHO", "x y", "z"});
    CHECK(whole.commands[3] == Command{"PUBLISH", "\0\r\n*\r\n"s});
    CHECK(whole.commands[4] == Command{"PING"});
    CHECK(whole.commands[5] == Command{"PSUBSCRIBE", "h?llo"});
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      CAPTURE(cut);
      CHECK(parseInPieces(stream, {cut}).commands == whole.commands);
    }
    for (std::size_t a = 1; a < stream.size(); a += 3) {
      for (std::size_t b = a; b < stream.size(); b += 5) {
        CHECK(parseInPieces(stream, {a, b}).commands == whole.commands);
      }
    }
    std::vector<std::size_t> everyByte;
    for (std::size_t i = 1; i < stream.size(); ++i) everyByte.push_back(i);
    CHECK(parseInPieces(stream, everyByte).commands == whole.commands);
  }

  TEST_CASE("a protocol error is the same wherever the stream is split") {
    const std::string stream = "PING\r\n*2\r\n$4\r\nECHO\r\n$-5\r\nPING\r\n";
    const auto whole = parse(stream);
    CHECK(whole.commands == std::vector<Command>{{"PING"}});
    CHECK(whole.error == "ERR Protocol error: invalid bulk length");
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      const auto pieces = parseInPieces(stream, {cut});
      CHECK(pieces.commands == whole.commands);
      CHECK(pieces.error == whole.error);
    }
  }

  TEST_CASE("an incomplete request waits for more bytes and reports what is buffered") {
    hub::RequestParser parser;
    Command cmd;
    parser.feed("*2\r\n$4\r\nECHO\r\n$5\r\nhel");
    CHECK_FALSE(parser.next(cmd));
    CHECK_FALSE(parser.failed());
    CHECK(parser.buffered() == 3);  // the header lines are consumed, the data is not
    parser.feed("lo\r\n");
    REQUIRE(parser.next(cmd));
    CHECK(cmd == Command{"ECHO", "hello"});
    CHECK(parser.buffered() == 0);
  }

  TEST_CASE("pending() is false exactly between requests, however the stream arrives") {
    // Requests, blank lines and empty arrays; pending() must be false only at their boundaries.
    const std::vector<std::string> pieces = {"PING\r\n", "*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n",
                                             "\r\n",     "*0\r\n",
                                             "ECHO x\n", "*1\r\n$5\r\n\r\n\0ab\r\n"s};
    std::string stream;
    std::vector<std::size_t> boundaries = {0};
    for (const auto& piece : pieces) boundaries.push_back((stream += piece).size());
    hub::RequestParser byteByByte;
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
      hub::RequestParser atOnce;
      atOnce.feed(std::string_view(stream).substr(0, cut));
      drain(atOnce, {});
      if (cut > 0) byteByByte.feed(std::string_view(stream).substr(cut - 1, 1));
      drain(byteByByte, {});
      const bool between = std::ranges::find(boundaries, cut) != boundaries.end();
      CHECK_MESSAGE(atOnce.pending() == !between, "cut at " << cut);
      CHECK_MESSAGE(byteByByte.pending() == !between, "byte " << cut);
    }
  }

  TEST_CASE("pending() covers an array whose header lines are consumed and nothing is buffered") {
    hub::RequestParser parser;
    Command cmd;
    CHECK_FALSE(parser.pending());
    parser.feed("*2\r\n$4\r\nECHO\r\n");
    CHECK_FALSE(parser.next(cmd));
    CHECK(parser.buffered() == 0);
    CHECK(parser.pending());
    parser.feed("$2\r\nhi\r\n");
    REQUIRE(parser.next(cmd));
    CHECK_FALSE(parser.pending());
  }

  TEST_CASE("a failed parser holds no pending request") {
    hub::RequestParser parser;
    Command cmd;
    parser.feed("*1\r\n$x\r\n$4\r\nPI");
    CHECK_FALSE(parser.next(cmd));
    REQUIRE(parser.failed());
    CHECK_FALSE(parser.pending());
  }

  TEST_CASE("commands before a protocol error are delivered, then the parser stays failed") {
    hub::RequestParser parser;
    Command cmd;
    parser.feed("PING\r\n*x\r\nPING\r\n");
    REQUIRE(parser.next(cmd));
    CHECK(cmd == Command{"PING"});
    CHECK_FALSE(parser.next(cmd));
    CHECK(parser.failed());
    parser.feed("PING\r\n");
    CHECK_FALSE(parser.next(cmd));
    CHECK(parser.error() == "ERR Protocol error: invalid multibulk length");
  }

  TEST_CASE("invalid multibulk length: a count that is not a strict integer or too large") {
    const std::string reply = "-ERR Protocol error: invalid multibulk length\r\n";
    for (std::string input : {"*\r\n", "*abc\r\n", "*-0\r\n", "*+1\r\n", "*01\r\n", "*1 \r\n",
                              "*3000000000\r\n" /* Redis' tests */, "*99999999999999999999\r\n",
                              "*111111111111111111111\r\n"}) {
      CAPTURE(input);
      CHECK(errorReply(input) == reply);
    }
    CHECK(errorReply("*2147483648\r\n", kRedisLimits) == reply);  // Redis 7: above INT_MAX
    CHECK(parse("*2147483647\r\n", kRedisLimits).error.empty());  // accepted, then waits
    CHECK(errorReply("*1048577\r\n") == reply);                   // the hub's default maxArguments
    CHECK(parse("*1048576\r\n").error.empty());
  }

  TEST_CASE("expected '$', got 'x': an array element that is not a bulk string") {
    CHECK(errorReply("*1\r\nx\r\n") == "-ERR Protocol error: expected '$', got 'x'\r\n");
    // Redis' tests: "Wrong multibulk payload header", "Multi bulk request not followed by bulk
    // arguments".
    CHECK(errorReply("*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n") ==
          "-ERR Protocol error: expected '$', got 'f'\r\n");
    CHECK(errorReply("*1\r\nfoo\r\n") == "-ERR Protocol error: expected '$', got 'f'\r\n");
    CHECK(errorReply("*2\r\n$4\r\nECHO\r\n*1\r\n") ==
          "-ERR Protocol error: expected '$', got '*'\r\n");
    CHECK(errorReply("*1\r\n\xff\r\n") == "-ERR Protocol error: expected '$', got '\xff'\r\n");
    // A CR or LF in that place is replaced by a space, as Redis sanitizes error lines.
    CHECK(errorReply("*1\r\n\r\n") == "-ERR Protocol error: expected '$', got ' '\r\n");
    CHECK(errorReply("*1\r\n\n$4\r\nPING\r\n") == "-ERR Protocol error: expected '$', got ' '\r\n");
    // The element's line must be complete (up to its CR and one more byte) before the check.
    CHECK(parse("*1\r\nx").error.empty());
    CHECK(parse("*1\r\nx\r").error.empty());
  }

  TEST_CASE("invalid bulk length: negative, not an integer, or above the limit") {
    const std::string reply = "-ERR Protocol error: invalid bulk length\r\n";
    for (std::string input :
         {"*1\r\n$-1\r\n", "*1\r\n$\r\n", "*1\r\n$04\r\n", "*1\r\n$4 \r\n",
          "*1\r\n$111111111111111111111\r\n",
          // Redis' tests: negative, out of range and non-number payload lengths.
          "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$2000000000\r\n",
          "*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n"}) {
      CAPTURE(input);
      CHECK(errorReply(input) == reply);
    }
    CHECK(errorReply("*1\r\n$67108865\r\n") == reply);  // the hub's default: 64 MiB
    CHECK(parse("*1\r\n$67108864\r\n").error.empty());
    CHECK(errorReply("*1\r\n$536870913\r\n", kRedisLimits) == reply);  // proto-max-bulk-len
    CHECK(parse("*1\r\n$536870912\r\n", kRedisLimits).error.empty());
  }

  TEST_CASE("unbalanced quotes in request: an open or badly closed quote on an inline line") {
    const std::string reply = "-ERR Protocol error: unbalanced quotes in request\r\n";
    for (std::string input :
         {"PING \"a\r\n", "PING 'a\r\n", "PING \"a\"b\r\n", "PING 'a'b\r\n", "ECHO \"x\\\r\n",
          "set \"\"\"test-key\"\"\" test-value\r\nping\r\n"}) {
      CAPTURE(input);
      CHECK(errorReply(input) == reply);
    }
  }

  TEST_CASE("too big inline request: no line end within 64 KiB") {
    const std::string reply = "-ERR Protocol error: too big inline request\r\n";
    CHECK(parse(std::string(65536, 'A')).error.empty());  // may still end
    CHECK(errorReply(std::string(65537, 'A')) == reply);
    CHECK(parse("ECHO " + std::string(65530, 'A') + "\r\n").commands.size() == 1);  // LF at 65536
    CHECK(errorReply("ECHO " + std::string(65531, 'A') + "\r\n") == reply);
    // Stricter than Redis on purpose: Redis checks only when a read leaves the buffer without a
    // line end, so there a longer line that arrives in one read may pass.
    CHECK(errorReply("ECHO " + std::string(70000, 'A') + "\r\n") == reply);
  }

  TEST_CASE("too big mbulk count string and too big bulk count string") {
    CHECK(parse("*" + std::string(65535, '1')).error.empty());
    CHECK(errorReply("*" + std::string(65536, '1')) ==
          "-ERR Protocol error: too big mbulk count string\r\n");
    CHECK(parse("*1\r\n$" + std::string(65535, '1')).error.empty());
    CHECK(errorReply("*1\r\n$" + std::string(65536, '1')) ==
          "-ERR Protocol error: too big bulk count string\r\n");
  }

  TEST_CASE("a NUL byte keeps a line from ending until it is too long (Redis' desync tests)") {
    // Redis searches its NUL-terminated buffer with strchr(): nothing after a NUL is seen.
    auto waiting = parse("PING\0\r\nPING\r\n"s);
    CHECK(waiting.commands.empty());
    CHECK(waiting.error.empty());
    CHECK(parse("*1\r\n$4\r\nPI\0G\r\n"s).commands == std::vector<Command>{{"PI\0G"s}});
    const std::string lines = [] {
      std::string s;
      while (s.size() < 70000) s += std::string(1024, 'A') + "\n";
      return s;
    }();
    CHECK(errorReply("\0"s + lines) == "-ERR Protocol error: too big inline request\r\n");
    CHECK(errorReply("$\0"s + lines) == "-ERR Protocol error: too big inline request\r\n");
    CHECK(errorReply("*\0"s + lines) == "-ERR Protocol error: too big mbulk count string\r\n");
    CHECK(errorReply("*1\r\n$\0"s + lines) == "-ERR Protocol error: too big bulk count string\r\n");
  }

  TEST_CASE("limits are configurable") {
    hub::Limits small;
    small.maxBulkLength = 3;
    small.maxInlineLength = 8;
    small.maxArguments = 2;
    CHECK(parse("*1\r\n$3\r\nabc\r\n", small).error.empty());
    CHECK(parse("*1\r\n$4\r\n", small).error == "ERR Protocol error: invalid bulk length");
    CHECK(parse("*2\r\n", small).error.empty());
    CHECK(parse("*3\r\n", small).error == "ERR Protocol error: invalid multibulk length");
    CHECK(parse("ECHO abc\n", small).commands.size() == 1);  // the LF at offset 8 is in reach
    CHECK(parse("ECHO ab\r\n", small).commands.size() == 1);
    CHECK(parse("ECHO abc\r\n", small).error == "ERR Protocol error: too big inline request");
    CHECK(parse("ECHO abcde", small).error == "ERR Protocol error: too big inline request");
  }

  TEST_CASE("count lines obey the line limit, however short they are") {
    hub::Limits tiny;
    tiny.maxInlineLength = 2;  // "*12" is 3 bytes before its CR
    CHECK(parse("*12\r\n", tiny).error == "ERR Protocol error: too big mbulk count string");
    CHECK(parse("*1\r\n$10\r\n", tiny).error == "ERR Protocol error: too big bulk count string");
    tiny.maxInlineLength = 3;
    CHECK(parse("*1\r\n$10\r\n0123456789\r\n", tiny).commands ==
          std::vector<Command>{{"0123456789"}});
    // 18 digits take the short path, 19 the general one; both end as in Redis.
    CHECK(parse("*1\r\n$999999999999999999\r\n").error ==
          "ERR Protocol error: invalid bulk length");
    CHECK(parse("*1\r\n$9223372036854775807\r\n").error ==
          "ERR Protocol error: invalid bulk length");
  }

  TEST_CASE("a Command reused across next() calls holds exactly each command in turn") {
    hub::RequestParser parser;
    const std::string big(100000, 'x');  // above what the parser keeps for reuse
    parser.feed("*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$100000\r\n" + big + "\r\n");
    parser.feed("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING a  b\r\n");
    parser.feed("*3\r\n$1\r\na\r\n$0\r\n\r\n$1\r\nc\r\n");
    Command cmd{"left", "over", "strings", "from", "the", "caller"};
    std::vector<Command> got;
    while (parser.next(cmd)) got.push_back(cmd);
    CHECK(got ==
          std::vector<Command>{
              {"PUBLISH", "c", big}, {"PING"}, {"ECHO", "hi"}, {"PING", "a", "b"}, {"a", "", "c"}});
  }

  TEST_CASE("many pipelined commands in one chunk parse in linear time") {
    std::string stream;
    for (int i = 0; i < 100000; ++i) stream += "*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\nPING\r\n";
    auto p = parse(stream);
    CHECK(p.commands.size() == 200000);
    CHECK(p.error.empty());
  }

  TEST_CASE("a long line or a large bulk string fed byte by byte parses in linear time") {
    hub::RequestParser parser;
    Command cmd;
    const std::string line = "ECHO " + std::string(65000, 'x') + "\r\n";
    for (char c : line) {
      parser.feed(std::string_view(&c, 1));
      if (parser.next(cmd)) break;
    }
    CHECK(cmd.size() == 2);
    CHECK(cmd[1].size() == 65000);
    std::string big = "*2\r\n$4\r\nECHO\r\n$1000000\r\n" + std::string(1000000, '\n') + "\r\n";
    int count = 0;
    bool intact = false;
    for (std::size_t i = 0; i < big.size(); i += 7) {
      parser.feed(std::string_view(big).substr(i, 7));
      while (parser.next(cmd)) {
        ++count;
        intact = cmd.size() == 2 && cmd[1] == std::string(1000000, '\n');
      }
    }
    CHECK(count == 1);
    CHECK(intact);
    CHECK(parser.buffered() == 0);
  }
}

TEST_SUITE("hub::splitArgs") {
  TEST_CASE("splits like sdssplitargs and reports unbalanced quotes") {
    Command out;
    CHECK(hub::splitArgs(R"(  set "a b" 'c d'  e)", out));
    CHECK(out == Command{"set", "a b", "c d", "e"});
    out.clear();
    CHECK_FALSE(hub::splitArgs("\"open", out));
    CHECK(hub::splitArgs("", out));
    CHECK(out.empty());
  }
}

TEST_SUITE("hub reply encoders") {
  TEST_CASE("each encoder appends one RESP2 value") {
    std::string out;
    hub::appendSimpleString(out, "PONG");
    CHECK(out == "+PONG\r\n");
    out.clear();
    hub::appendInteger(out, 0);
    hub::appendInteger(out, -1);
    hub::appendInteger(out, LLONG_MIN);
    CHECK(out == ":0\r\n:-1\r\n:-9223372036854775808\r\n");
    out.clear();
    hub::appendBulkString(out, "a\r\n\0b"s);
    hub::appendBulkString(out, "");
    hub::appendNullBulkString(out);
    CHECK(out == "$5\r\na\r\n\0b\r\n$0\r\n\r\n$-1\r\n"s);
    out.clear();
    hub::appendArrayHeader(out, 0);
    CHECK(out == "*0\r\n");
  }

  TEST_CASE("an error reply stays one line: line breaks inside become spaces, at the ends go") {
    std::string out;
    hub::appendError(out, "ERR unknown command 'a\r\nb'\r\n");
    CHECK(out == "-ERR unknown command 'a  b'\r\n");
  }

  TEST_CASE("a subscribe confirmation and a message push, as redis-server sends them") {
    std::string out;
    hub::appendArrayHeader(out, 3);
    hub::appendBulkString(out, "subscribe");
    hub::appendBulkString(out, "news");
    hub::appendInteger(out, 1);
    hub::appendArrayHeader(out, 4);
    hub::appendBulkString(out, "pmessage");
    hub::appendBulkString(out, "n*");
    hub::appendBulkString(out, "news");
    hub::appendBulkString(out, "hi");
    CHECK(out ==
          "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
          "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n");
  }

  TEST_CASE("an encoded command parses back to the same arguments") {
    const Command args{"PUBLISH", "ch\r\n", "\0\xff"s, ""};
    std::string wire;
    hub::appendCommand(wire, args);
    auto p = parse(wire);
    CHECK(p.commands == std::vector<Command>{args});
  }
}

TEST_SUITE("hub::globMatch") {
  TEST_CASE("the KEYS documentation's examples") {
    CHECK(hub::globMatch("h?llo", "hello"));
    CHECK(hub::globMatch("h?llo", "hallo"));
    CHECK(hub::globMatch("h?llo", "hxllo"));
    CHECK(hub::globMatch("h*llo", "hllo"));
    CHECK(hub::globMatch("h*llo", "heeeello"));
    CHECK(hub::globMatch("h[ae]llo", "hello"));
    CHECK(hub::globMatch("h[ae]llo", "hallo"));
    CHECK_FALSE(hub::globMatch("h[ae]llo", "hillo"));
    CHECK(hub::globMatch("h[^e]llo", "hallo"));
    CHECK(hub::globMatch("h[^e]llo", "hbllo"));
    CHECK_FALSE(hub::globMatch("h[^e]llo", "hello"));
    CHECK(hub::globMatch("h[a-b]llo", "hallo"));
    CHECK(hub::globMatch("h[a-b]llo", "hbllo"));
    CHECK_FALSE(hub::globMatch("h[a-b]llo", "hcllo"));
    CHECK(hub::globMatch("h\\*llo", "h*llo"));
    CHECK_FALSE(hub::globMatch("h\\*llo", "hello"));
  }

  TEST_CASE("PSUBSCRIBE basics (Redis' tests)") {
    CHECK(hub::globMatch("foo.*", "foo.1"));
    CHECK(hub::globMatch("bar.*", "bar.1"));
    CHECK_FALSE(hub::globMatch("foo.*", "foo1"));
    CHECK_FALSE(hub::globMatch("foo.*", "barfoo.1"));
    CHECK_FALSE(hub::globMatch("foo.*", "qux.1"));
  }

  TEST_CASE("the whole string must match, and '*' does not match an empty channel") {
    CHECK_FALSE(hub::globMatch("ab", "abc"));
    CHECK_FALSE(hub::globMatch("abc", "ab"));
    CHECK(hub::globMatch("ab*", "ab"));
    CHECK(hub::globMatch("*", "x"));
    CHECK_FALSE(hub::globMatch("*", ""));  // PUBLISH "" reaches no PSUBSCRIBE * (redis-server)
    CHECK(hub::globMatch("", ""));
  }

  TEST_CASE("binary-safe: NUL and high bytes are ordinary bytes") {
    CHECK(hub::globMatch("a?b", "a\0b"s));
    CHECK(hub::globMatch("a\0b"s, "a\0b"s));
    CHECK_FALSE(hub::globMatch("a\0b"s, "a"));
    CHECK(hub::globMatch("*\xff", "\x80\xff"));
  }

  TEST_CASE("Redis' quirks with malformed patterns, as redis-server matches them") {
    CHECK(hub::globMatch("[abc", "b"));     // an unclosed class ends with the pattern
    CHECK(hub::globMatch("[z-a]", "c"));    // a reversed range is swapped
    CHECK(hub::globMatch("[a-]", "]"));     // '-' then ']' is the range a..]
    CHECK(hub::globMatch("[^", "x"));       // an empty negated class matches any byte
    CHECK_FALSE(hub::globMatch("[", "["));  // an empty class matches nothing
    CHECK_FALSE(hub::globMatch("[]]", "]"));
    CHECK(hub::globMatch("[\\]]", "]"));
    CHECK(hub::globMatch("\\", "\\"));  // a trailing backslash is literal
    CHECK(hub::globMatch("a\\", "a\\"));
    // Ranges compare signed chars, as Redis on x86-64: [a-\xff] is [\xff-a].
    CHECK(hub::globMatch("[a-\xff]", "A"));
    CHECK(hub::globMatch("[a-\xff]", "\xff"));
    CHECK_FALSE(hub::globMatch("[a-\xff]", "b"));
    CHECK_FALSE(hub::globMatch("[a-\xff]", "\x80"));
  }

  TEST_CASE("patterns with many stars finish quickly (Redis' keyspace regression tests)") {
    std::string pattern;
    for (int i = 0; i < 27; ++i) pattern += "a*";
    CHECK_FALSE(hub::globMatch(pattern + "b", std::string(60, 'a')));
    std::string starQuestion;
    for (int i = 0; i < 50000; ++i) starQuestion += "*?";
    CHECK_FALSE(hub::globMatch(starQuestion, std::string(50000, 'a')));
  }

  TEST_CASE("nesting deeper than 1000 stars does not match, as in redis-server") {
    const std::string text(1500, 'a');
    std::string stars;
    for (int i = 0; i < 1000; ++i) stars += "*a";
    CHECK(hub::globMatch(stars, text));
    CHECK_FALSE(hub::globMatch(stars + "*a", text));
  }
}

// The hub's keys (examples/hub/keyspace.hpp). Replies are compared with redis-server's by
// tests/examples/hub_lists_test.py; these cases check what a client cannot see.
TEST_SUITE("hub::Keyspace") {
  std::string run(hub::Keyspace & keys, const Command& cmd) {
    std::string out;
    const std::string name = cmd[0];
    if (name == "LPUSH") keys.push(out, cmd, hub::End::left);
    if (name == "RPUSH") keys.push(out, cmd, hub::End::right);
    if (name == "LPOP") keys.pop(out, cmd, hub::End::left);
    if (name == "LREM") keys.lrem(out, cmd);
    if (name == "LMOVE") keys.lmove(out, cmd);
    if (name == "DEL") keys.del(out, cmd);
    if (name == "SET") keys.set(out, cmd);
    if (name == "FLUSHALL") keys.flushall(out, cmd);
    return out;
  }

  TEST_CASE("usedMemory counts keys and elements, and returns to 0 whichever way they go") {
    hub::Keyspace keys;
    const auto key = hub::Keyspace::kKeyOverhead, element = hub::Keyspace::kElementOverhead;
    run(keys, {"RPUSH", "q", "abc", "de"});
    CHECK(keys.usedMemory() == 1 + key + 5 + 2 * element);
    run(keys, {"LMOVE", "q", "r", "LEFT", "RIGHT"});  // a new key for the same element
    CHECK(keys.usedMemory() == 2 + 2 * key + 5 + 2 * element);
    run(keys, {"LPOP", "q"});
    CHECK(keys.usedMemory() == 1 + key + 3 + element);
    run(keys, {"RPUSH", "r", "x", "abc", "abc"});
    run(keys, {"LREM", "r", "0", "abc"});
    CHECK(keys.usedMemory() == 1 + key + 1 + element);
    run(keys, {"SET", "r", "longer value"});  // a list replaced by a string
    CHECK(keys.usedMemory() == 1 + key + 12 + element);
    run(keys, {"SET", "r", "v"});
    CHECK(keys.usedMemory() == 1 + key + 1 + element);
    run(keys, {"DEL", "r"});
    CHECK(keys.usedMemory() == 0);
    run(keys, {"LPUSH", "a", "1", "2"});
    run(keys, {"SET", "b", "3"});
    run(keys, {"FLUSHALL"});
    CHECK(keys.usedMemory() == 0);
    CHECK(keys.size() == 0);
  }

  TEST_CASE("listCreated is told of each list a command creates, changed of each change") {
    hub::Keyspace keys;
    std::vector<std::string> created;
    std::vector<Command> changes;
    keys.listCreated = [&](const std::string& key) { created.push_back(key); };
    keys.changed = [&](const Command& change) { changes.push_back(change); };
    run(keys, {"RPUSH", "q", "a", "b"});
    run(keys, {"RPUSH", "q", "c"});  // the list exists: nobody can be waiting on it
    run(keys, {"LMOVE", "q", "r", "left", "right"});
    run(keys, {"LPOP", "nokey"});  // no change, not told
    std::string out;
    const std::string wanted[] = {"nokey", "q"};
    CHECK(keys.popFirst(out, wanted, hub::End::right));
    CHECK(out == "*2\r\n$1\r\nq\r\n$1\r\nc\r\n");
    CHECK(created == std::vector<std::string>{"q", "r"});
    CHECK(changes == std::vector<Command>{{"RPUSH", "q", "a", "b"},
                                          {"RPUSH", "q", "c"},
                                          {"LMOVE", "q", "r", "LEFT", "RIGHT"},
                                          {"RPOP", "q"}});
  }
}

TEST_SUITE("hub::parseTimeout") {
  TEST_CASE("seconds with fractions, truncated to milliseconds, and 0 waits forever") {
    long long ms = -1;
    CHECK(hub::parseTimeout("1.5", ms).empty());
    CHECK(ms == 1500);
    CHECK(hub::parseTimeout("0.0001", ms).empty());
    CHECK(ms == 0);  // as in redis-server: truncated to 0, which blocks forever
    CHECK(hub::parseTimeout("0x10", ms).empty());
    CHECK(ms == 16000);
    CHECK(hub::parseTimeout("x", ms) == "ERR timeout is not a float or out of range");
    CHECK(hub::parseTimeout(" 1", ms) == "ERR timeout is not a float or out of range");
    CHECK(hub::parseTimeout("nan", ms) == "ERR timeout is not a float or out of range");
    CHECK(hub::parseTimeout("1\0"s, ms) == "ERR timeout is not a float or out of range");
    CHECK(hub::parseTimeout("-1", ms) == "ERR timeout is negative");
    CHECK(hub::parseTimeout("inf", ms) == "ERR timeout is negative");  // wraps, as in Redis
  }
}

TEST_SUITE("hub::RequestParser memory") {
  TEST_CASE("a large argument becomes the command's own buffer, a request after it intact") {
    std::string request;
    std::string large(200 * 1024, '\0');
    for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 31 + (i >> 8));
    hub::appendCommand(request, {"PUBLISH", "c", large});
    request += "*1\r\n$4\r\nPING\r\n";
    for (const std::size_t piece : {request.size(), std::size_t{65536}, std::size_t{999}}) {
      hub::RequestParser parser;
      Command cmd;
      std::vector<Command> got;
      for (std::size_t at = 0; at < request.size(); at += piece) {
        parser.feed(std::string_view(request).substr(at, piece));
        while (parser.next(cmd)) got.push_back(cmd);
      }
      REQUIRE(got.size() == 2);
      CHECK(got[0] == Command{"PUBLISH", "c", large});
      CHECK(got[1] == Command{"PING"});
    }
  }

  TEST_CASE(
      "a large request's buffer and argument are let go once it is read, however it arrived") {
    std::string request;
    hub::appendCommand(request, {"PUBLISH", "c", std::string(1 << 20, 'x')});
    for (const std::size_t piece : {request.size(), std::size_t{65536}, std::size_t{1000}}) {
      hub::RequestParser parser;
      Command cmd;
      for (std::size_t at = 0; at < request.size(); at += piece) {
        parser.feed(std::string_view(request).substr(at, piece));
        while (parser.next(cmd)) {
        }
      }
      CHECK(cmd.size() == 3);
      CHECK(cmd[2].capacity() <= 4096);  // nor does the caller's command, once next() is false
      CHECK(parser.buffered() == 0);
      CHECK(parser.capacity() <= 64 * 1024);
      parser.feed("PING\r\n");  // and it still parses
      CHECK(parser.next(cmd));
      CHECK(cmd == Command{"PING"});
    }
  }
}
