#!/usr/bin/env bash
# run_hub.sh — the pub/sub hub (examples/hub) against redis-server, both under redis-benchmark.
#
#   benchmarks/run_hub.sh [--quick] [--build-dir DIR] [--no-build] [--results DIR]
#                         [--rounds N] [--seconds S] [--no-subscriber] [--no-control] [--hub BIN]
#                         [--lists] [--appendonly] [--hub-args "ARGS"]
#
# Configures DIR (default build/bench; Release, -DEVNET_BUILD_BENCHMARKS=ON, examples on, tests
# off) and builds the target `hub`; --hub BIN measures another hub binary instead (a variant
# under study). Needs redis-server, redis-benchmark and redis-cli (Debian: apt-get install
# redis-server redis-tools).
#
# Starts redis-server (port picked free, no persistence: --save '' --appendonly no; its
# defaults otherwise, so one I/O thread), "control" (a second redis-server, the same way,
# unless --no-control: its ratio to the first is what this machine's noise alone makes of two
# identical servers) and the hub (--port 0, its "listening on host:port"
# line gives the port), both pinned to CPU 0 while redis-benchmark runs on CPU 1 when there are
# two CPUs. Tests, each with 50 clients (-c 50), without and with pipelining (-P 16):
#   PING_INLINE and PING_MBULK    redis-benchmark -t ping_inline / -t ping_mbulk
#   PUBLISH                       redis-benchmark PUBLISH nobody <64-byte payload>: no
#                                 subscriber, so both servers only reply :0. (redis-benchmark
#                                 7.0's -t has no publish test; -t publish is silently ignored.)
#   PUBLISH, 1 subscriber         PUBLISH sub <payload> while one connection is subscribed to
#                                 "sub" and reads everything (unless --no-subscriber).
# The subscriber is bash's /dev/tcp plus cat, pinned with redis-benchmark: redis-cli would
# parse and print every message and take CPU 1 from redis-benchmark.
# --lists adds the work-queue tests, without and with -P 16:
#   LPUSH, RPUSH, LPOP, RPOP, LRANGE_100   redis-benchmark -t lpush / rpush / lpop / rpop /
#                                 lrange_100 (its req/s is LRANGE's; its CPU includes the LPUSH
#                                 run redis-benchmark makes first to fill the list)
# --appendonly runs every server with its append-only file on, fsynced every second (hub:
# --appendonly yes --appendfsync everysec; redis-server: the same and aof-use-rdb-preamble no),
# in the server's own directory under the run's work directory.
#
# A calibration run of each test against every server (which also warms them up) sets the
# request count -n so that a run takes about --seconds (1.5; 0.5 with --quick). Then --rounds
# rounds (5; 1 with --quick), alternating which server goes first, every round with all the
# servers started afresh. Reported per test and
# server: the median requests/s (redis-benchmark --csv) and the median server CPU time per
# request (utime + stime from /proc/PID/stat over the run), a steadier figure than throughput
# when the machine is shared; the hub/redis ratio (req/s: the median of the ratios within single
# rounds; CPU: the ratio of the medians), and the range of the hub/redis req/s ratio within single rounds (the two servers back to back), which shows the noise.
#
# --hub-args gives the hub more options, split at spaces (e.g. --hub-args "--busy-poll 10"); the
# report names them.
#
# The hub runs on its loop's default transport (epoll); EVNET_TRANSPORT=io_uring in the
# environment runs it on io_uring (results/hub_io_uring.md).
#
# Prints a markdown table and writes it to DIR/hub.md (DIR: --results, default
# benchmarks/results). Full run ~3 minutes, --quick ~30 seconds (after the build).
set -euo pipefail

script=run_hub.sh
# shellcheck source=benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

seconds=
hub_bin=
hub_args=()
subscriber=1 control=1 lists=0 appendonly=0

usage() {
  echo "usage: $0 $common_usage [--seconds S] [--no-subscriber] [--no-control] [--hub BIN]" \
    "[--lists] [--appendonly] [--hub-args \"ARGS\"]" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --seconds) (($# >= 2)) || usage; seconds=$2; shift ;;
    --hub) (($# >= 2)) || usage; hub_bin=$2; shift ;;
    --hub-args) (($# >= 2)) || usage; read -ra hub_args <<<"$2"; shift ;;
    --no-subscriber) subscriber=0 ;;
    --no-control) control=0 ;;
    --lists) lists=1 ;;
    --appendonly) appendonly=1 ;;
    *) common_option "$@"; shift $((taken - 1)) ;;
  esac
  shift
