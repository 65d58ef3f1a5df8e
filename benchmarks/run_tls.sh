#!/usr/bin/env bash
# run_tls.sh — the TLS echo servers side by side: raw asio::ssl, evnet and Node.js under one
# load; then tls_proxy against stunnel4 and hitch; then instructions per message (callgrind)
# and resident memory per idle TLS connection.
#
#   benchmarks/run_tls.sh [--quick] [--rounds N] [--build-dir DIR] [--no-build] [--results DIR]
#                         [--no-control] [--no-uring] [--no-echo] [--no-proxy] [--no-cost] [--no-idle]
#                         [--only echo|proxy|cost|idle]
#
# Configures DIR (default build/bench; Release, -DEVNET_BUILD_BENCHMARKS=ON) and builds loadgen,
# asio_tls_echo_server, asio_echo_server, tls_echo_server and tls_proxy; if that fails, or with
# --no-build, the binaries already in DIR are used. A certificate for 127.0.0.1 (ECDSA P-256, self-signed, as
# the peers do not verify it) is made with `openssl req` in a scratch directory.
#
# Echo servers (each started afresh in every round, pinned to CPU 0, loadgen on CPU 1, as in
# run_echo.sh): asio = benchmarks/asio_tls_echo_server.cpp (asio's SSL example), control (a
# second process of it, unless --no-control: its ratio to asio is the machine's noise), evnet =
# examples/tls_echo_server.cpp on epoll, uring = the same on io_uring (unless --no-uring), node =
# benchmarks/node_tls_echo_server.js. Scenarios, TLS 1.3
# with every server's default cipher (TLS_AES_256_GCM_SHA384): echo c=50 and pipeline c=50
# d=16 (64-byte messages), stream c=4 (16 KiB chunks), full handshakes c=50 (connect, one
# 64-byte echo, close_notify, close) and resumed handshakes c=50 (the same, each connection
# offering the session of the last ticket). --rounds rounds (5; 1 with --quick) of warm-up +
# measured seconds; the figures are medians, the ratios the median of the ratios within a round.
#
# Proxies (unless --no-proxy): TLS termination in front of benchmarks/asio_echo_server (plain
# TCP, pinned to CPU 1 with loadgen): evnet = examples/tls_proxy.cpp, stunnel4 (one process,
# its default threads, TCP_NODELAY both ways) and hitch (--workers=1; its worker process is
# measured). Scenarios stream c=4 16 KiB and echo c=50; throughput, and the proxy's CPU
# (utime + stime) per MB echoed.
#
# Cost (unless --no-cost): user-space instructions per message, callgrind's Ir, asio against
# evnet (and uring, unless --no-uring), echo c=50, pipeline c=50 d=16, full and resumed
# handshakes, (long − short) / (difference in messages), as cost_per_msg.sh counts them.
#
# Idle memory (unless --no-idle): benchmarks/idle_memory.sh --tls (10,000 TLS connections).
#
# Writes to DIR (--results, default benchmarks/results): tls.md (every table), tls.log (the
# raw RESULT lines). Full run ~12 minutes, --quick ~4.
set -euo pipefail

script=run_tls.sh
# shellcheck source=benchmarks/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

control=1 echo=1 proxy=1 cost=1 idle=1 uring=1

usage() {
  echo "usage: $0 $common_usage [--no-control] [--no-uring] [--no-echo] [--no-proxy]" \
    "[--no-cost] [--no-idle] [--only echo|proxy|cost|idle]" >&2
  exit 2
}

