#!/usr/bin/env bash
# hub_cost.sh — what a request costs the hub and redis-server, in the two figures this machine
# measures steadily: user-space instructions (valgrind --tool=callgrind) and system calls
# (strace -c -f), per request of run_hub.sh's redis-benchmark tests.
#
#   benchmarks/hub_cost.sh [--build-dir DIR] [--no-build] [--results DIR] [--lists]
#                          [--pipelined] [--appendonly] [--short N] [--long N] [--keep]
#
# run_hub.sh measures requests/s and server CPU per request, and on a shared 2-CPU machine
# both move by about ±10% between two runs of the same server (its control): where the hub and
# redis-server are close, as unpipelined, the noise decides the ratio. This script counts
# instead. Tests, each with 50 clients (-c 50): PING_INLINE, PING_MBULK, PUBLISH with no
# subscriber; --lists adds LPUSH, RPUSH, LPOP, RPOP and LRANGE_100 (as run_hub.sh: its count
# includes the LPUSH run redis-benchmark makes first to fill the list); --pipelined runs each
# with -P 16 too. --appendonly runs both servers with their append-only file fsynced every
# second (as run_hub.sh --appendonly).
#
# Each server is started fresh under the tool for a short run (--short, 10000 requests) and
# again for a long run (--long, 50000), and stopped with SIGTERM so that the tool reports its
# totals; the figure is (long - short) / (long - short requests), so start-up and the 50
# connections cancel. strace runs send a fifth of those counts. Instructions are callgrind's
# Ir of the whole process (user space; the kernel's work is not counted, which the system
# calls stand for); redis-server's timer (serverCron, 10 times a second) runs longer in a
# longer run and adds its instructions to redis-server's figure (under ~1% of it). Both tools
# slow a server down, which lets more requests gather per epoll_wait than at full speed, and
# gives clients time to answer before a server reads again: the system calls are those under
# strace, the same for both servers. "full speed" counts the calls of the uninstrumented server
# over a long run (the kernel's raw_syscalls:sys_enter tracepoint, perf stat; "-" where perf or
# the tracepoint is unavailable), not differenced (its start-up is under 0.01 per request).
#
# Prints a markdown table and writes it to DIR/hub_cost.md (DIR: --results, default
# benchmarks/results); --keep leaves the tools' outputs in DIR/hub_cost/. Takes ~2 minutes
# (--lists ~3) on an idle 2-core machine.
set -euo pipefail

script=hub_cost.sh
# shellcheck source=benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

short=10000
long=50000
lists=0 pipelined=0 appendonly=0 keep=0

usage() {
  echo "usage: $0 [--build-dir DIR] [--no-build] [--results DIR] [--lists] [--pipelined]" \
    "[--appendonly] [--short N] [--long N] [--keep]" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --short) (($# >= 2)) || usage; short=$2; shift ;;
    --long) (($# >= 2)) || usage; long=$2; shift ;;
    --lists) lists=1 ;;
    --pipelined) pipelined=1 ;;
    --appendonly) appendonly=1 ;;
    --keep) keep=1 ;;
    --quick | --rounds) echo "$script: unknown argument '$1'" >&2; usage ;;
    *) common_option "$@"; shift $((taken - 1)) ;;
  esac
  shift
done
[[ $short =~ ^[0-9]+$ && $long =~ ^[0-9]+$ ]] || usage
((long > short)) || { echo "$script: --long must exceed --short" >&2; exit 2; }
absolute build_dir results_dir

for tool in valgrind strace redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

build -DEVNET_BUILD_EXAMPLES=ON -DEVNET_BUILD_TESTS=OFF hub
hub_bin=$build_dir/examples/hub
[[ -x $hub_bin ]] || die "$hub_bin is missing (build it first)"

# ---------------------------------------------------------------------------------------------
# Tests (run_hub.sh's)

payload=$(printf 'x%.0s' $(seq 64))
tests=(ping_inline ping_mbulk publish)
((lists)) && tests+=(lpush rpush lpop rpop lrange_100)
declare -A test_args test_label
for t in "${tests[@]}"; do test_args[$t]="-t $t" test_label[$t]=${t^^}; done
test_args[publish]="PUBLISH nobody $payload" test_label[publish]="PUBLISH, no subscriber"
if ((pipelined)); then
  for t in "${tests[@]}"; do
    test_args[${t}_p16]="-P 16 ${test_args[$t]}" test_label[${t}_p16]="${test_label[$t]} -P 16"
  done
  for t in "${tests[@]}"; do tests+=("${t}_p16"); done
fi
redis_aof=(--appendonly no) hub_aof=() persistence="no persistence"
if ((appendonly)); then
  redis_aof=(--appendonly yes --appendfsync everysec --aof-use-rdb-preamble no)
  hub_aof=(--appendonly yes --appendfsync everysec)
  persistence="append-only file fsynced every second"
fi
servers=(redis hub)

# ---------------------------------------------------------------------------------------------
# Runs of one server

# launch NAME DIR [TOOL...]: starts server NAME (redis or hub) pinned, under TOOL's command if
# given, its files in DIR and its output in DIR.stdout and DIR.stderr, and waits until it
# answers; sets launched (the process started) and launched_port.
launch() {
  local name=$1 dir=$2 command=()
  shift 2
  mkdir -p "$dir"
  if [[ $name == redis ]]; then
    launched_port=$(free_port)
    command=(redis-server --port "$launched_port" --bind 127.0.0.1 --save '' "${redis_aof[@]}"
      --dir "$dir" --logfile "$dir/log")
  else
    command=("$hub_bin" --port 0 --host 127.0.0.1 "${hub_aof[@]}" --dir "$dir")
  fi
  "${server_pin[@]}" "$@" "${command[@]}" >"$dir.stdout" 2>"$dir.stderr" &
  launched=$!
  started "$launched"
  if [[ $name == hub ]]; then
    launched_port=$(listening_port "$launched" "$dir.stdout" "$dir.stderr" "hub ${*:+under $1}" 600)
    return
  fi
  for _ in $(seq 600); do
    [[ $(redis-cli -p "$launched_port" ping 2>/dev/null) == PONG ]] && return
    kill -0 "$launched" 2>/dev/null || break
    sleep 0.1
  done
  die "redis-server did not start: $(cat "$dir/log" "$dir.stderr" 2>/dev/null)"
}