done
absolute build_dir results_dir hub_bin
if ((quick)); then
  rounds=${rounds:-1} seconds=${seconds:-0.5}
else
  rounds=${rounds:-5} seconds=${seconds:-1.5}
fi
run_started=$SECONDS

for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null ||
    die "$tool is required (apt-get install redis-server redis-tools)"
done

# ---------------------------------------------------------------------------------------------
# Build

if [[ -z $hub_bin ]]; then
  # Examples are on by default at top level; say so anyway, a reused cache may have them off.
  build -DEVNET_BUILD_EXAMPLES=ON -DEVNET_BUILD_TESTS=OFF hub
fi
[[ -n $hub_bin ]] || hub_bin=$build_dir/examples/hub
[[ -x $hub_bin ]] || die "$hub_bin is missing (build it first)"

# ---------------------------------------------------------------------------------------------
# Servers

declare -A server_pid server_port subscriber_pid

# start_redis NAME: a redis-server on a free_port (Redis cannot take port 0), recorded as server
# NAME; tried again on another port if someone takes it meanwhile.
start_redis() {
  local name=$1 port pid
  for _ in 1 2 3 4 5; do
    port=$(free_port)
    mkdir -p "$work_dir/$name"
    "${server_pin[@]}" redis-server --port "$port" --bind 127.0.0.1 --save '' \
      "${redis_aof[@]}" --dir "$work_dir/$name" --logfile "$work_dir/$name.log" >/dev/null 2>&1 &
    pid=$!
    started "$pid"
    for _ in $(seq 50); do
      [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]] && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [[ $(redis-cli -p "$port" ping 2>/dev/null) == PONG ]]; then
      server_pid[$name]=$pid server_port[$name]=$port
      return
    fi
    kill -KILL "$pid" 2>/dev/null || true
  done
  echo "$script: redis-server did not start:" >&2
  cat "$work_dir/$name.log" >&2
  exit 1
}

start_hub() {
  mkdir -p "$work_dir/hub"
  start_server hub "$hub_bin" "${hub_aof[@]}" "${hub_args[@]}" --dir "$work_dir/hub"
}

# start_subscriber NAME: one connection subscribed to "sub" on server NAME, reading and
# discarding everything; checks with a PUBLISH that the server counts it.
start_subscriber() {
  local name=$1 port=${server_port[$1]} receivers=''
  # shellcheck disable=SC2016  # $1 and $2 are the inner shell's arguments
  "${client_pin[@]}" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%s" "$2" >&3 &&
    exec cat <&3' _ "$port" $'*2\r\n$9\r\nSUBSCRIBE\r\n$3\r\nsub\r\n' >/dev/null 2>&1 &
  subscriber_pid[$name]=$!
  started "${subscriber_pid[$name]}"
  for _ in $(seq 50); do
    receivers=$(redis-cli -p "$port" publish sub hello 2>/dev/null) || true
    [[ $receivers == 1 ]] && return
    sleep 0.1
  done
  die "the subscriber to $name is not counted (PUBLISH returned '$receivers')"
}

# ---------------------------------------------------------------------------------------------
# Tests and runs

payload=$(printf 'x%.0s' $(seq 64))
tests=(ping_inline ping_inline_p16 ping_mbulk ping_mbulk_p16 publish publish_p16)
((subscriber)) && tests+=(publish_sub publish_sub_p16)
list_tests=(lpush rpush lpop rpop lrange_100)
if ((lists)); then
  for t in "${list_tests[@]}"; do tests+=("$t" "${t}_p16"); done
fi
redis_aof=(--appendonly no) hub_aof=() persistence="no persistence"
if ((appendonly)); then
  redis_aof=(--appendonly yes --appendfsync everysec --aof-use-rdb-preamble no)
  hub_aof=(--appendonly yes --appendfsync everysec)
  persistence="append-only file fsynced every second, as the hub's"
