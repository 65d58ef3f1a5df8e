#!/usr/bin/env bash
# run_echo.sh — the echo servers side by side: raw asio, evnet and Node.js under one load.
#
#   benchmarks/run_echo.sh [--quick] [--rounds N] [--build-dir DIR] [--no-build] [--results DIR]
#                          [--evnet BIN] [--timeout MS] [--no-control] [--no-uring] [--no-idle]
#                          [--no-chart]
#
# Configures DIR (default build/bench; Release, -DEVNET_BUILD_BENCHMARKS=ON) and builds
# loadgen, asio_echo_server and evnet_echo_server with `cmake --build DIR`; if that fails, or
# with --no-build, binaries already in DIR are used. The evnet server is DIR's
# evnet_echo_server (the example echo server plus --timeout; examples/echo_server if there is
# none), or --evnet BIN; --timeout MS passes --timeout MS to it (an idle timeout armed on every
# socket).
#
# Starts every server afresh in every round on an ephemeral port (each must accept --port 0
# --host 127.0.0.1 and print "listening on <host>:<port>"), pinned to CPU 0 while loadgen runs
# on CPU 1 when there are two CPUs: raw asio, "control" (a second process of the raw asio
# server, unless --no-control), evnet with the epoll transport ("evnet"), evnet with io_uring
# ("uring", unless --no-uring), the hand-written liburing server ("liburing": the ceiling of
# io_uring, where the build has it; not with --no-uring) and Node. Then runs the scenarios
#   echo c=1, echo c=50, pipeline c=50 d=16 (64-byte messages), stream c=4 (16 KiB), connect
# for every server in turn, rotating the order of the servers from round to round, --rounds
# rounds (5; 1 with --quick) of 0.5 s warm-up + 1.5 s. Prints the median of each figure, the
# median over the rounds of its ratio to raw asio and to Node within a round, the range of the
# ratio to asio, and the server's CPU seconds per million messages (utime + stime from
# /proc/PID/stat over the measured window; in stream mode a message is a 16 KiB chunk, in
# connect mode a connection), a steadier figure than throughput on a shared machine. The
# control's ratio to asio shows how far this machine's noise alone moves two identical
# servers apart. Any loadgen failure (a wrong echo, a premature close, a refused connection)
# aborts the run.
#
# Then (unless --no-idle) benchmarks/idle_memory.sh: resident memory per idle connection
# with 10,000 connections to each server.
#
# Writes to DIR (--results, default benchmarks/results): echo.md (the table, markdown),
# echo.log (the raw RESULT lines), echo.dat and echo.png (messages/s per server per
# scenario, drawn by benchmarks/plot.gnuplot when gnuplot is installed; --no-chart skips
# it), idle_memory.md, and performance.md: echo.md, idle_memory.md and, if present, the
# cost_per_msg.md of benchmarks/cost_per_msg.sh, in one file for the README.
#
# Full run ~4 minutes, --quick ~45 seconds (after the build).
set -euo pipefail

script=run_echo.sh
# shellcheck source=benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

evnet_bin=
evnet_timeout=0
idle=1 chart=1 control=1 uring=1

usage() {
  echo "usage: $0 $common_usage [--evnet BIN] [--timeout MS] [--no-control] [--no-uring]" \
    "[--no-idle] [--no-chart]" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --evnet) (($# >= 2)) || usage; evnet_bin=$2; shift ;;
    --timeout) (($# >= 2)) || usage; evnet_timeout=$2; shift ;;
    --no-control) control=0 ;;
    --no-uring) uring=0 ;;
    --no-idle) idle=0 ;;
    --no-chart) chart=0 ;;
    *) common_option "$@"; shift $((taken - 1)) ;;
  esac
  shift
done
absolute build_dir results_dir evnet_bin

if ((quick)); then
  rounds=${rounds:-1} warmup=0.3 duration=1.2 idle_hold=0.5
else
  rounds=${rounds:-5} warmup=0.5 duration=1.5 idle_hold=2
fi
run_started=$SECONDS

# ---------------------------------------------------------------------------------------------
# Build

build_or_reuse loadgen asio_echo_server evnet_echo_server
# The hand-written liburing server exists only where the build found liburing.
((uring == 0 || no_build)) || build uring_echo_server >/dev/null 2>&1 || true
loadgen=$(find_bin loadgen)
asio_bin=$(find_bin asio_echo_server)
[[ -n $loadgen ]] || die "no loadgen in $build_dir"
[[ -n $asio_bin ]] || die "no asio_echo_server in $build_dir"
[[ -n $evnet_bin ]] || evnet_bin=$(find_bin evnet_echo_server)
[[ -n $evnet_bin ]] || evnet_bin=$(find_bin echo_server)

# ---------------------------------------------------------------------------------------------
# Servers

# "control" is a second process of the raw asio server, measured like the others: its ratio
# to asio is what this machine's noise alone makes of two identical servers.
servers=(asio)
declare -A server_cmd=([asio]="$asio_bin")
if ((control)); then
  servers+=(control)
  server_cmd[control]=$asio_bin