while (($#)); do
  case $1 in
    --no-control) control=0 ;;
    --no-uring) uring=0 ;;
    --no-echo) echo=0 ;;
    --no-proxy) proxy=0 ;;
    --no-cost) cost=0 ;;
    --no-idle) idle=0 ;;
    --only)
      if (($# < 2)) || [[ ! $2 =~ ^(echo|proxy|cost|idle)$ ]]; then usage; fi
      echo=0 proxy=0 cost=0 idle=0
      printf -v "$2" 1
      shift
      ;;
    *) common_option "$@"; shift $((taken - 1)) ;;
  esac
  shift
done
absolute build_dir results_dir
export EVNET_TRANSPORT=epoll  # every evnet program, unless said otherwise ("uring")

if ((quick)); then
  rounds=${rounds:-1} warmup=0.3 duration=1.2 short=2000 long=8000 idle_hold=0.5
else
  rounds=${rounds:-5} warmup=0.5 duration=1.5 short=4000 long=24000 idle_hold=2
fi
run_started=$SECONDS

# ---------------------------------------------------------------------------------------------
# Build, certificate

targets=(loadgen asio_tls_echo_server asio_echo_server tls_echo_server tls_proxy)
build_or_reuse "${targets[@]}"
declare -A bin
for target in "${targets[@]}"; do
  bin[$target]=$(find_bin "$target")
  [[ -n ${bin[$target]} ]] || die "no $target in $build_dir"
done
loadgen=${bin[loadgen]}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "$work_dir/key.pem" \
  -out "$work_dir/cert.pem" 2>/dev/null || die "openssl req failed"
cat "$work_dir/key.pem" "$work_dir/cert.pem" >"$work_dir/key_and_cert.pem" # hitch's form
credentials="--cert $work_dir/cert.pem --key $work_dir/key.pem"

mkdir -p "$results_dir"
log=$results_dir/tls.log
: >"$log"
declare -A results server_cmd server_pid server_port

# run_one NAME SCENARIO: one loadgen run against NAME, recorded in results and the log.
run_one() {
  local name=$1 scenario=$2 line
  run_loadgen "$name" "$scenario" "${server_measured[$name]:-${server_pid[$name]}}" --timeout 10
  line=$result_line
  printf '  %-13s %-8s %s=%s server_cpu_s=%s\n' "$scenario" "$name" \
    "${scenario_metric[$scenario]}" "$(field "${scenario_metric[$scenario]}" "$line")" \
    "$(field server_cpu_s "$line")" >&2
}

# rotate SERVER...: every scenario against every server, the order rotating from round to
# round (the round number is $round).
rotate() {
  local servers=("$@") count=$# scenario i
  for scenario in "${scenarios[@]}"; do
    for ((i = 0; i < count; i++)); do run_one "${servers[(i + round) % count]}" "$scenario"; done
  done
}

declare -A scenario_args scenario_metric scenario_label server_measured
scenario_args=(
  [echo_c50]="--tls 1.3 --mode echo --connections 50 --size 64"
  [pipeline_c50]="--tls 1.3 --mode pipeline --connections 50 --size 64 --depth 16"
  [stream_c4]="--tls 1.3 --mode stream --connections 4 --size 16384"
  [full_c50]="--tls 1.3 --mode connect --connections 50 --size 64"
  [resumed_c50]="--tls 1.3 --mode connect --connections 50 --size 64 --resume"
)
scenario_metric=([echo_c50]=msgs_per_s [pipeline_c50]=msgs_per_s [stream_c4]=mb_per_s
  [full_c50]=conns_per_s [resumed_c50]=conns_per_s)
scenario_label=([echo_c50]="echo c=50" [pipeline_c50]="pipeline c=50 d=16"
  [stream_c4]="stream c=4 16KiB" [full_c50]="full handshakes c=50"
  [resumed_c50]="resumed handshakes c=50")
unit() { case $1 in mb_per_s) echo MB/s ;; conns_per_s) echo conn/s ;; *) echo msg/s ;; esac; }

# header TITLE: the table's title and the conditions of the run.
header() {
  echo "## $1"
  echo
  echo "Median of $rounds round(s) of ${warmup} s warm-up + ${duration} s per scenario and" \
    "server, servers alternated and started afresh every round; $(date -u +%Y-%m-%d);" \
    "$(machine "$build_dir"), Release; $(openssl version | cut -d' ' -f1-2); evnet" \
    "$(evnet_version include examples/tls_echo_server.cpp examples/tls_proxy.cpp); servers" \
    "pinned to ${server_pin[*]:-no CPU}, loadgen to ${client_pin[*]:-no CPU}; load average" \
    "$load_before before."
}

note_load

# ---------------------------------------------------------------------------------------------
# Echo servers

servers=(asio)
server_cmd[asio]="${bin[asio_tls_echo_server]} $credentials"
if ((control)); then
  servers+=(control)
  server_cmd[control]=${server_cmd[asio]}
fi
servers+=(evnet)
server_cmd[evnet]="${bin[tls_echo_server]} $credentials"
# "uring": evnet's TLS echo server on the io_uring transport (--no-uring where the build or the
# kernel has none); "evnet" and everything else run on epoll (EVNET_TRANSPORT, exported above).
if ((uring)); then
  servers+=(uring)
  server_cmd[uring]="env EVNET_TRANSPORT=io_uring ${server_cmd[evnet]}"
fi
has_node=0
if command -v node >/dev/null; then
  has_node=1
  servers+=(node)
  server_cmd[node]="node $repo_root/benchmarks/node_tls_echo_server.js $credentials"
fi
scenarios=(echo_c50 pipeline_c50 stream_c4 full_c50 resumed_c50)

