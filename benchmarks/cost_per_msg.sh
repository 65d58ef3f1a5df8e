#!/usr/bin/env bash
# cost_per_msg.sh — what an echoed message costs each server: user-space instructions
# (valgrind --tool=callgrind) and system calls (strace -c -f), raw asio vs evnet side by side.
#
#   benchmarks/cost_per_msg.sh [--build-dir DIR] [--no-build] [--results DIR] [--echo-only]
#                              [--node] [--no-uring] [--short N] [--long N] [--keep]
#
# Servers: asio (benchmarks/asio_echo_server.cpp), evnet (examples/echo_server.cpp),
# evnet+timeout (benchmarks/evnet_echo_server.cpp --timeout 30000: an idle timeout armed on
# every socket) and evnet+uring (examples/echo_server.cpp with EVNET_TRANSPORT=io_uring; not
# with --no-uring, where the build or the kernel has no io_uring); --node adds
# node_echo_server.js (slow under valgrind: ~2 minutes more, and its JIT makes the count less
# repeatable).
#
# Scenarios: echo c=50 and pipeline c=50 d=16 (--echo-only: echo alone), 64-byte messages, and
# connect c=50 (open, one 64-byte echo, close: the figures are per connection).
# Each server is started fresh under the tool for a short run (--short, 20000 messages) and
# again for a long run (--long, 120000), loadgen --messages N sending one message per
# connection as a warm-up and then exactly N messages, and the server is stopped with SIGTERM
# so that the tool reports its totals. The figure is (long - short) / (long - short messages):
# start-up, connection set-up and shutdown cancel. strace stops the server at every system
# call (~6000 messages/s in echo), so its runs send a fifth of those counts (4000 and 24000 by
# default); pipeline runs, cheaper per message, send five times as many, connect runs a tenth
# as many connections (2000 and 12000 under callgrind).
# Instructions are callgrind's Ir (user space only: the kernel's work is not counted); system
# calls are every call of every thread. Both tools slow the server down, which lets more
# events gather per epoll_wait than at full speed: the syscall figure is the one under
# instrumentation, the same for every server.
#
# Instructions per message repeat to within ~3% from run to run (how many events one
# epoll_wait returns varies with timing, and with it the per-message share of the loop's
# fixed costs); system calls to within ~0.1 per message in echo (asio's speculative reads
# that find nothing vary the most). Takes ~2 minutes on an idle 2-core machine (~5 with
# --node). Prints a markdown table and writes it, with the
# per-syscall breakdown, to DIR/cost_per_msg.md (DIR: --results, default benchmarks/results).
# --keep leaves the callgrind and strace outputs in DIR/cost_per_msg/ (for callgrind_annotate).
set -euo pipefail

script=cost_per_msg.sh
# shellcheck source=benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

build_dir=build/bench
results_dir=benchmarks/results
short=20000
long=120000
no_build=0 echo_only=0 with_node=0 keep=0 uring=1

usage() {
  echo "usage: $0 [--build-dir DIR] [--no-build] [--results DIR] [--echo-only] [--node]" \
    "[--no-uring] [--short N] [--long N] [--keep]" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --build-dir) (($# >= 2)) || usage; build_dir=$2; shift ;;
    --results) (($# >= 2)) || usage; results_dir=$2; shift ;;
    --short) (($# >= 2)) || usage; short=$2; shift ;;
    --long) (($# >= 2)) || usage; long=$2; shift ;;
    --no-build) no_build=1 ;;
    --echo-only) echo_only=1 ;;
    --node) with_node=1 ;;
    --no-uring) uring=0 ;;
    --keep) keep=1 ;;
    -h | --help) usage ;;
    *) echo "$script: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
((long > short)) || { echo "$script: --long must exceed --short" >&2; exit 2; }
absolute build_dir results_dir

for tool in valgrind strace; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# ---------------------------------------------------------------------------------------------
# Build

build loadgen asio_echo_server evnet_echo_server echo_server
loadgen=$build_dir/benchmarks/loadgen
for bin in "$loadgen" "$build_dir/benchmarks/asio_echo_server" \
  "$build_dir/benchmarks/evnet_echo_server" "$build_dir/examples/echo_server"; do
  [[ -x $bin ]] || die "$bin is missing (build it first)"
done

servers=(asio evnet evnet+timeout)
declare -A server_cmd=(
  [asio]="$build_dir/benchmarks/asio_echo_server"
  [evnet]="$build_dir/examples/echo_server"
  [evnet+timeout]="$build_dir/benchmarks/evnet_echo_server --timeout 30000"
)
# Every server runs with EVNET_TRANSPORT set: epoll, or io_uring for evnet+uring.
declare -A server_transport=()
if ((uring)); then
  servers+=(evnet+uring)
  server_cmd[evnet+uring]=$build_dir/examples/echo_server
  server_transport[evnet+uring]=io_uring
