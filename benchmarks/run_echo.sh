#!/usr/bin/env bash
# run_echo.sh — the echo servers side by side: evnet, raw asio and Node.js under one load.
#
#   benchmarks/run_echo.sh [--quick] [--build-dir DIR] [--evnet BIN]
#
# Configures DIR (Release, -DEVNET_BUILD_BENCHMARKS=ON) and builds loadgen and asio_echo_server
# (and the evnet echo example, where defined) with `cmake --build DIR`; if that fails, binaries
# already in DIR are used. --evnet BIN names the evnet echo server; by default it is the
# echo_server found in DIR, and evnet is left out if there is none.
#
# Starts every server once on an ephemeral port (each must accept --port 0 --host 127.0.0.1
# and print "listening on <host>:<port>"), pinned to CPU 0 while loadgen runs on CPU 1 when
# there are two CPUs, then runs the scenarios
#   echo c=1, echo c=50, pipeline c=50 d=16 (64-byte messages), stream c=4 (16 KiB), connect
# for every server in turn, rotating the order of the servers from round to round, 3 rounds
# (1 with --quick). Prints the median of each figure and its ratio to raw asio, and the
# server's CPU seconds per million messages (utime + stime from /proc/PID/stat over the
# measured window; in stream mode a message is a 16 KiB chunk, in connect mode a connection).
# The raw RESULT lines go to DIR/run_echo.log. Any loadgen failure (a wrong echo, a premature
# close, a refused connection) aborts the run.
#
# Full run under 5 minutes, --quick under 1 minute.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=build-bench
evnet_bin=
quick=0

