# shellcheck shell=bash
# lib.sh — what the benchmark scripts share: paths, CPU pinning, starting and stopping servers,
# medians and ratios, and the description of the machine a result was measured on.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # after setting `script` (for messages)
#
# Sets repo_root and cd's there; the variables it sets for the scripts are: repo_root,
# server_pin, client_pin, work_dir, started_pids, and the defaults of the options the scripts
# share (see common_option). The scripts keep their own options and their own tables.
# The functions over a script's rounds (per_round, median_of, round_ratio..., per_message) read
# its associative array `results`: "server scenario" -> loadgen's RESULT lines, one per round.
# The counting helpers at the end (instructions, syscalls, per_unit, syscall_breakdown,
# perf_attach/perf_count) serve the scripts that count a server's cost per unit of work.

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root" || exit 1
: "${script:=${0##*/}}"

die() {
  echo "$script: $*" >&2
  exit 1
}

# absolute VAR...: makes each named variable's path absolute, relative to the repository.
absolute() {
  local var
  for var in "$@"; do
    [[ -z ${!var} || ${!var} == /* ]] || printf -v "$var" '%s/%s' "$repo_root" "${!var}"
  done
}

# Servers run on CPU 0 and the load on CPU 1 when there are two CPUs: server_pin and
# client_pin are the commands to put in front.
# shellcheck disable=SC2034  # used by the scripts that source this file
server_pin=() client_pin=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
  # shellcheck disable=SC2034
  server_pin=(taskset -c 0) client_pin=(taskset -c 1)
fi

# A scratch directory, and every process started with `started`, are gone when the script
# exits: SIGTERM first, SIGKILL after a second.
work_dir=$(mktemp -d)
started_pids=()
started() { started_pids+=("$1"); }
stop_pid() {
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null || true
}
cleanup() {
  local pid
  for pid in "${started_pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# listening_port PID OUT ERR NAME [TRIES]: waits (TRIES tenths of a second, 100 by default) for
# the "listening on <host>:<port>" line every server prints in OUT, and prints the port; shows
# ERR and stops the script if process PID exits or says nothing in time.
listening_port() {
  local pid=$1 out=$2 err=$3 name=$4 tries=${5:-100} port=''
  for _ in $(seq "$tries"); do
    port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out")
    [[ -n $port ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    echo "$script: server '$name' did not report 'listening on <host>:<port>'" >&2
    cat "$err" >&2
    exit 1
  fi
  echo "$port"
}

# start_server NAME PROGRAM [ARG...]: starts PROGRAM ARGs --port 0 --host 127.0.0.1 pinned with
# server_pin, its output in $work_dir/NAME.out and .err; waits for its "listening on" line and
# records server_pid[NAME] and server_port[NAME] (associative arrays the script declares).
# shellcheck disable=SC2034,SC2004  # the script's arrays, associative
start_server() {
  local name=$1 pid
  shift
  "${server_pin[@]}" "$@" --port 0 --host 127.0.0.1 >"$work_dir/$name.out" 2>"$work_dir/$name.err" &
  pid=$!
  started "$pid"
  server_port[$name]=$(listening_port "$pid" "$work_dir/$name.out" "$work_dir/$name.err" "$name")
  server_pid[$name]=$pid
}

# run_loadgen NAME SCENARIO PID [ARG...]: one run of $loadgen against server NAME (at
# server_port[NAME]) with scenario_args[SCENARIO], --warmup $warmup --duration $duration, the
# server's CPU taken from process PID, and ARGs. Its RESULT line goes to $log and
# results["NAME SCENARIO"], and is left in result_line; a failed run stops the script.
# shellcheck disable=SC2154  # loadgen, scenario_args, warmup, duration, log: the script's
run_loadgen() {
  local name=$1 scenario=$2 pid=$3 status=0
  shift 3
  # shellcheck disable=SC2086  # scenario_args holds several flags
  result_line=$("${client_pin[@]}" "$loadgen" --host 127.0.0.1 --port "${server_port[$name]}" \
    ${scenario_args[$scenario]} --warmup "$warmup" --duration "$duration" --server-pid "$pid" \
    "$@" 2>"$work_dir/loadgen.err") || status=$?
  if ((status != 0)) || [[ $result_line != RESULT* ]]; then
    echo "$script: FAILED: loadgen against '$name' in scenario $scenario (exit $status)" >&2
    cat "$work_dir/loadgen.err" >&2
    exit 1
  fi
  echo "server=$name scenario=$scenario $result_line" >>"$log"
  results["$name $scenario"]+="$result_line"$'\n'
}

# free_port: a TCP port nobody listens on, for a server that cannot take port 0: the kernel
# picks an ephemeral one, which is released (someone may take it meanwhile).
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
    return
  fi
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 30000))
    # A refused connection means nothing listens there.
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  die "found no free port"
}

# The options run_echo.sh, run_hub.sh and run_tls.sh share, with their defaults:
#   --quick            one short round (the script's own figures)
#   --rounds N         rounds (5; 1 with --quick): rounds is empty unless given
#   --build-dir DIR    where to configure and build (build/bench)
#   --no-build         use the binaries already in DIR
#   --results DIR      where to write the tables (benchmarks/results)
# common_usage is their synopsis, for the script's usage().
build_dir=build/bench
results_dir=benchmarks/results
rounds=
quick=0 no_build=0
# shellcheck disable=SC2034  # used by the scripts that source this file
common_usage="[--quick] [--rounds N] [--build-dir DIR] [--no-build] [--results DIR]"

# common_option ARG...: takes one of the options above from the front of the script's
# arguments and sets `taken` to how many words it used; -h and --help call the script's
# usage(), and so does an option that is not one of them, after saying so. A script's option
# loop ends with `*) common_option "$@"; shift $((taken - 1)) ;;`.
# shellcheck disable=SC2034  # set for the scripts that source this file
common_option() {
  taken=1
  case $1 in
    --quick) quick=1 ;;
    --no-build) no_build=1 ;;
    --rounds) (($# >= 2)) || usage; rounds=$2; taken=2 ;;
    --build-dir) (($# >= 2)) || usage; build_dir=$2; taken=2 ;;
    --results) (($# >= 2)) || usage; results_dir=$2; taken=2 ;;
    -h | --help) usage ;;
    *) echo "$script: unknown argument '$1'" >&2; usage ;;
  esac
}

# build [-DOPTION...] TARGET...: configures $build_dir (Release, benchmarks on, and the -D
# options given) and builds the TARGETs quietly; returns non-zero if either step fails. With
# --no-build it does nothing.
build() {
  local configure=() targets=() arg
  for arg; do
    if [[ $arg == -D* ]]; then configure+=("$arg"); else targets+=("$arg"); fi
  done
  ((!no_build)) || return 0
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DEVNET_BUILD_BENCHMARKS=ON \
    "${configure[@]}" >/dev/null || return 1
  cmake --build "$build_dir" --parallel "$(nproc)" --target "${targets[@]}" >/dev/null
}

# build_or_reuse ARG...: build, or, if that fails, a warning and the binaries already there.
build_or_reuse() {
  build "$@" || echo "$script: building in $build_dir failed; using the binaries already there" >&2
}

# median: the median of the numbers on stdin, one per line (blank lines ignored; 0 if none).
median() {
  sort -g | awk 'NF { v[++n] = $1 } END {
    if (n == 0) print 0; else if (n % 2) print v[(n + 1) / 2]; else print (v[n / 2] + v[n / 2 + 1]) / 2 }'
}

# ratio A B: "A/Bx" with two decimals, "-" if B is not positive or A is "-".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "-" && b > 0) printf "%.2fx", a / b; else print "-" }'; }

# pair_ratios A B: the ratio of line i of A to line i of B (A and B: numbers, one per line):
# figures of two servers measured back to back in the same round.
pair_ratios() {
  paste -d' ' <(printf '%s\n' "$1") <(printf '%s\n' "$2") | awk 'NF == 2 && $2 > 0 { print $1 / $2 }'
}

# range: "lowest–highest" of the numbers on stdin, two decimals ("-" if none).
range() {
  awk 'NF { if (n++ == 0 || $1 < lo) lo = $1; if (n == 1 || $1 > hi) hi = $1 }
    END { if (n > 1) printf "%.2f–%.2f", lo, hi; else if (n) printf "%.2f", lo; else print "-" }'
}

# evnet_version PATH...: the commit measured, "+ uncommitted changes" if any of the PATHs (the
# code measured: include, and the example if it is one) differ from it.
evnet_version() {
  local commit
  commit=$(git -C "$repo_root" rev-parse --short HEAD 2>/dev/null) || { echo unknown; return; }
  git -C "$repo_root" diff --quiet HEAD -- "$@" 2>/dev/null || commit+=" + uncommitted changes"
  echo "$commit"
}

# machine BUILD_DIR: "N CPUs (model), kernel; compiler" for a result's header line.
machine() {
  local compiler cpu_model
  compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$1/CMakeCache.txt" 2>/dev/null)
  compiler=$("${compiler:-c++}" --version 2>/dev/null | head -n 1)
  cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  echo "$(nproc) CPUs (${cpu_model:-unknown CPU}), $(uname -srm); ${compiler:-unknown compiler}"
}

load_average() { cut -d' ' -f1 /proc/loadavg; }
# busy LOAD: true when the machine had other work (load average above 0.5).
busy() { awk -v l="$1" 'BEGIN { exit !(l > 0.5) }'; }
# note_load: sets load_before, with a warning when the machine is busy.
note_load() {
  load_before=$(load_average)
  if busy "$load_before"; then
    echo "$script: WARNING: the machine is busy (load average $load_before);" \
      "the figures will be noisy" >&2
  fi
}

# find_bin NAME: the executable NAME in $build_dir, or nothing.
find_bin() {
  local candidate
  for candidate in "$build_dir/benchmarks/$1" "$build_dir/examples/$1" "$build_dir/$1"; do
    [[ -x $candidate && -f $candidate ]] && { echo "$candidate"; return; }
  done
  find "$build_dir" -type f -name "$1" -perm -u+x 2>/dev/null | head -n 1
}

# field KEY LINE: the value of KEY=... in a RESULT line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# per_round KEY "server scenario": KEY of each round, one per line, in round order.
per_round() {
  local key=$1 line
  while IFS= read -r line; do
    [[ -z $line ]] || field "$key" "$line"
  done <<<"${results[$2]:-}"
}

# median_of KEY "server scenario": the median of KEY over the rounds.
median_of() { per_round "$1" "$2" | median; }

# round_ratios KEY "server scenario" "baseline scenario": the ratio between the two servers
# within each round. They run back to back in a round, so the slow swings of a shared machine's
# load cancel, where a ratio of medians taken from different rounds would keep them.
round_ratios() { pair_ratios "$(per_round "$1" "$2")" "$(per_round "$1" "$3")"; }
round_ratio_value() { round_ratios "$@" | median; }
round_ratio() { round_ratio_value "$@" | awk '{ printf "%.2fx", $1 }'; }

# per_message KEY SCALE "server scenario": the median over the rounds of KEY / msgs * SCALE,
# e.g. server_cpu_s 1e6: server CPU seconds per million messages.
per_message() {
  local line
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    awk -v v="$(field "$1" "$line")" -v msgs="$(field msgs "$line")" -v scale="$2" \
      'BEGIN { print (msgs > 0 ? v / msgs * scale : 0) }'
  done <<<"${results[$3]:-}" | median
}
# cpu_per_million "server scenario": server CPU seconds per million messages, median.
cpu_per_million() { per_message server_cpu_s 1e6 "$1"; }

# --- counting (cost_per_msg.sh, hub_cost.sh, run_tls.sh) -----------------------------------
# A server's cost per unit of work is (long run - short run) / (difference in units), from
# valgrind --tool=callgrind and strace -c -f outputs, or counted at full speed with perf.

# instructions FILE: callgrind's total Ir.
instructions() { sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$1"; }
# syscalls FILE: the total number of calls in an strace -c summary.
syscalls() { awk '$NF == "total" { print $4 }' "$1"; }
# per_call FILE: "name calls" for every system call in an strace -c summary.
per_call() { awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $NF, $4 }' "$1"; }
# per_unit SHORT_TOTAL LONG_TOTAL UNITS: the difference per unit.
per_unit() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.3f", (b - a) / n }'; }

# syscall_breakdown SHORT_FILE LONG_FILE UNITS: "name n, name n, ..." per unit, by strace -c,
# the calls that matter (>= 0.005 per unit), most first.
syscall_breakdown() {
  join -a 1 -a 2 -e 0 -o 0,1.2,2.2 <(per_call "$1" | sort) <(per_call "$2" | sort) |
    awk -v n="$3" '{ v = ($3 - $2) / n; if (v >= 0.005 || v <= -0.005) printf "%s %.3f\n", $1, v }' |
    sort -k2,2gr | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }'
}

# count_difference NAME KEY CALLGRIND_SHORT CALLGRIND_LONG STRACE_SHORT STRACE_LONG: runs the
# caller's `measure TOOL NAME KEY N` (which leaves $work_dir/TOOL.NAME.KEY.N, a '+' in NAME as
# '_') for a short and a long run under each tool, and sets the caller's instr, sys and
# breakdown["NAME KEY"] to the differences per unit.
# shellcheck disable=SC2034  # the arrays are the caller's (declare -A)
count_difference() {
  local name=$1 key=$2 cg_short=$3 cg_long=$4 st_short=$5 st_long=$6
  local cg=$work_dir/callgrind.${1//+/_}.$2 st=$work_dir/strace.${1//+/_}.$2
  measure callgrind "$name" "$key" "$cg_short"
  measure callgrind "$name" "$key" "$cg_long"
  instr["$name $key"]=$(per_unit "$(instructions "$cg.$cg_short")" \
    "$(instructions "$cg.$cg_long")" "$((cg_long - cg_short))")
  measure strace "$name" "$key" "$st_short"
  measure strace "$name" "$key" "$st_long"
  sys["$name $key"]=$(per_unit "$(syscalls "$st.$st_short")" "$(syscalls "$st.$st_long")" \
    "$((st_long - st_short))")
  breakdown["$name $key"]=$(syscall_breakdown "$st.$st_short" "$st.$st_long" \
    "$((st_long - st_short))")
}

# System calls at full speed, counted by the kernel's raw_syscalls tracepoint (perf stat),
# which does not slow the process down as strace does. perf_usable: whether perf and the
# tracepoint are there. perf_attach PID FILE: starts counting the calls of process PID into
# FILE (sets perf_pid). perf_count FILE: stops it and prints the count.
perf_usable() { perf stat -e raw_syscalls:sys_enter -x, -o /dev/null true 2>/dev/null; }
perf_attach() {
  perf stat -e raw_syscalls:sys_enter -x, -o "$2" -p "$1" &
  perf_pid=$!
  sleep 0.3 # perf attaches
}
perf_count() {
  kill -INT "$perf_pid"
  # Not `wait`: a $(perf_count ...) runs in a subshell, of which perf is no child.
  while kill -0 "$perf_pid" 2>/dev/null; do sleep 0.05; done
  awk -F, '/raw_syscalls:sys_enter/ { print $1 }' "$1"
}
