// The hub's append-only file: every write command, in Redis' AOF format, laid out as
// redis-server 7.0 lays out its multi-part AOF with aof-use-rdb-preamble no, so that
// redis-check-aof accepts it and redis-server 7 started on the same --dir loads it:
//
//   DIR/DIRNAME/NAME.manifest      file NAME.1.base.aof seq 1 type b
//                                  file NAME.1.incr.aof seq 1 type i
//   DIR/DIRNAME/NAME.1.base.aof    (empty: the hub does not rewrite the file yet)
//   DIR/DIRNAME/NAME.1.incr.aof    SELECT 0, then each write command as a RESP array
//
// (NAME is --appendfilename, default appendonly.aof; DIRNAME --appenddirname, default
// appendonlydir.) Loading follows redis-server: a last command cut short (a crash in the middle
// of a write) is dropped and the file truncated to the last whole command, as with
// aof-load-truncated yes; anything else that is not a command stops the start with the file
// and the offset.
#pragma once

#include "hub/resp.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace hub {

/// When the file reaches the disk (Redis' appendfsync).
enum class Fsync { always, everysec, no };

struct AofOptions {
  std::string dir = ".";
  std::string dirname = "appendonlydir";
  std::string filename = "appendonly.aof";
  Fsync fsync = Fsync::everysec;
};

class AppendOnlyFile {
 public:
  explicit AppendOnlyFile(AofOptions options) : o_(std::move(options)) {}
  AppendOnlyFile(const AppendOnlyFile&) = delete;
  AppendOnlyFile& operator=(const AppendOnlyFile&) = delete;
  ~AppendOnlyFile() {
    if (fd_ >= 0) {
      flush();
      ::fsync(fd_);
      ::close(fd_);
    }
  }

  /// Replays the files the manifest names into `execute`, creating the layout if there is none,
  /// and opens the incremental file for appending. Throws std::runtime_error with the file and
  /// offset of what cannot be loaded. Returns a note for the log ("" if nothing to say).
  std::string open(const std::function<bool(const Command&)>& execute) {
    const std::string folder = o_.dir + "/" + o_.dirname;
    const std::string manifest = folder + "/" + o_.filename + ".manifest";
    std::string note;
    std::vector<std::string> files;
    if (std::ifstream in(manifest); in) {
      for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string file, name, seq, number, type, kind;
        if (!(words >> file >> name >> seq >> number >> type >> kind) || file != "file")
          throw std::runtime_error("bad manifest line in " + manifest + ": " + line);
        files.push_back(name);
      }
      if (files.empty()) throw std::runtime_error("empty manifest " + manifest);
    } else {
      if (::mkdir(folder.c_str(), 0755) != 0 && errno != EEXIST) fail("mkdir " + folder);
      files = {o_.filename + ".1.base.aof", o_.filename + ".1.incr.aof"};
      for (const auto& f : files) create(folder + "/" + f);
      writeFile(manifest + ".tmp",
                "file " + files[0] + " seq 1 type b\nfile " + files[1] + " seq 1 type i\n");
      if (::rename((manifest + ".tmp").c_str(), manifest.c_str()) != 0) fail("rename " + manifest);
      pending_ = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n";  // as redis-server starts its file
    }
    for (std::size_t i = 0; i < files.size(); ++i)
      note += load(folder + "/" + files[i], i + 1 == files.size(), execute);
    const std::string incr = folder + "/" + files.back();
    fd_ = ::open(incr.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) fail("open " + incr);
    path_ = incr;
    flush();
    ::fsync(fd_);
    return note;
  }

  /// Queues a write command; it reaches the file at the next flush().
  void append(const Command& cmd) { appendCommand(pending_, cmd); }

  /// Writes what is queued, and with appendfsync always waits for the disk: call it before
  /// replies are sent, so that nothing acknowledged is lost.
  void flush() {
    if (pending_.empty() || fd_ < 0) return;
    std::size_t done = 0;
    while (done < pending_.size()) {
      const ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("write " + path_);  // Redis, too, exits when it cannot write its AOF
      done += static_cast<std::size_t>(n);
    }
    pending_.clear();
    if (pending_.capacity() > 1024 * 1024) pending_ = std::string();
    if (o_.fsync == Fsync::always)
      sync();
    else
      dirty_ = true;
  }

  /// appendfsync everysec calls this once a second.
  void sync() {
    if (fd_ >= 0 && ::fdatasync(fd_) != 0) fail("fsync " + path_);
    dirty_ = false;
  }
  bool needsSync() const { return dirty_; }

 private:
  [[noreturn]] static void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
  }

  static void create(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail("create " + path);
    ::close(fd);
  }

  static void writeFile(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) fail("write " + path);
  }

  // Replays one file. The last file may end in a command cut short: it is truncated away.
  static std::string load(const std::string& path, bool last,
                          const std::function<bool(const Command&)>& execute) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("open " + path);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Limits limits;
    limits.maxBulkLength =
        512 * 1024 * 1024;  // what Redis accepts; the file holds what the hub did
    limits.maxInlineLength = 1024 * 1024;
    RequestParser parser(limits);
    parser.feed(bytes);
    Command cmd;
    std::size_t offset = 0;  // where the command being read starts
    for (;;) {
      offset = bytes.size() - parser.buffered();
      if (offset == bytes.size()) return "";
      if (bytes[offset] != '*') break;
      if (!parser.next(cmd)) {
        if (parser.failed() || !last) break;
        if (::truncate(path.c_str(), static_cast<off_t>(offset)) != 0) fail("truncate " + path);
        return "!!! Warning: short read while loading the AOF file " + path +
               "!!! AOF loaded anyway because aof-load-truncated is enabled; truncated to " +
               std::to_string(offset) + " bytes\n";
      }
      if (!execute(cmd))
        throw std::runtime_error("Unknown command '" + cmd[0] + "' reading the append only file " +
                                 path + " at offset " + std::to_string(offset));
    }
    throw std::runtime_error("Bad file format reading the append only file " + path +
                             " at offset " + std::to_string(offset) +
                             ": make a backup of it, then fix it with redis-check-aof --fix");
  }

  AofOptions o_;
  int fd_ = -1;
  std::string path_;
  std::string pending_;
  bool dirty_ = false;
};

}  // namespace hub
