// The hub's append-only file: every write command, in Redis' AOF format, laid out as
// redis-server 7.0 lays out its multi-part AOF with aof-use-rdb-preamble no, so that
// redis-check-aof accepts it and redis-server 7 started on the same --dir loads it:
//
//   DIR/DIRNAME/NAME.manifest      file NAME.1.base.aof seq 1 type b
//                                  file NAME.1.incr.aof seq 1 type i
//   DIR/DIRNAME/NAME.1.base.aof    the data at the last rewrite, as commands (empty at first)
//   DIR/DIRNAME/NAME.1.incr.aof    SELECT 0, then each write command since, as a RESP array
//
// (NAME is --appendfilename, default appendonly.aof; DIRNAME --appenddirname, default
// appendonlydir.) A rewrite makes NAME.2.base.aof and NAME.2.incr.aof, and so on. Loading
// follows redis-server: a last command cut short (a crash in the middle of a write) is dropped
// and the file truncated to the last whole command, as with aof-load-truncated yes; anything
// else that is not a command stops the start with the file and the offset. A base file in
// Redis' RDB format (aof-use-rdb-preamble yes) is not understood: the start stops there too.
#pragma once

#include "hub/resp.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
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
  unsigned long long rewritePercentage = 100;     // auto-aof-rewrite-percentage; 0: never
  std::size_t rewriteMinSize = 64 * 1024 * 1024;  // auto-aof-rewrite-min-size
};

class AppendOnlyFile {
 public:
  explicit AppendOnlyFile(AofOptions options)
      : o_(std::move(options)), folder_(o_.dir + "/" + o_.dirname) {}
  AppendOnlyFile(const AppendOnlyFile&) = delete;
  AppendOnlyFile& operator=(const AppendOnlyFile&) = delete;
  ~AppendOnlyFile() {
    if (child_ > 0) {  // a rewrite under way is abandoned; the manifest never named its file
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
      ::unlink(tempPath().c_str());
    }
    if (fd_ >= 0) {
      flush();
      ::fsync(fd_);
      ::close(fd_);
    }
  }