# load PORT TEST N: redis-benchmark's N requests of TEST, 50 clients; a failure stops the script.
load() {
  # shellcheck disable=SC2086  # test_args holds several words
  "${client_pin[@]}" redis-benchmark -h 127.0.0.1 -p "$1" -c 50 -n "$3" -q ${test_args[$2]} \
    >"$work_dir/benchmark.out" 2>&1 ||
    { cat "$work_dir/benchmark.out" >&2; die "redis-benchmark $2 on port $1 failed"; }
}

# measure TOOL NAME TEST N: runs server NAME under TOOL (callgrind|strace) while N requests of
# TEST come, stops it, and leaves the tool's output in $work_dir/TOOL.NAME.TEST.N.
measure() {
  local tool=$1 name=$2 test=$3 n=$4 out=$work_dir/$1.$2.$3.$4 pid prefix=()
  case $tool in
    callgrind) prefix=(valgrind --tool=callgrind --callgrind-out-file="$out" --dump-instr=no) ;;
    strace) prefix=(strace -f -c -o "$out" --) ;;
  esac
  launch "$name" "$out.dir" "${prefix[@]}"
  # valgrind runs the server in its own process; strace runs it as its child (taskset execs).
  pid=$launched
  [[ $tool == strace ]] && pid=$(cut -d' ' -f1 "/proc/$launched/task/$launched/children")
  load "$launched_port" "$test" "$n"
  kill -TERM "$pid"
  for _ in $(seq 600); do
    kill -0 "$launched" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$launched" 2>/dev/null && die "$name under $tool did not exit on SIGTERM"
  wait "$launched" || true
  [[ -s $out ]] || die "$tool wrote no output for $name"
}

# full_speed NAME TEST: system calls per request of server NAME at full speed over --long
# requests of TEST (perf attaches once the server is up); "-" without perf.
full_speed() {
  local name=$1 test=$2 dir=$work_dir/fast.$1.$2 count
  if ! perf_usable; then
    echo "-"
    return
  fi
  launch "$name" "$dir"
  perf_attach "$launched" "$dir.perf"
  load "$launched_port" "$test" "$long"
  count=$(perf_count "$dir.perf")
  stop_pid "$launched"
  per_unit 0 "${count:-0}" "$long"
}

# ---------------------------------------------------------------------------------------------
# Runs

declare -A instr sys fast breakdown
load_before=$(load_average)
began=$SECONDS
strace_short=$((short / 5)) strace_long=$((long / 5))
for test in "${tests[@]}"; do
  for name in "${servers[@]}"; do
    echo "  ${test_label[$test]}: $name ..." >&2
    count_difference "$name" "$test" "$short" "$long" "$strace_short" "$strace_long"
    fast[$name $test]=$(full_speed "$name" "$test")
  done
done
elapsed=$((SECONDS - began))

# ---------------------------------------------------------------------------------------------
# Table

mkdir -p "$results_dir"
name=hub_cost
((lists)) && name+=_lists
((appendonly)) && name+=_appendonly
report=$results_dir/$name.md
{
  echo "## The hub against redis-server: cost per request"
  echo
  echo "User-space instructions (\`valgrind --tool=callgrind\`, Ir of the whole process) and" \
    "system calls (\`strace -c -f\`) per request of redis-benchmark -c 50: (long run − short" \
    "run) / (difference in requests), so start-up cancels; requests: callgrind $long − $short," \
    "strace $strace_long − $strace_short; $persistence; $(date -u +%Y-%m-%d)," \
    "$(machine "$build_dir"), Release; $(valgrind --version); $(redis-server --version |
      sed 's/ sha=.*//'); evnet $(evnet_version include examples/hub);" \
    "load average $load_before before. Took ${elapsed} s."
  echo
  echo "| test | redis instructions/req | hub instructions/req | hub/redis |" \
    "redis syscalls/req | hub syscalls/req | hub/redis | full speed: redis | hub | hub/redis |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for test in "${tests[@]}"; do
    printf '| %s | %.0f | %.0f | %s | %.3f | %.3f | %s | %s | %s | %s |\n' \
      "${test_label[$test]}" "${instr[redis $test]}" "${instr[hub $test]}" \
      "$(ratio "${instr[hub $test]}" "${instr[redis $test]}")" \
      "${sys[redis $test]}" "${sys[hub $test]}" "$(ratio "${sys[hub $test]}" "${sys[redis $test]}")" \
      "${fast[redis $test]}" "${fast[hub $test]}" "$(ratio "${fast[hub $test]}" "${fast[redis $test]}")"
  done
  echo
  echo "System calls per request, by name:"
  echo
  for test in "${tests[@]}"; do
    for server in "${servers[@]}"; do
      echo "- ${test_label[$test]}, $server: ${breakdown[$server $test]}"
    done
  done
} >"$report"
cat "$report"

if ((keep)); then
  mkdir -p "$results_dir/hub_cost"
  cp "$work_dir"/callgrind.*[0-9] "$work_dir"/strace.*[0-9] "$results_dir/hub_cost/"
  echo "tool outputs: $results_dir/hub_cost/" >&2
fi