fi
# redis-benchmark's options, then the custom command if any (it must come last).
declare -A test_args=(
  [ping_inline]="-t ping_inline" [ping_inline_p16]="-P 16 -t ping_inline"
  [ping_mbulk]="-t ping_mbulk" [ping_mbulk_p16]="-P 16 -t ping_mbulk"
  [publish]="PUBLISH nobody $payload" [publish_p16]="-P 16 PUBLISH nobody $payload"
  [publish_sub]="PUBLISH sub $payload" [publish_sub_p16]="-P 16 PUBLISH sub $payload"
)
declare -A test_label=(
  [ping_inline]="PING_INLINE" [ping_inline_p16]="PING_INLINE -P 16"
  [ping_mbulk]="PING_MBULK" [ping_mbulk_p16]="PING_MBULK -P 16"
  [publish]="PUBLISH, no subscriber" [publish_p16]="PUBLISH, no subscriber, -P 16"
  [publish_sub]="PUBLISH, 1 subscriber" [publish_sub_p16]="PUBLISH, 1 subscriber, -P 16"
)
for t in "${list_tests[@]}"; do
  test_args[$t]="-t $t" test_args[${t}_p16]="-P 16 -t $t"
  test_label[$t]=${t^^} test_label[${t}_p16]="${t^^} -P 16"
done
servers=(redis hub)
((control)) && servers=(redis control hub)
declare -A requests      # test -> -n for the measured runs
declare -A rps cpu_us    # "server test" -> one value per round, newline-separated

# cpu_ticks PID: the process's utime + stime (all threads), in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# bench NAME TEST N: runs redis-benchmark against server NAME and prints "rps cpu_us_per_req".
bench() {
  local name=$1 test=$2 n=$3 before after out status=0
  before=$(cpu_ticks "${server_pid[$name]}")
  # shellcheck disable=SC2086  # test_args holds several words
  out=$("${client_pin[@]}" redis-benchmark -h 127.0.0.1 -p "${server_port[$name]}" -c 50 -n "$n" \
    --csv ${test_args[$test]} 2>"$work_dir/bench.err") || status=$?
  after=$(cpu_ticks "${server_pid[$name]}")
  # --csv: a header line, then "name","rps",... per test.
  out=$(awk -F'"' '$2 != "test" && $4 != "" { print $4 }' <<<"$out" | tail -n 1)
  if ((status != 0)) || [[ -z $out ]] || ! awk -v r="$out" 'BEGIN { exit !(r > 0) }'; then
    echo "$script: FAILED: redis-benchmark against $name, test $test (exit $status)" >&2
    cat "$work_dir/bench.err" >&2
    exit 1
  fi
  if [[ -n ${subscriber_pid[$name]:-} ]] && ! kill -0 "${subscriber_pid[$name]}" 2>/dev/null; then
    die "$name disconnected the subscriber during test $test"
  fi
  awk -v r="$out" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v n="$n" \
    'BEGIN { printf "%s %.3f\n", r, t / hz / n * 1e6 }'
}