  /// Replays the files the manifest names into `execute`, creating the layout if there is none,
  /// and opens the last incremental file for appending. Throws std::runtime_error with the file
  /// and offset of what cannot be loaded. Returns a note for the log ("" if nothing to say).
  std::string open(const std::function<bool(const Command&)>& execute) {
    const std::string manifest = manifestPath();
    std::string note;
    if (std::ifstream in(manifest); in) {
      for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string file, name, seq, type, kind;
        unsigned long long number = 0;
        if (!(words >> file >> name >> seq >> number >> type >> kind) || file != "file" ||
            (kind != "b" && kind != "i"))
          throw std::runtime_error("bad manifest line in " + manifest + ": " + line);
        if (kind == "b")
          base_ = name;
        else
          incr_.push_back(name);
        seq_ = std::max(seq_, number);
      }
      if (incr_.empty()) throw std::runtime_error("no incremental file in " + manifest);
    } else {
      if (::mkdir(folder_.c_str(), 0755) != 0 && errno != EEXIST) fail("mkdir " + folder_);
      seq_ = 1;
      base_ = fileName(1, "base");
      incr_ = {fileName(1, "incr")};
      create(base_);
      create(incr_.back());
      writeManifest();
      pending_ = kSelect;  // as redis-server starts its file
    }
    if (!base_.empty()) note += load(folder_ + "/" + base_, false, execute);
    for (std::size_t i = 0; i < incr_.size(); ++i)
      note += load(folder_ + "/" + incr_[i], i + 1 == incr_.size(), execute);
    openIncr();
    flush();
    ::fsync(fd_);
    rewriteBase_ = currentSize_ = filesSize();
    return note;
  }

  /// Queues a write command; it reaches the file at the next flush().
  void append(const Command& cmd) { appendCommand(pending_, cmd); }
  /// Whether commands wait for flush().
  bool pending() const { return !pending_.empty() && fd_ >= 0; }

  /// Writes what is queued, and with appendfsync always waits for the disk: call it before
  /// replies are sent, so that nothing acknowledged is lost.
  void flush() {
    if (pending_.empty() || fd_ < 0) return;
    writeAll(fd_, pending_, path_);  // Redis, too, exits when it cannot write its AOF
    currentSize_ += pending_.size();
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

  // --- rewriting ----------------------------------------------------------------------------
  //
  // As redis-server 7 does it: appends go to a new incremental file at once, and a child process
  // (fork) writes the data as it was at that moment into a new base file, while the loop goes
  // on; once the child is done, a new manifest names the new base and the new incremental file,
  // and the old files are deleted. The loop stops only for fork() itself.

  /// Whether the files grew past --auto-aof-rewrite-percentage of their size after the last
  /// rewrite (or the start) and are at least --auto-aof-rewrite-min-size.
  bool wantsRewrite() const {
    return child_ <= 0 && o_.rewritePercentage > 0 && currentSize_ >= o_.rewriteMinSize &&
           (currentSize_ - rewriteBase_) * 100 >= rewriteBase_ * o_.rewritePercentage;
  }
  bool rewriting() const { return child_ > 0; }

  /// Starts a rewrite: `snapshot` runs in the child and writes every key, as commands, to the
  /// file descriptor it gets. Returns false if one is under way.
  bool startRewrite(const std::function<void(int fd)>& snapshot) {
    if (child_ > 0) return false;
    flush();
    const int previous = fd_;  // synced by the child: an fsync here would stop the loop
    incr_.push_back(fileName(++seq_, "incr"));
    create(incr_.back());
    writeManifest();  // the old base and every incremental file: complete without the new base
    openIncr();
    pending_ = kSelect;
    const int out = ::open(tempPath().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) fail("create " + tempPath());
    const auto started = std::chrono::steady_clock::now();
    const pid_t pid = ::fork();
    if (pid == 0) {  // the child: write, sync, and leave without running any destructor
      int status = ::fsync(previous) == 0 ? 0 : 1;
      try {
        snapshot(out);
        if (::fsync(out) != 0) status = 1;
      } catch (...) {
        status = 1;
      }
      ::_exit(status);
    }
    forkMicroseconds_ = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
    ::close(out);
    ::close(previous);
    if (pid < 0) fail("fork");
    child_ = pid;
    return true;
  }

  /// Call from time to time: finishes a rewrite whose child is done. Returns a note for the log.
  std::string poll() {
    if (child_ <= 0) return "";
    int status = 0;
    if (::waitpid(child_, &status, WNOHANG) != child_) return "";
    child_ = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ::unlink(tempPath().c_str());
      return "Background AOF rewrite failed; the files stay as they are\n";
    }
    const std::string base = fileName(seq_, "base");
    if (::rename(tempPath().c_str(), (folder_ + "/" + base).c_str()) != 0)
      fail("rename " + tempPath());
    std::vector<std::string> old = incr_;
    old.pop_back();  // the incremental file in use stays
    if (!base_.empty()) old.push_back(base_);
    base_ = base;
    incr_ = {incr_.back()};
    writeManifest();
    for (const auto& name : old) ::unlink((folder_ + "/" + name).c_str());
    rewriteBase_ = currentSize_ = filesSize();
    ++rewrites_;
    return "Background AOF rewrite finished successfully\n";
  }

  std::size_t currentSize() const { return currentSize_; }
  std::size_t baseSize() const { return rewriteBase_; }
  long long forkMicroseconds() const { return forkMicroseconds_; }
  unsigned long long rewrites() const { return rewrites_; }

  /// Writes all of `bytes` to `fd`, or throws.
  static void writeAll(int fd, std::string_view bytes, const std::string& what) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("write " + what);
      done += static_cast<std::size_t>(n);
    }
  }

  static constexpr std::string_view kSelect = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n";

 private:
  std::string manifestPath() const { return folder_ + "/" + o_.filename + ".manifest"; }
  std::string tempPath() const {
    return folder_ + "/temp-rewriteaof-bg-" + std::to_string(::getpid()) + ".aof";
  }
  std::string fileName(unsigned long long seq, std::string_view kind) const {
    return o_.filename + "." + std::to_string(seq) + "." + std::string(kind) + ".aof";
  }

  // The manifest, replaced atomically: a crash leaves the old one or the new one.
  void writeManifest() {
    std::string text;
    auto line = [&](const std::string& name, char kind) {
      const auto seq = name.substr(o_.filename.size() + 1,
                                   name.find('.', o_.filename.size() + 1) - o_.filename.size() - 1);
      text += "file " + name + " seq " + seq + " type " + kind + "\n";
    };
    if (!base_.empty()) line(base_, 'b');
    for (const auto& name : incr_) line(name, 'i');
    const std::string path = manifestPath(), temp = path + ".tmp";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail("create " + temp);
    writeAll(fd, text, temp);
    ::fsync(fd);
    ::close(fd);
    if (::rename(temp.c_str(), path.c_str()) != 0) fail("rename " + path);
  }

  void openIncr() {
    path_ = folder_ + "/" + incr_.back();
    fd_ = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd_ < 0) fail("open " + path_);
  }

  void create(const std::string& name) const {
    const std::string path = folder_ + "/" + name;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) fail("create " + path);
    ::close(fd);
  }

  std::size_t filesSize() const {
    std::size_t total = 0;
    struct stat st {};
    if (!base_.empty() && ::stat((folder_ + "/" + base_).c_str(), &st) == 0)
      total += static_cast<std::size_t>(st.st_size);
    for (const auto& name : incr_)
      if (::stat((folder_ + "/" + name).c_str(), &st) == 0)
        total += static_cast<std::size_t>(st.st_size);
    return total;
  }

  [[noreturn]] static void fail(const std::string& what) {
    throw std::runtime_error(what + ": " + std::strerror(errno));
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
  std::string folder_;
  std::string base_;               // the base file's name, "" if the manifest names none
  std::vector<std::string> incr_;  // the incremental files, oldest first; appends go to the last
  unsigned long long seq_ = 0;     // the highest sequence number in use
  int fd_ = -1;
  std::string path_;  // of the file fd_ appends to
  std::string pending_;
  bool dirty_ = false;
  std::size_t currentSize_ = 0, rewriteBase_ = 0;
  pid_t child_ = 0;
  long long forkMicroseconds_ = 0;
  unsigned long long rewrites_ = 0;
};

}  // namespace hub
