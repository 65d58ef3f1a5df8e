#!/usr/bin/env bash
# compile_time.sh — what evnet costs a translation unit to compile, as a ratio to raw asio.
#
#   benchmarks/compile_time.sh [--runs N] [--compilers "g++ clang++"] [--asio-include DIR]
#                              [--flags "-O2"]
#
# Compiles (-c, C++20, --flags, default -O2) one-file programs with each compiler, --runs times
# each (default 3), interleaved so that a slow moment of a shared machine hits all of them
# alike, and prints the median CPU time of each and these ratios per compiler (each the median
# of the rounds' ratios, the two files of a round being compiled moments apart):
#   echo:    the README's first example (an echo server, taken from README.md) against a
#            canonical raw-asio echo server (async_read_some/async_write, one session object
#            per connection), written below;
#   include: a file that only includes <evnet/evnet.hpp> against one that only includes
#            <asio.hpp>;
#   echo, compiled mode / include, compiled mode: the same two evnet files built with
#            EVNET_SEPARATE_COMPILATION (what each file of a program costs once its sockets and
#            servers are compiled in one other file); that one file, <evnet/impl/src.hpp>, is
#            timed too (evnet_src), paid once per program.
# Clang gets -DASIO_HAS_CO_AWAIT=1, as evnet's CMake target gives it (asio 1.22 and Clang).
# evnet's goal: at most 1.3x with both compilers, which compiled mode meets (README).
script=${0##*/}
# shellcheck source=benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

runs=3
compilers="g++ clang++"
asio_include=""
flags="-O2"
while (($#)); do
  case $1 in
    --runs) runs=$2 && shift ;;
    --compilers) compilers=$2 && shift ;;
    --asio-include) asio_include=$2 && shift ;;
    --flags) flags=$2 && shift ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' && exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "--runs: '$runs' is not a positive number"

dir=$work_dir  # lib.sh removes it on exit

# The README's first example, as tests/CMakeLists.txt extracts it for the readme_example test.
awk '/^```cpp$/ && !done {inside = 1; next} /^```$/ && inside {done = 1; inside = 0} inside' \
  README.md >"$dir/evnet_echo.cpp"
[[ -s $dir/evnet_echo.cpp ]] || die "no \`\`\`cpp block in README.md"

cat >"$dir/asio_echo.cpp" <<'EOF'
// An echo server written directly against asio, as asio's own examples write one.
#include <asio.hpp>

#include <cstdio>
#include <memory>

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}
  void start() { read(); }

 private:
  void read() {
    socket_.async_read_some(asio::buffer(data_),
                            [self = shared_from_this()](std::error_code ec, std::size_t n) {
                              if (!ec) self->write(n);
                            });
  }
  void write(std::size_t n) {
    asio::async_write(socket_, asio::buffer(data_, n),
                      [self = shared_from_this()](std::error_code ec, std::size_t) {
                        if (!ec) self->read();
                      });
  }
  asio::ip::tcp::socket socket_;
  char data_[16384];
};

void accept(asio::ip::tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](std::error_code ec, asio::ip::tcp::socket socket) {
    if (!ec) std::make_shared<Session>(std::move(socket))->start();
    accept(acceptor);
  });
}

int main() {
  asio::io_context loop;
  asio::ip::tcp::acceptor acceptor(loop, {asio::ip::make_address("127.0.0.1"), 7000});
  std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
  accept(acceptor);
  loop.run();
}
EOF
printf '#include <evnet/evnet.hpp>\n' >"$dir/evnet_include.cpp"
printf '#include <asio.hpp>\n' >"$dir/asio_include.cpp"
cp "$dir/evnet_echo.cpp" "$dir/evnet_echo_compiled.cpp"
cp "$dir/evnet_include.cpp" "$dir/evnet_include_compiled.cpp"
printf '#include <evnet/impl/src.hpp>\n' >"$dir/evnet_src.cpp"

programs=(asio_echo evnet_echo evnet_echo_compiled asio_include evnet_include
  evnet_include_compiled evnet_src)
includes=(-I"$repo_root/include")
[[ -n $asio_include ]] && includes+=(-I"$asio_include")

# seconds COMPILER PROGRAM: compiles it once and prints the CPU time it took (user + system, of
# the compiler and the assembler): unlike wall time, it does not grow when others share the CPUs.
seconds() {
  local extra=() cpu status
  [[ $1 == *clang* ]] && extra=(-DASIO_HAS_CO_AWAIT=1)
  [[ $2 == *_compiled || $2 == evnet_src ]] && extra+=(-DEVNET_SEPARATE_COMPILATION)
  local TIMEFORMAT='%3U %3S'
  # shellcheck disable=SC2086  # $flags is a list of flags
  cpu=$({ time "$1" -std=c++20 $flags "${extra[@]}" "${includes[@]}" -c "$dir/$2.cpp" \
    -o "$dir/$2.o" 2>"$dir/$2.err"; } 2>&1) && status=0 || status=$?
  ((status == 0)) || die "$1 failed on $2.cpp: $(head -c 2000 "$dir/$2.err")"
  awk '{ printf "%.3f\n", $1 + $2 }' <<<"$cpu"
}

echo "evnet $(evnet_version include README.md), $(nproc) CPUs, load average $(load_average)"
printf '%-10s %-22s %8s  (median of %d, %s)\n' compiler program 'CPU s' "$runs" "$flags"
for compiler in $compilers; do
  command -v "$compiler" >/dev/null || die "no $compiler"
  declare -A times=()
  for ((run = 0; run < runs; run++)); do
    for program in "${programs[@]}"; do
      times[$program]+="$(seconds "$compiler" "$program") "
    done
  done
  declare -A med=()
  for program in "${programs[@]}"; do
    med[$program]=$(tr ' ' '\n' <<<"${times[$program]}" | median)
    printf '%-10s %-22s %8.2f\n' "$compiler" "$program" "${med[$program]}"
  done
  # A ratio is the median of the rounds' ratios: the two files of a round compile moments apart,
  # so a machine that runs faster or slower for a while changes both alike.
  paired() { pair_ratios "$(tr ' ' '\n' <<<"${times[$1]}")" "$(tr ' ' '\n' <<<"${times[$2]}")" | median; }
  printf '%-10s %-22s %9s  (evnet_echo / asio_echo)\n' "$compiler" "echo ratio" \
    "$(ratio "$(paired evnet_echo asio_echo)" 1)"
  printf '%-10s %-22s %9s  (evnet_include / asio_include)\n' "$compiler" "include ratio" \
    "$(ratio "$(paired evnet_include asio_include)" 1)"
  printf '%-10s %-22s %9s  (evnet_echo_compiled / asio_echo)\n' "$compiler" "compiled echo" \
    "$(ratio "$(paired evnet_echo_compiled asio_echo)" 1)"
  printf '%-10s %-22s %9s  (evnet_include_compiled / asio_include)\n' "$compiler" \
    "compiled incl." "$(ratio "$(paired evnet_include_compiled asio_include)" 1)"
  unset times med
done