# calibrate TEST: a short run against each server; sets requests[TEST] for --seconds a run.
calibrate() {
  local test=$1 n=20000 name sum=0 r
  [[ ${test_args[$test]} == *"-P 16"* ]] && n=200000
  for name in "${servers[@]}"; do
    r=$(bench "$name" "$test" "$n")
    sum=$(awk -v s="$sum" -v r="${r%% *}" 'BEGIN { print s + r }')
  done
  # The mean rate of the servers, in thousands, at least 10000 requests.
  requests[$test]=$(awk -v s="$sum" -v k=${#servers[@]} -v d="$seconds" \
    'BEGIN { n = int(s / k * d / 1000 + 0.5) * 1000; print (n < 10000 ? 10000 : n) }')
}

run_one() {
  local name=$1 test=$2 r
  r=$(bench "$name" "$test" "${requests[$test]}")
  rps["$name $test"]+="${r%% *}"$'\n'
  cpu_us["$name $test"]+="${r##* }"$'\n'
  printf '  %-16s %-5s n=%-8s req/s=%-10s server CPU us/req=%s\n' "$test" "$name" \
    "${requests[$test]}" "${r%% *}" "${r##* }" >&2
}

note_load

# start_servers / stop_servers: every server (and its subscriber) afresh. Each round starts
# them anew: a process can be slower than its twin for its whole life (where its memory
# landed), which a fresh start turns into one more round's noise.
start_servers() {
  local name
  start_redis redis
  ((control)) && start_redis control
  start_hub
  if ((subscriber)); then
    for name in "${servers[@]}"; do start_subscriber "$name"; done
  fi
}
stop_servers() {
  local name
  for name in "${servers[@]}"; do
    [[ -z ${subscriber_pid[$name]:-} ]] || stop_pid "${subscriber_pid[$name]}"
    stop_pid "${server_pid[$name]}"
  done
}

echo "pinning: servers ${server_pin[*]:-none}, redis-benchmark ${client_pin[*]:-none};" \
  "$rounds round(s) of ~${seconds}s per test and server" >&2
start_servers
echo "calibration" >&2
for test in "${tests[@]}"; do calibrate "$test"; done
for ((round = 0; round < rounds; round++)); do
  if ((round > 0)); then
    stop_servers
    start_servers
  fi
  echo "round $((round + 1))/$rounds: $(for n in "${servers[@]}"; do
    printf '%s(port %s) ' "$n" "${server_port[$n]}"; done)" >&2
  for test in "${tests[@]}"; do
    for ((i = 0; i < ${#servers[@]}; i++)); do
      run_one "${servers[(i + round) % ${#servers[@]}]}" "$test"
    done
  done
done
stop_servers
load_after=$(load_average)

# ---------------------------------------------------------------------------------------------
# Table

# round_ratios NAME TEST: server NAME's req/s over redis's within each round, where both ran
# back to back, so that the slow swings of a shared machine's load cancel.
round_ratios() { pair_ratios "${rps[$1 $2]}" "${rps[redis $2]}"; }
# round_ratio NAME TEST: the median of those, as run_echo.sh reports it.
round_ratio() { round_ratios "$1" "$2" | median | awk '{ printf "%.2fx", $1 }'; }

redis_version=$(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')

mkdir -p "$results_dir"
report=$results_dir/hub.md
{
  echo "## The hub against redis-server (redis-benchmark)"
  echo
  echo "Median of $rounds round(s) of ~${seconds} s per test and server, servers alternated;" \
    "$(date -u +%Y-%m-%d); $(machine "$build_dir"), Release; evnet" \
    "$(evnet_version include examples/hub); redis-server and redis-benchmark" \
    "${redis_version:-unknown} (redis-server: $persistence, one I/O thread); servers pinned" \
    "to ${server_pin[*]:-no CPU}, redis-benchmark to ${client_pin[*]:-no CPU}; load average" \
    "$load_before before, $load_after after; hub: ${hub_bin#"$repo_root"/}${hub_args[*]:+ ${hub_args[*]}}."
  if busy "$load_before"; then
    echo "The load average was $load_before at the start (other work, or a benchmark run just before):" \
      "requests/s are noisy; server CPU per request is the steadier figure."
  fi
  echo
  if ((control)); then
    echo "| test | redis req/s | hub req/s | hub/redis | rounds | control/redis | rounds |" \
      "redis CPU µs/req | hub CPU µs/req | hub/redis CPU |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  else
    echo "| test | redis req/s | hub req/s | hub/redis | rounds | redis CPU µs/req |" \
      "hub CPU µs/req | hub/redis CPU |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  fi
  for test in "${tests[@]}"; do
    r_cpu=$(median <<<"${cpu_us[redis $test]}") h_cpu=$(median <<<"${cpu_us[hub $test]}")
    printf '| %s | %.0f | %.0f | %s | %s |' "${test_label[$test]}" \
      "$(median <<<"${rps[redis $test]}")" "$(median <<<"${rps[hub $test]}")" \
      "$(round_ratio hub "$test")" "$(round_ratios hub "$test" | range)"
    ((control)) && printf ' %s | %s |' "$(round_ratio control "$test")" \
      "$(round_ratios control "$test" | range)"
    printf ' %.2f | %.2f | %s |\n' "$r_cpu" "$h_cpu" "$(ratio "$h_cpu" "$r_cpu")"
  done
  echo
  echo "redis-benchmark -c 50 (50 connections), -P 16 where shown (16 requests in flight per" \
    "connection), -n set per test for ~${seconds} s a run. PUBLISH sends a 64-byte payload to a" \
    "channel nobody subscribes to, so both servers only look the channel up and reply :0;" \
    "that is what redis-benchmark measures. \"1 subscriber\" publishes to a channel one" \
    "connection is subscribed to (it reads and discards everything), so every request" \
    "also pushes one message. hub/redis is the median over the rounds of the ratio within one" \
    "round; rounds is the range of the ratio within one round (the two servers back to back)." \
    "Server CPU is utime + stime of the server process over the run, per request (hub/redis" \
    "above 1.00x: the hub spends more)."
  if ((control)); then
    echo "control is a second redis-server measured like the others: control/redis is what" \
      "this machine's noise alone makes of two identical servers."
  fi
} >"$report"

echo
cat "$report"
echo
echo "results: $report; took $((SECONDS - run_started)) s"