fi
if [[ -n $evnet_bin ]]; then
  [[ -x $evnet_bin ]] || die "$evnet_bin is not executable"
  # evnet on each transport: "evnet" is epoll (asio's reactor), "uring" io_uring (--no-uring
  # where the build or the kernel has none: the server would not start).
  servers+=(evnet)
  server_cmd[evnet]="env EVNET_TRANSPORT=epoll $evnet_bin"
  ((evnet_timeout == 0)) || server_cmd[evnet]+=" --timeout $evnet_timeout"
  if ((uring)); then
    servers+=(uring)
    server_cmd[uring]="env EVNET_TRANSPORT=io_uring $evnet_bin"
    ((evnet_timeout == 0)) || server_cmd[uring]+=" --timeout $evnet_timeout"
  fi
else
  echo "$script: no evnet echo server in $build_dir; evnet is left out" >&2
fi
# "liburing": the io_uring ceiling, a hand-written server on liburing alone (uring_echo_server).
liburing_bin=
((uring == 0)) || liburing_bin=$(find_bin uring_echo_server)
if [[ -n $liburing_bin ]]; then
  servers+=(liburing)
  server_cmd[liburing]=$liburing_bin
fi
if command -v node >/dev/null; then
  servers+=(node)
  server_cmd[node]="node $repo_root/benchmarks/node_echo_server.js"
else
  echo "$script: node not found; Node.js is left out" >&2
fi

declare -A server_pid server_port

# ---------------------------------------------------------------------------------------------
# Scenarios and runs

scenarios=(echo_c1 echo_c50 pipeline_c50 stream_c4 connect_c50)
declare -A scenario_args=(
  [echo_c1]="--mode echo --connections 1 --size 64"
  [echo_c50]="--mode echo --connections 50 --size 64"
  [pipeline_c50]="--mode pipeline --connections 50 --size 64 --depth 16"
  [stream_c4]="--mode stream --connections 4 --size 16384"
  [connect_c50]="--mode connect --connections 50 --size 64"
)
declare -A scenario_metric=(
  [echo_c1]=msgs_per_s [echo_c50]=msgs_per_s [pipeline_c50]=msgs_per_s
  [stream_c4]=mb_per_s [connect_c50]=conns_per_s
)
declare -A scenario_label=(
  [echo_c1]="echo c=1" [echo_c50]="echo c=50" [pipeline_c50]="pipeline c=50 d=16"
  [stream_c4]="stream c=4 16KiB" [connect_c50]="connect c=50"
)

mkdir -p "$results_dir"
declare -A results # "server scenario" -> RESULT lines, one per round
log=$results_dir/echo.log
: >"$log"

# run_one NAME SCENARIO: one loadgen run against NAME, recorded in results and the log.
run_one() {
  local name=$1 scenario=$2 line
  run_loadgen "$name" "$scenario" "${server_pid[$name]}"
  line=$result_line
  printf '  %-13s %-7s %s=%s p99_us=%s server_cpu_s=%s\n' "$scenario" "$name" \
    "${scenario_metric[$scenario]}" "$(field "${scenario_metric[$scenario]}" "$line")" \
    "$(field p99_us "$line")" "$(field server_cpu_s "$line")" >&2
}

note_load

echo "pinning: server ${server_pin[*]:-none}, loadgen ${client_pin[*]:-none};" \
  "$rounds round(s) of ${warmup}s warm-up + ${duration}s" >&2

# Every round starts the servers afresh: a process can be slower than its twin for its whole
# life (where its memory landed), which a fresh start turns into one more round's noise.
count=${#servers[@]}
for ((round = 0; round < rounds; round++)); do
  # shellcheck disable=SC2086  # the command is a program and maybe a script: split it
  for name in "${servers[@]}"; do start_server "$name" ${server_cmd[$name]}; done
  echo "round $((round + 1))/$rounds: $(for n in "${servers[@]}"; do
    printf '%s(port %s) ' "$n" "${server_port[$n]}"; done)" >&2
  for scenario in "${scenarios[@]}"; do
    for ((i = 0; i < count; i++)); do
      run_one "${servers[(i + round) % count]}" "$scenario"
    done
  done
  for name in "${servers[@]}"; do stop_pid "${server_pid[$name]}"; done
done
load_after=$(load_average)

# ---------------------------------------------------------------------------------------------
# Table

has_node=0
[[ -n ${server_cmd[node]:-} ]] && has_node=1