fi
if ((with_node)); then
  command -v node >/dev/null || die "node not found"
  servers+=(node)
  server_cmd[node]="node $repo_root/benchmarks/node_echo_server.js"
fi

scenarios=(echo_c50)
((echo_only)) || scenarios+=(pipeline_c50 connect_c50)
declare -A scenario_args=(
  [echo_c50]="--mode echo --connections 50 --size 64"
  [pipeline_c50]="--mode pipeline --connections 50 --size 64 --depth 16"
  [connect_c50]="--mode connect --connections 50 --size 64"
)
declare -A scenario_label=([echo_c50]="echo c=50" [pipeline_c50]="pipeline c=50 d=16"
  [connect_c50]="connect c=50 (per connection)")
# Message counts: --short/--long times scale / 10 (connect: connections, a tenth as many).
declare -A scenario_scale=([echo_c50]=10 [pipeline_c50]=50 [connect_c50]=1)

# ---------------------------------------------------------------------------------------------
# One measured run

# measure TOOL NAME SCENARIO N: runs server NAME under TOOL (callgrind|strace) while loadgen
# sends exactly N messages, stops it, and leaves the tool's output in $work_dir/TOOL.NAME.SCENARIO.N
measure() {
  local tool=$1 name=$2 scenario=$3 n=$4
  local tag=$tool.${name//+/_}.$scenario.$n
  local out=$work_dir/$tag stdout=$work_dir/$tag.stdout stderr=$work_dir/$tag.stderr
  local wrapper pid='' port='' status=0 began=$SECONDS
  case $tool in
    callgrind)
      # shellcheck disable=SC2086  # the command is a program and maybe a script: split it
      env EVNET_TRANSPORT="${server_transport[$name]:-epoll}" \
        valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no \
        ${server_cmd[$name]} --port 0 --host 127.0.0.1 >"$stdout" 2>"$stderr" &
      ;;
    strace)
      # shellcheck disable=SC2086
      env EVNET_TRANSPORT="${server_transport[$name]:-epoll}" \
        strace -f -c -o "$out" -- ${server_cmd[$name]} --port 0 --host 127.0.0.1 \
        >"$stdout" 2>"$stderr" &
      ;;
  esac
  wrapper=$!
  started "$wrapper"
  # node under valgrind needs ~20 s to start
  port=$(listening_port "$wrapper" "$stdout" "$stderr" "$name under $tool" 600)
  # valgrind runs the server in its own process; strace runs it as its child.
  if [[ $tool == strace ]]; then
    pid=$(cut -d' ' -f1 "/proc/$wrapper/task/$wrapper/children")
  else
    pid=$wrapper
  fi
  # shellcheck disable=SC2086  # scenario_args holds several flags
  "$loadgen" --host 127.0.0.1 --port "$port" ${scenario_args[$scenario]} --warmup 0 \
    --messages "$n" --timeout 120 >"$work_dir/loadgen.out" 2>"$work_dir/loadgen.err" ||
    status=$?
  if ((status != 0)); then
    echo "$script: FAILED: loadgen against '$name' under $tool (exit $status)" >&2
    cat "$work_dir/loadgen.err" >&2
    exit 1
  fi
  kill -TERM "$pid"
  for _ in $(seq 300); do
    kill -0 "$wrapper" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$wrapper" 2>/dev/null && die "'$name' under $tool did not exit on SIGTERM"
  wait "$wrapper" || true
  echo "    $tool, $n messages: $((SECONDS - began)) s" >&2
  [[ -s $out ]] || die "$tool wrote no output for '$name'"
}

# full_speed_syscalls NAME SCENARIO: system calls per message with the server at full speed,
# counted by the kernel's raw_syscalls tracepoint (perf stat), which does not slow the server
# down as strace does: the long run's count over its messages (its start-up, 50 connections,
# is under 0.01 per message). Not differenced as the other columns are: at full speed an
# io_uring loop makes a system call per wake-up, and how often it sleeps varies from run to
# run by more than a short run's whole count. Prints "-" where perf or the tracepoint is
# unavailable.
full_speed_syscalls() {
  local name=$1 scenario=$2 pid port='' count
  local n=$((long * ${scenario_scale[$2]} / 10))
  if ! perf_usable; then
    echo "-"
    return
  fi
  # shellcheck disable=SC2086
  env EVNET_TRANSPORT="${server_transport[$name]:-epoll}" ${server_cmd[$name]} --port 0 \
    --host 127.0.0.1 >"$work_dir/fast.stdout" 2>"$work_dir/fast.stderr" &
  pid=$!
  started "$pid"
  port=$(listening_port "$pid" "$work_dir/fast.stdout" "$work_dir/fast.stderr" "$name")
  perf_attach "$pid" "$work_dir/perf.$n"
  # shellcheck disable=SC2086
  "$loadgen" --host 127.0.0.1 --port "$port" ${scenario_args[$scenario]} --warmup 0 \
    --messages "$n" --timeout 120 >/dev/null 2>"$work_dir/loadgen.err" ||
    { cat "$work_dir/loadgen.err" >&2; exit 1; }
  count=$(perf_count "$work_dir/perf.$n")
  kill -TERM "$pid"
  wait "$pid" || true
  per_unit 0 "${count:-0}" "$n"
}

