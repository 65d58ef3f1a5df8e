#!/usr/bin/env bash
# idle_memory.sh — each echo server's resident memory per idle connection.
#
#   benchmarks/idle_memory.sh [--build-dir DIR] [--no-build] [--results DIR]
#                             [--connections N] [--hold SEC] [--tls]
#
# For asio, evnet, evnet+timeout (evnet_echo_server --timeout 30000), uring (evnet_echo_server
# on the io_uring transport, whose 2 MiB of receive buffers the connections' echoes touch) and
# node (if installed):
# starts the server fresh, then `loadgen --mode idle` opens N connections (10000 by default;
# at most 128 being set up at a time), has each echo one 64-byte message (so the server has
# accepted it and set it up, with its idle timer armed where there is one) and holds them all
# idle for --hold seconds (2). The server's VmRSS (/proc/PID/status) is read before the first
# connection and at the end of the hold; bytes per connection = (after - before) / N.
# Raises the open-file limit (ulimit -n) to N + 1024 for the servers and loadgen; fails if
# the hard limit is lower.
#
# With --tls the servers are the TLS echo servers of run_tls.sh (asio_tls_echo_server,
# examples/tls_echo_server, node_tls_echo_server.js, with a P-256 certificate made here by
# `openssl req`) and every connection does a TLS 1.3 handshake before its echo; the table goes
# to idle_memory_tls.md.
#
# Prints a markdown table and writes it to DIR/idle_memory.md (DIR: --results, default
# benchmarks/results). Takes ~20 seconds (--tls: ~1 minute).
set -euo pipefail

script=idle_memory.sh
# shellcheck source=benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_dir=build/bench
results_dir=benchmarks/results
connections=10000
hold=2
no_build=0
tls=0