echo_table=$work_dir/echo_table.md
((echo)) && echo "echo servers: $rounds round(s) of ${warmup}s warm-up + ${duration}s" >&2
for ((round = 0; echo && round < rounds; round++)); do
  # shellcheck disable=SC2086  # the command is a program and maybe a script: split it
  for name in "${servers[@]}"; do start_server "$name" ${server_cmd[$name]}; done
  echo "round $((round + 1))/$rounds" >&2
  rotate "${servers[@]}"
  for name in "${servers[@]}"; do stop_pid "${server_pid[$name]}"; done
done

((echo)) && {
  header "TLS echo servers: throughput"
  echo "\"vs asio\", \"vs node\": the median over the rounds of the ratio within one round;" \
    "\"rounds\": the lowest and highest ratio to asio.$( ((control)) && echo " \"control\" is a" \
      "second process of the asio server: its distance from 1.00x is this machine's noise.")"
  echo
  printf '| scenario | server | throughput | vs asio | rounds |%s server CPU s / M | CPU vs asio |\n' \
    "$( ((has_node)) && echo " vs node |")"
  printf '|---|---|---:|---:|---:|%s---:|---:|\n' "$( ((has_node)) && echo "---:|")"
  for scenario in "${scenarios[@]}"; do
    metric=${scenario_metric[$scenario]}
    base_cpu=$(cpu_per_million "asio $scenario")
    for name in "${servers[@]}"; do
      spread=-
      [[ $name == asio ]] || spread=$(round_ratios "$metric" "$name $scenario" "asio $scenario" | range)
      printf '| %s | %s | %.0f %s | %s | %s |%s %.3f | %s |\n' "${scenario_label[$scenario]}" \
        "$name" "$(median_of "$metric" "$name $scenario")" "$(unit "$metric")" \
        "$(round_ratio "$metric" "$name $scenario" "asio $scenario")" "$spread" \
        "$( ((has_node)) && echo " $(round_ratio "$metric" "$name $scenario" "node $scenario") |")" \
        "$(cpu_per_million "$name $scenario")" \
        "$(ratio "$(cpu_per_million "$name $scenario")" "$base_cpu")"
    done
  done
  echo
  echo "Messages are 64 bytes (stream: 16 KiB chunks, MB = 10^6 bytes echoed); a handshake is a" \
    "connection: TCP connect, TLS 1.3 handshake, one 64-byte echo, close_notify, close." \
    "Server CPU is utime + stime over the measured window per million messages (chunks," \
    "connections). loadgen is a TLS client too and needs its CPU for it: where it is the" \
    "bottleneck (handshakes, stream) the throughput ratios move towards 1 and the CPU per" \
    "message is the figure that tells the servers apart."
} >"$echo_table" && cat "$echo_table"

# ---------------------------------------------------------------------------------------------
# Proxies: TLS termination in front of a plain echo server