# ---------------------------------------------------------------------------------------------
# Runs

declare -A instr sys fast breakdown counts
load_before=$(load_average)
started=$SECONDS
for scenario in "${scenarios[@]}"; do
  scale=${scenario_scale[$scenario]}
  cg_short=$((short * scale / 10)) cg_long=$((long * scale / 10))
  strace_short=$((short * scale / 50)) strace_long=$((long * scale / 50))
  counts[$scenario]="callgrind $cg_long − $cg_short, strace $strace_long − $strace_short"
  for name in "${servers[@]}"; do
    echo "  ${scenario_label[$scenario]}: $name ..." >&2
    count_difference "$name" "$scenario" "$cg_short" "$cg_long" "$strace_short" "$strace_long"
    fast[$name $scenario]=$(full_speed_syscalls "$name" "$scenario")
  done
done
elapsed=$((SECONDS - started))

# ---------------------------------------------------------------------------------------------
# Table

mkdir -p "$results_dir"
report=$results_dir/cost_per_msg.md
{
  echo "## Server cost per echoed message"
  echo
  echo "User-space instructions (\`valgrind --tool=callgrind\`, Ir) and system calls" \
    "(\`strace -c -f\`) per echoed 64-byte message: (long run − short run) / (difference in" \
    "messages), so start-up cancels; messages: $(for sc in "${scenarios[@]}"; do
      printf '%s: %s; ' "${scenario_label[$sc]}" "${counts[$sc]}"; done)$(date -u +%Y-%m-%d)," \
    "$(machine "$build_dir"), Release; $(valgrind --version)," \
    "$(strace -V | head -n 1 | sed 's/ -- version//'); evnet $(evnet_version include examples/echo_server.cpp);" \
    "load average $load_before before. Took ${elapsed} s."
  echo
  echo "strace stops the server at every call, which gives peers time to answer and changes how" \
    "often a read finds data; \"full speed\" counts the calls of the uninstrumented server" \
    "(perf stat, tracepoint raw_syscalls:sys_enter) over the long run's messages, not" \
    "differenced: on io_uring it is about one call per wake-up of the loop, and how often the" \
    "loop sleeps varies from run to run."
  echo
  echo "| scenario | server | instructions/msg | vs asio | syscalls/msg | vs asio |" \
    "full speed | vs asio |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
  for scenario in "${scenarios[@]}"; do
    for name in "${servers[@]}"; do
      printf '| %s | %s | %.0f | %s | %.3f | %s | %s | %s |\n' "${scenario_label[$scenario]}" \
        "$name" "${instr[$name $scenario]}" \
        "$(ratio "${instr[$name $scenario]}" "${instr[asio $scenario]}")" \
        "${sys[$name $scenario]}" "$(ratio "${sys[$name $scenario]}" "${sys[asio $scenario]}")" \
        "${fast[$name $scenario]}" "$(ratio "${fast[$name $scenario]}" "${fast[asio $scenario]}")"
    done
  done
  echo
  echo "System calls per message, by name:"
  echo
  for scenario in "${scenarios[@]}"; do
    for name in "${servers[@]}"; do
      echo "- ${scenario_label[$scenario]}, $name: ${breakdown[$name $scenario]}"
    done
  done
  echo
  echo "Servers: asio = benchmarks/asio_echo_server.cpp, evnet = examples/echo_server.cpp," \
    "evnet+timeout = benchmarks/evnet_echo_server.cpp --timeout 30000 (socket.setTimeout on" \
    "every socket)$( ((uring)) && echo ", evnet+uring = examples/echo_server.cpp on io_uring")$(
      ((with_node)) && echo ", node = benchmarks/node_echo_server.js")."
} >"$report"
cat "$report"

if ((keep)); then
  mkdir -p "$results_dir/cost_per_msg"
  cp "$work_dir"/callgrind.* "$work_dir"/strace.* "$results_dir/cost_per_msg/"
  rm -f "$results_dir"/cost_per_msg/*.stdout "$results_dir"/cost_per_msg/*.stderr
  echo "tool outputs: $results_dir/cost_per_msg/" >&2
fi