usage() {
  echo "usage: $0 [--build-dir DIR] [--no-build] [--results DIR] [--connections N] [--hold SEC]" \
    "[--tls]" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --build-dir) (($# >= 2)) || usage; build_dir=$2; shift ;;
    --results) (($# >= 2)) || usage; results_dir=$2; shift ;;
    --connections) (($# >= 2)) || usage; connections=$2; shift ;;
    --hold) (($# >= 2)) || usage; hold=$2; shift ;;
    --no-build) no_build=1 ;;
    --tls) tls=1 ;;
    -h | --help) usage ;;
    *) echo "$script: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
absolute build_dir results_dir

wanted_files=$((connections + 1024))
hard_limit=$(ulimit -Hn)
if [[ $hard_limit != unlimited ]] && ((hard_limit < wanted_files)); then
  die "the hard open-file limit is $hard_limit; $connections connections need" \
    "$wanted_files (raise it, or pass a smaller --connections)"
fi
ulimit -n "$wanted_files"

if ((tls)); then
  targets=(loadgen asio_tls_echo_server tls_echo_server)
  bins=(benchmarks/asio_tls_echo_server examples/tls_echo_server)
else
  targets=(loadgen asio_echo_server evnet_echo_server)
  bins=(benchmarks/asio_echo_server benchmarks/evnet_echo_server)
fi
build "${targets[@]}"
loadgen=$build_dir/benchmarks/loadgen
for bin in "$loadgen" "${bins[@]/#/$build_dir/}"; do
  [[ -x $bin ]] || die "$bin is missing (build it first)"
done

declare -A server_cmd
if ((tls)); then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -keyout "$work_dir/key.pem" -out "$work_dir/cert.pem" 2>/dev/null ||
    die "openssl req failed"
  credentials="--cert $work_dir/cert.pem --key $work_dir/key.pem"
  servers=(asio evnet)
  server_cmd=([asio]="${bins[0]/#/$build_dir/} $credentials"
    [evnet]="${bins[1]/#/$build_dir/} $credentials")
  node_server="node $repo_root/benchmarks/node_tls_echo_server.js $credentials"
  loadgen_tls=(--tls 1.3)
  report_name=idle_memory_tls.md
else
  servers=(asio evnet evnet+timeout uring)
  server_cmd=([asio]="$build_dir/benchmarks/asio_echo_server"
    [evnet]="env EVNET_TRANSPORT=epoll $build_dir/benchmarks/evnet_echo_server"
    [evnet+timeout]="env EVNET_TRANSPORT=epoll $build_dir/benchmarks/evnet_echo_server --timeout 30000"
    [uring]="env EVNET_TRANSPORT=io_uring $build_dir/benchmarks/evnet_echo_server")
  node_server="node $repo_root/benchmarks/node_echo_server.js"
  loadgen_tls=()
  report_name=idle_memory.md
fi
if command -v node >/dev/null; then
  servers+=(node)
  server_cmd[node]=$node_server
else
  echo "$script: node not found; Node.js is left out" >&2
fi

declare -A before after
began=$SECONDS
for name in "${servers[@]}"; do
  # shellcheck disable=SC2086  # the command is a program and maybe a script: split it
  ${server_cmd[$name]} --port 0 --host 127.0.0.1 >"$work_dir/server.out" 2>"$work_dir/server.err" &
  pid=$!
  started "$pid"
  port=$(listening_port "$pid" "$work_dir/server.out" "$work_dir/server.err" "$name")
  sleep 0.2 # let it settle (node finishes loading after it listens)
  status=0
  line=$("$loadgen" --host 127.0.0.1 --port "$port" --mode idle --connections "$connections" \
    --size 64 --duration "$hold" --timeout 30 --server-pid "$pid" "${loadgen_tls[@]}" \
    2>"$work_dir/loadgen.err") || status=$?
  if ((status != 0)) || [[ $line != RESULT* ]]; then
    echo "$script: FAILED: loadgen --mode idle against '$name' (exit $status)" >&2
    cat "$work_dir/loadgen.err" >&2
    exit 1
  fi
  before[$name]=$(sed -n 's/.* server_rss_kb_start=\([0-9]*\).*/\1/p' <<<"$line")
  after[$name]=$(sed -n 's/.* server_rss_kb_end=\([0-9]*\).*/\1/p' <<<"$line")
  echo "  $name: VmRSS ${before[$name]} kB -> ${after[$name]} kB" >&2
  stop_pid "$pid"
done
elapsed=$((SECONDS - began))

per_conn() { awk -v a="$1" -v b="$2" -v n="$connections" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }'; }

mkdir -p "$results_dir"
report=$results_dir/$report_name
base=$(per_conn "${before[asio]}" "${after[asio]}")
{
  echo "## Resident memory per idle$( ((tls)) && echo " TLS") connection"
  echo
  echo "$connections idle connections held for ${hold} s, each after$( ((tls)) &&
    echo " a TLS 1.3 handshake and") one 64-byte echo;" \
    "server VmRSS before the first connection and at the end. $(date -u +%Y-%m-%d)," \
    "$(uname -srm), $(nproc) CPUs. Took ${elapsed} s."
  echo
  echo "| server | RSS before (MiB) | RSS with $connections idle (MiB) | bytes/connection | vs asio |"
  echo "|---|---:|---:|---:|---:|"
  for name in "${servers[@]}"; do
    bytes=$(per_conn "${before[$name]}" "${after[$name]}")
    awk -v s="$name" -v a="${before[$name]}" -v b="${after[$name]}" -v c="$bytes" \
      -v r="$(ratio "$bytes" "$base")" \
      'BEGIN { printf "| %s | %.1f | %.1f | %d | %s |\n", s, a / 1024, b / 1024, c, r }'
  done
  echo
  if ((tls)); then
    echo "Servers: asio = benchmarks/asio_tls_echo_server.cpp (asio::ssl::stream: a 16 KiB" \
      "buffer per session and asio's own 17 KiB input and output buffers), evnet =" \
      "examples/tls_echo_server.cpp (OpenSSL's record buffers are freed 100 ms after a" \
      "connection's last record), node = benchmarks/node_tls_echo_server.js."
  else
    echo "Servers: asio = benchmarks/asio_echo_server.cpp (a 16 KiB buffer per session)," \
      "evnet = benchmarks/evnet_echo_server.cpp on epoll, evnet+timeout = the same with" \
      "--timeout 30000 (an idle timer on every socket), uring = evnet on io_uring (its loop's" \
      "2 MiB of receive buffers, used in turn, count here), node = benchmarks/node_echo_server.js."
  fi
} >"$report"
cat "$report"