proxy_table=$work_dir/proxy_table.md
if ((proxy)); then
  # stunnel and hitch take no port 0: they get a free_port.
  # wait_listening PORT NAME: until something listens on 127.0.0.1:PORT (10 s at most).
  wait_listening() {
    for _ in $(seq 100); do
      (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return
      sleep 0.1
    done
    die "$2 does not listen on port $1"
  }
  # start_proxy NAME BACKEND_PORT: starts proxy NAME pinned to CPU 0 on a fresh port.
  start_proxy() {
    local name=$1 backend=$2 port pid
    port=$(free_port)
    case ${name#proxy_} in
      evnet)
        # shellcheck disable=SC2086  # credentials holds several words
        "${server_pin[@]}" "${bin[tls_proxy]}" $credentials --port "$port" --host 127.0.0.1 \
          --target-port "$backend" >"$work_dir/$name.out" 2>"$work_dir/$name.err" &
        ;;
      stunnel)
        printf '%s\n' "foreground = yes" "pid =" "[tls]" "accept = 127.0.0.1:$port" \
          "connect = 127.0.0.1:$backend" "cert = $work_dir/cert.pem" "key = $work_dir/key.pem" \
          "socket = l:TCP_NODELAY=1" "socket = r:TCP_NODELAY=1" >"$work_dir/stunnel.conf"
        "${server_pin[@]}" stunnel4 "$work_dir/stunnel.conf" >"$work_dir/$name.out" \
          2>"$work_dir/$name.err" &
        ;;
      hitch)
        chmod 755 "$work_dir" # its worker runs as nobody
        "${server_pin[@]}" hitch "--backend=[127.0.0.1]:$backend" "--frontend=[127.0.0.1]:$port" \
          --workers=1 --user=nobody --group=nogroup "--ocsp-dir=$work_dir" \
          "$work_dir/key_and_cert.pem" >"$work_dir/$name.out" 2>"$work_dir/$name.err" &
        ;;
    esac
    pid=$!
    started "$pid"
    wait_listening "$port" "$name"
    server_pid[$name]=$pid server_port[$name]=$port
    server_measured[$name]=$pid
    if [[ $name == proxy_hitch ]]; then # the worker carries the traffic: "[ PID] ... Process 0 online"
      local worker=''
      for _ in $(seq 100); do
        worker=$(sed -n 's/.*\[ *\([0-9][0-9]*\)\] {core} Process 0 online.*/\1/p' "$work_dir/$name.err")
        [[ -n $worker ]] && break
        sleep 0.1
      done
      [[ -n $worker ]] || die "hitch did not start its worker"
      server_measured[$name]=$worker
      started "$worker"
    fi
  }

  proxies=(evnet)
  for tool in stunnel4 hitch; do
    if command -v "$tool" >/dev/null; then
      proxies+=("${tool%4}")
    else
      echo "$script: $tool not found; left out" >&2
    fi
  done
  scenarios=(stream_c4 echo_c50)
  echo "proxies: ${proxies[*]}" >&2
  for ((round = 0; round < rounds; round++)); do
    "${client_pin[@]}" "${bin[asio_echo_server]}" --port 0 --host 127.0.0.1 \
      >"$work_dir/backend.out" 2>"$work_dir/backend.err" &
    backend=$!
    started "$backend"
    backend_port=$(listening_port "$backend" "$work_dir/backend.out" "$work_dir/backend.err" backend)
    for name in "${proxies[@]}"; do start_proxy "proxy_$name" "$backend_port"; done
    echo "round $((round + 1))/$rounds" >&2
    rotate "${proxies[@]/#/proxy_}"
    for name in "${proxies[@]}"; do
      [[ $name != hitch ]] || stop_pid "${server_measured[proxy_hitch]}"
      stop_pid "${server_pid[proxy_$name]}"
    done
    stop_pid "$backend"
  done

  # cpu_per_mb "server scenario": the proxy's CPU milliseconds per MB echoed, median.
  cpu_per_mb() {
    local line
    while IFS= read -r line; do
      [[ -n $line ]] || continue
      awk -v cpu="$(field server_cpu_s "$line")" -v mb="$(field mb_per_s "$line")" \
        -v secs="$(field secs "$line")" 'BEGIN { print (mb > 0 ? cpu * 1000 / (mb * secs) : 0) }'
    done <<<"${results[$1]:-}" | median
  }
  {
    header "TLS termination: tls_proxy, stunnel4 and hitch"
    echo "Each proxy terminates TLS 1.3 in front of benchmarks/asio_echo_server (plain TCP," \
      "pinned with loadgen to ${client_pin[*]:-no CPU}). \"vs\": the median over the rounds" \
      "of evnet's ratio within one round (throughput: higher is better; CPU per MB: lower)."
    echo
    echo "| scenario | proxy | throughput | MB/s | CPU ms / MB | evnet vs it (throughput) | evnet vs it (CPU / MB) |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    for scenario in "${scenarios[@]}"; do
      metric=${scenario_metric[$scenario]}
      for name in "${proxies[@]}"; do
        vs=- vs_cpu=-
        if [[ $name != evnet ]]; then
          vs=$(round_ratio "$metric" "proxy_evnet $scenario" "proxy_$name $scenario")
          vs_cpu=$(ratio "$(cpu_per_mb "proxy_evnet $scenario")" "$(cpu_per_mb "proxy_$name $scenario")")
        fi
        printf '| %s | %s | %.0f %s | %.1f | %.2f | %s | %s |\n' "${scenario_label[$scenario]}" \
          "$name" "$(median_of "$metric" "proxy_$name $scenario")" "$(unit "$metric")" \
          "$(median_of mb_per_s "proxy_$name $scenario")" "$(cpu_per_mb "proxy_$name $scenario")" \
          "$vs" "$vs_cpu"
      done
    done
    echo
    echo "CPU is the proxy's utime + stime (stunnel: all its threads; hitch: its worker process)" \
      "over the measured window, per MB echoed (both directions through the proxy count once)."
  } >"$proxy_table"
  cat "$proxy_table"
fi

# ---------------------------------------------------------------------------------------------
# Instructions per message (callgrind)