usage() {
  echo "usage: $0 [--quick] [--build-dir DIR] [--evnet BIN]" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --quick) quick=1 ;;
    --build-dir) (($# >= 2)) || usage; build_dir=$2; shift ;;
    --evnet) (($# >= 2)) || usage; evnet_bin=$2; shift ;;
    -h | --help) usage ;;
    *) echo "run_echo.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done

cd "$repo_root"
[[ $build_dir == /* ]] || build_dir=$repo_root/$build_dir
[[ -z $evnet_bin || $evnet_bin == /* ]] || evnet_bin=$PWD/$evnet_bin

if ((quick)); then
  rounds=1 warmup=0.5 duration=2
else
  rounds=3 warmup=1 duration=4
fi

# ---------------------------------------------------------------------------------------------
# Build

build() {
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DEVNET_BUILD_BENCHMARKS=ON \
    >/dev/null || return 1
  cmake --build "$build_dir" --parallel "$(nproc)" --target loadgen asio_echo_server || return 1
  # The evnet echo example, where the build defines it.
  cmake --build "$build_dir" --parallel "$(nproc)" --target echo_server >/dev/null 2>&1 || true
}

# find_bin NAME: the executable NAME in the build dir, or nothing.
find_bin() {
  local candidate
  for candidate in "$build_dir/benchmarks/$1" "$build_dir/$1" "$build_dir/examples/$1"; do
    [[ -x $candidate && -f $candidate ]] && { echo "$candidate"; return; }
  done
  find "$build_dir" -type f -name "$1" -perm -u+x 2>/dev/null | head -n 1
}

if ! build; then
  echo "run_echo.sh: building in $build_dir failed; using the binaries already there" >&2
fi
loadgen=$(find_bin loadgen)
asio_bin=$(find_bin asio_echo_server)
[[ -n $loadgen ]] || { echo "run_echo.sh: no loadgen in $build_dir" >&2; exit 1; }
[[ -n $asio_bin ]] || { echo "run_echo.sh: no asio_echo_server in $build_dir" >&2; exit 1; }
[[ -n $evnet_bin ]] || evnet_bin=$(find_bin echo_server)

# ---------------------------------------------------------------------------------------------
# Servers

servers=(asio)
declare -A server_cmd=([asio]="$asio_bin")
if [[ -n $evnet_bin ]]; then
  [[ -x $evnet_bin ]] || { echo "run_echo.sh: $evnet_bin is not executable" >&2; exit 1; }
  servers+=(evnet)
  server_cmd[evnet]=$evnet_bin
fi
if command -v node >/dev/null; then
  servers+=(node)
  server_cmd[node]="node $repo_root/benchmarks/node_echo_server.js"
else
  echo "run_echo.sh: node not found; Node.js is left out" >&2
fi

server_pin=() loadgen_pin=()
if (($(nproc) >= 2)) && command -v taskset >/dev/null; then
  server_pin=(taskset -c 0) loadgen_pin=(taskset -c 1)
fi

work_dir=$(mktemp -d)
started_pids=()
declare -A server_pid server_port

cleanup() {
  local pid
  for pid in "${started_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started_pids[@]}"; do
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME: starts it, waits for its "listening on" line, records its pid and port.
start_server() {
  local name=$1 out=$work_dir/$1.out pid port=
  # shellcheck disable=SC2086  # the command is a program and maybe a script: split it
  "${server_pin[@]}" ${server_cmd[$name]} --port 0 --host 127.0.0.1 >"$out" 2>"$work_dir/$name.err" &
  pid=$!
  started_pids+=("$pid")
  for _ in $(seq 100); do
    port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out")
    [[ -n $port ]] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    echo "run_echo.sh: server '$name' did not report 'listening on <host>:<port>'" >&2
    cat "$work_dir/$name.err" >&2
    exit 1
  fi
  server_pid[$name]=$pid
  server_port[$name]=$port
}

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

# field KEY LINE: the value of KEY=... in a RESULT line.
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

declare -A results # "server scenario" -> RESULT lines, one per round
log=$build_dir/run_echo.log
: >"$log"

run_one() {
  local name=$1 scenario=$2 line status=0
  # shellcheck disable=SC2086  # scenario_args holds several flags
  line=$("${loadgen_pin[@]}" "$loadgen" --host 127.0.0.1 --port "${server_port[$name]}" \
    ${scenario_args[$scenario]} --warmup "$warmup" --duration "$duration" \
    --server-pid "${server_pid[$name]}" 2>"$work_dir/loadgen.err") || status=$?
  if ((status != 0)) || [[ $line != RESULT* ]]; then
    echo "run_echo.sh: FAILED: loadgen against '$name' in scenario $scenario (exit $status)" >&2
    cat "$work_dir/loadgen.err" >&2
    exit 1
  fi
  echo "server=$name scenario=$scenario $line" >>"$log"
  results["$name $scenario"]+="$line"$'\n'
  printf '  %-13s %-6s %s=%s p99_us=%s server_cpu_s=%s\n' "$scenario" "$name" \
    "${scenario_metric[$scenario]}" "$(field "${scenario_metric[$scenario]}" "$line")" \
    "$(field p99_us "$line")" "$(field server_cpu_s "$line")" >&2
}

for name in "${servers[@]}"; do start_server "$name"; done
echo "servers: $(for n in "${servers[@]}"; do printf '%s(port %s) ' "$n" "${server_port[$n]}"; done)" >&2
echo "pinning: server ${server_pin[*]:-none}, loadgen ${loadgen_pin[*]:-none};" \
  "$rounds round(s) of ${warmup}s warm-up + ${duration}s" >&2

count=${#servers[@]}
for ((round = 0; round < rounds; round++)); do
  echo "round $((round + 1))/$rounds" >&2
  for scenario in "${scenarios[@]}"; do
    for ((i = 0; i < count; i++)); do
      run_one "${servers[(i + round) % count]}" "$scenario"
    done
  done
done

# ---------------------------------------------------------------------------------------------
# Table

# median_of KEY "server scenario": the median of KEY over the rounds.
median_of() {
  local key=$1 line
  while IFS= read -r line; do
    [[ -z $line ]] || field "$key" "$line"
  done <<<"${results[$2]}" | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# cpu_per_million "server scenario": server CPU seconds per million messages, median.
cpu_per_million() {
  local line
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    awk -v cpu="$(field server_cpu_s "$line")" -v msgs="$(field msgs "$line")" \
      'BEGIN { print (msgs > 0 ? cpu / msgs * 1e6 : 0) }'
  done <<<"${results[$1]}" | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }

echo
echo "Echo servers, median of $rounds round(s); $(nproc) CPUs; $(uname -r);" \
  "pinning ${server_pin[*]:-none} / ${loadgen_pin[*]:-none}"
printf '%-13s %-6s %14s %8s %10s %11s %9s\n' scenario server throughput vs_asio p99_us cpu_s/Mmsg \
  cpu_vs_asio
for scenario in "${scenarios[@]}"; do
  metric=${scenario_metric[$scenario]}
  base=$(median_of "$metric" "asio $scenario")
  base_cpu=$(cpu_per_million "asio $scenario")
  for name in "${servers[@]}"; do
    value=$(median_of "$metric" "$name $scenario")
    cpu=$(cpu_per_million "$name $scenario")
    p99=$(median_of p99_us "$name $scenario")
    printf '%-13s %-6s %14s %8s %10s %11.3f %9s\n' "$scenario" "$name" \
      "$(awk -v v="$value" -v m="$metric" 'BEGIN { printf "%.0f %s", v, (m == "mb_per_s" ? "MB/s" : m == "conns_per_s" ? "conn/s" : "msg/s") }')" \
      "$(ratio "$value" "$base")" "$p99" "$cpu" "$(ratio "$cpu" "$base_cpu")"
  done
done
echo
echo "raw results: $log"