table=$results_dir/echo.md
data=$results_dir/echo.dat
{
  echo "## Echo servers: throughput"
  echo
  echo "Median of $rounds round(s) of ${warmup} s warm-up + ${duration} s per scenario and" \
    "server, servers alternated; $(date -u +%Y-%m-%d); $(machine "$build_dir"), Release;" \
    "evnet $(evnet_version include); server pinned to ${server_pin[*]:-no CPU}, loadgen to" \
    "${client_pin[*]:-no CPU}; load average $load_before before, $load_after after." \
    "\"vs asio\" and \"vs node\": the median over the rounds of the ratio within one round;" \
    "\"rounds\": the lowest and highest of those ratios to asio.$( ((evnet_timeout)) &&
      echo " evnet with an idle timeout of $evnet_timeout ms on every socket.")"
  if ((control)); then
    echo "\"control\" is a second process of the raw asio server: its ratio to asio is the" \
      "noise of this machine alone, the margin within which two servers cannot be told apart."
  fi
  if busy "$load_before"; then
    echo "The load average was $load_before at the start (other work, or a benchmark run just before):" \
      "throughput is noisy; server CPU per message and cost_per_msg.sh are the steadier figures."
  fi
  echo
  printf '| scenario | server | throughput | vs asio | rounds |%s p99 µs | server CPU s / M msgs | CPU vs asio |\n' \
    "$( ((has_node)) && echo " vs node |")"
  printf '|---|---|---:|---:|---:|%s---:|---:|---:|\n' "$( ((has_node)) && echo "---:|")"
  for scenario in "${scenarios[@]}"; do
    metric=${scenario_metric[$scenario]}
    base_cpu=$(cpu_per_million "asio $scenario")
    for name in "${servers[@]}"; do
      value=$(median_of "$metric" "$name $scenario")
      spread=-
      [[ $name == asio ]] || spread=$(round_ratios "$metric" "$name $scenario" "asio $scenario" | range)
      printf '| %s | %s | %s | %s | %s |%s %s | %.3f | %s |\n' "${scenario_label[$scenario]}" \
        "$name" "$(awk -v v="$value" -v m="$metric" 'BEGIN { printf "%.0f %s", v,
          (m == "mb_per_s" ? "MB/s" : m == "conns_per_s" ? "conn/s" : "msg/s") }')" \
        "$(round_ratio "$metric" "$name $scenario" "asio $scenario")" "$spread" \
        "$( ((has_node)) && echo " $(round_ratio "$metric" "$name $scenario" "node $scenario") |")" \
        "$(median_of p99_us "$name $scenario")" "$(cpu_per_million "$name $scenario")" \
        "$(ratio "$(cpu_per_million "$name $scenario")" "$base_cpu")"
    done
  done
  echo
  echo "Throughput is messages/s (64 bytes), MB/s echoed (stream, 1 MB = 10^6 bytes) or" \
    "connections/s (connect: open, one 64-byte echo, close). Server CPU is utime + stime over" \
    "the measured window per million messages (stream: 16 KiB chunks; connect: connections)."
} >"$table"

# Chart data: messages/s (stream: chunks/s, connect: connections/s) per scenario and server,
# then each server's ratio to asio as in the table.
{
  printf 'scenario'
  printf ' %s' "${servers[@]}"
  printf ' %s/asio' "${servers[@]}"
  echo
  for scenario in "${scenarios[@]}"; do
    printf '"%s"' "${scenario_label[$scenario]}"
    for name in "${servers[@]}"; do printf ' %s' "$(median_of msgs_per_s "$name $scenario")"; done
    for name in "${servers[@]}"; do
      printf ' %.4f' "$(round_ratio_value msgs_per_s "$name $scenario" "asio $scenario")"
    done
    echo
  done
} >"$data"

echo
cat "$table"

if ((chart)); then
  if command -v gnuplot >/dev/null; then
    gnuplot -e "datafile='$data'; outfile='$results_dir/echo.png'; nservers=${#servers[@]}; control=$control;" \
      -e "subtitle='$(date -u +%Y-%m-%d), $(nproc) CPUs, median of $rounds round(s), load average $load_before'" \
      "$repo_root/benchmarks/plot.gnuplot"
    echo "chart: $results_dir/echo.png" >&2
  else
    echo "$script: gnuplot not found (apt-get install gnuplot-nox); no chart" >&2
  fi
fi

# ---------------------------------------------------------------------------------------------
# Idle memory, and everything in one file

if ((idle)); then
  echo >&2
  echo "idle memory:" >&2
  "$repo_root/benchmarks/idle_memory.sh" --no-build --build-dir "$build_dir" \
    --results "$results_dir" --hold "$idle_hold" >/dev/null
  echo
  cat "$results_dir/idle_memory.md"
fi

{
  cat "$table"
  echo
  echo "![messages/s per server per scenario](echo.png)"
  if ((idle)); then
    echo
    cat "$results_dir/idle_memory.md"
  fi
  if [[ -f $results_dir/cost_per_msg.md ]]; then
    echo
    cat "$results_dir/cost_per_msg.md"
  fi
} >"$results_dir/performance.md"
echo
echo "results: $results_dir (echo.md, echo.log, echo.dat, echo.png, idle_memory.md," \
  "performance.md); took $((SECONDS - run_started)) s"