cost_table=$work_dir/cost_table.md
if ((cost)); then
  command -v valgrind >/dev/null || die "valgrind is required (or pass --no-cost)"
  # server_instructions NAME SCENARIO N: callgrind's Ir of server NAME while loadgen sends
  # exactly N messages after one per connection (lib.sh's instructions reads the total).
  server_instructions() {
    local name=$1 scenario=$2 n=$3 out=$work_dir/callgrind.$1.$2.$3 pid port
    local command=${server_cmd[$name]} transport=epoll
    # valgrind runs the server itself, not env: the transport goes in the environment
    [[ $name == uring ]] && command=${server_cmd[evnet]} transport=io_uring
    # shellcheck disable=SC2086
    EVNET_TRANSPORT=$transport valgrind --tool=callgrind --callgrind-out-file="$out" \
      --dump-instr=no $command --port 0 --host 127.0.0.1 >"$out.stdout" 2>"$out.stderr" &
    pid=$!
    started "$pid"
    port=$(listening_port "$pid" "$out.stdout" "$out.stderr" "$name under callgrind" 600)
    # shellcheck disable=SC2086
    "$loadgen" --host 127.0.0.1 --port "$port" ${scenario_args[$scenario]} --warmup 0 \
      --messages "$n" --timeout 120 >/dev/null 2>"$work_dir/loadgen.err" ||
      { cat "$work_dir/loadgen.err" >&2; die "loadgen against $name under callgrind failed"; }
    kill -TERM "$pid"
    wait "$pid" || true
    instructions "$out"
  }
  declare -A instr
  cost_servers=(asio evnet)
  ((uring)) && cost_servers+=(uring)
  cost_scenarios=(echo_c50 pipeline_c50 full_c50 resumed_c50)
  # messages (handshakes: connections) of the short and the long run
  declare -A counts=([echo_c50]="$short $long" [pipeline_c50]="$((short * 5)) $((long * 5))"
    [full_c50]="$((short / 20)) $((long / 20))" [resumed_c50]="$((short / 20)) $((long / 20))")
  for scenario in "${cost_scenarios[@]}"; do
    read -r a b <<<"${counts[$scenario]}"
    for name in "${cost_servers[@]}"; do
      echo "  callgrind: $name ${scenario_label[$scenario]} ($a, $b messages)" >&2
      low=$(server_instructions "$name" "$scenario" "$a")
      high=$(server_instructions "$name" "$scenario" "$b")
      instr[$name $scenario]=$(awk -v a="$low" -v b="$high" -v n=$((b - a)) 'BEGIN { printf "%.0f", (b - a) / n }')
    done
  done
  {
    echo "## TLS: user-space instructions per message and per handshake"
    echo
    echo "callgrind's Ir of the whole server process (evnet, on epoll or as uring on io_uring," \
      "or asio; libssl, libcrypto, libc) per echoed 64-byte message over TLS 1.3, and per connection (handshake, one echo," \
      "close): (long run − short run) / (difference in messages): $short and $long messages" \
      "(pipeline: five times as many; handshakes: a twentieth); $(date -u +%Y-%m-%d)," \
      "$(machine "$build_dir"), $(valgrind --version)."
    echo
    echo "| scenario | server | instructions/msg | vs asio |"
    echo "|---|---|---:|---:|"
    for scenario in "${cost_scenarios[@]}"; do
      for name in "${cost_servers[@]}"; do
        printf '| %s | %s | %s | %s |\n' "${scenario_label[$scenario]}" "$name" \
          "${instr[$name $scenario]}" "$(ratio "${instr[$name $scenario]}" "${instr[asio $scenario]}")"
      done
    done
  } >"$cost_table"
  cat "$cost_table"
fi

# ---------------------------------------------------------------------------------------------
# Idle memory, and everything in one file

if ((idle)); then
  echo "idle memory:" >&2
  "$repo_root/benchmarks/idle_memory.sh" --tls --no-build --build-dir "$build_dir" \
    --results "$results_dir" --hold "$idle_hold" >/dev/null
  cat "$results_dir/idle_memory_tls.md"
fi

parts=()
((echo)) && parts+=("$echo_table")
((proxy)) && parts+=("$proxy_table")
((cost)) && parts+=("$cost_table")
# the last idle_memory_tls.md, this run's or an earlier one's
[[ -f $results_dir/idle_memory_tls.md ]] && parts+=("$results_dir/idle_memory_tls.md")
for part in "${parts[@]}"; do
  [[ $part == "${parts[0]}" ]] || echo
  cat "$part"
done >"$results_dir/tls.md"
echo
echo "results: $results_dir/tls.md, tls.log; took $((SECONDS - run_started)) s"
