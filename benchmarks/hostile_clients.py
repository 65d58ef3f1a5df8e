#!/usr/bin/env python3
"""hostile_clients.py — one hostile or careless client against the hub and against redis-server
(and a non-reading client against echo_server), with a healthy client timed throughout.

    benchmarks/hostile_clients.py [--build-dir DIR] [--results DIR] [--seconds S] [--only TEXT]

Needs the Release build of the examples in DIR (default build/bench: cmake -S . -B build/bench
-DCMAKE_BUILD_TYPE=Release -DEVNET_BUILD_BENCHMARKS=ON, then build the targets hub and
echo_server) and redis-server (Debian: redis-server). Each attack runs against a server started
afresh (the hub with --port 0, redis-server on a free port with --save '' --appendonly no and
its defaults otherwise) while a healthy client sends one PING every 100 ms and times the reply.
Reported per attack and server: the server's peak resident memory (VmHWM), its resident memory
at the end, the healthy client's median and worst round trip, and what the attacker got through.

Attacks (issue 17; each for --seconds, 5 by default):
  pipeline, never reads     PINGs pipelined in 64 KiB blocks, no reply read
  subscribed, never reads   the same after SUBSCRIBE
  PING flood                two clients pipelining PINGs and reading every reply
  subscribe 50,000          SUBSCRIBE of 50,000 channels, its replies read, then a disconnect
  8 x 60 MiB PUBLISH        8 clients each send one 60 MiB PUBLISH, read the reply, stay idle:
                            the resident memory after, per idle connection
  echo, never reads         echo_server: a client sends 1 MiB blocks and never reads
Goals (issue 17): flooders keep the hub <= 128 MB and the healthy worst round trip <= 100 ms;
the 50,000-channel subscribe and disconnect delay others <= 250 ms; after large requests an idle
connection holds <= 1 MiB; echo_server under a sender that never reads <= 128 MB.
"""
import argparse, os, re, select, socket, statistics, subprocess, sys, tempfile, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def proc_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


class Server:
    """A server process on 127.0.0.1 and its port; stopped with SIGTERM (SIGKILL after 5 s)."""

    def __init__(self, argv, port=None):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if port is None:
            line = self.proc.stdout.readline().decode()
            match = re.fullmatch(r"listening on (.+):(\d+)\n", line)
            if not match:
                raise SystemExit(f"{argv[0]}: unexpected first line {line!r}")
            port = int(match.group(2))
        self.port = port
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{argv[0]} did not start")
                time.sleep(0.05)

    def peak_mib(self):
        return proc_kib(self.proc.pid, "VmHWM") / 1024

    def rss_mib(self):
        return proc_kib(self.proc.pid, "VmRSS") / 1024

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(kind, build_dir):
    if kind == "hub":
        return Server([f"{build_dir}/examples/hub", "--port", "0", "--host", "127.0.0.1"])
    if kind == "echo_server":
        return Server([f"{build_dir}/examples/echo_server", "--port", "0", "--host", "127.0.0.1"])
    port = free_port()
    workdir = tempfile.mkdtemp()
    return Server(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", workdir], port)


class Healthy(threading.Thread):
    """Sends PING every 100 ms and times each reply; a reply that never comes counts as the
    time until the end."""

    def __init__(self, port, echo=False):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.request, self.reply = (b"ping\n", b"ping\n") if echo else (b"PING\r\n", b"+PONG\r\n")
        self.stop, self.times = threading.Event(), []

    def run(self):
        while not self.stop.is_set():
            begin = time.monotonic()
            self.sock.sendall(self.request)
            got = b""
            try:
                while len(got) < len(self.reply):
                    chunk = self.sock.recv(64)
                    if not chunk:
                        break
                    got += chunk
            except OSError:
                pass
            self.times.append(time.monotonic() - begin)
            if got != self.reply:
                self.times.append(float("inf"))
                return
            self.stop.wait(max(0.0, 0.1 - (time.monotonic() - begin)))

    def finish(self):
        self.stop.set()
        self.join(60)
        self.sock.close()
        return (statistics.median(self.times) * 1000, max(self.times) * 1000) if self.times \
            else (float("nan"), float("nan"))


def pipeline_never_read(port, seconds, subscribe=False, block=b"PING\r\n" * 10923):
    sock = socket.create_connection(("127.0.0.1", port))
    if subscribe:
        sock.sendall(b"SUBSCRIBE flood\r\n")
    sock.setblocking(False)
    sent, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            sent += sock.send(block)
        except BlockingIOError:
            select.select([], [sock], [], 0.05)
        except OSError:  # cut by the server
            break
    return sock, f"{sent >> 20} MiB sent"


def ping_flood(port, seconds):
    def flood(results):
        sock = socket.create_connection(("127.0.0.1", port))
        block, received = b"PING\r\n" * 1000, 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sock.sendall(block)
            want = 7 * 1000
            while want > 0:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                want -= len(chunk)
                received += len(chunk)
        results.append(received // 7)
        sock.close()
    results = []
    threads = [threading.Thread(target=flood, args=(results,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return None, f"{sum(results) / seconds / 1000:.0f}k PINGs/s answered"


def subscribe_many(port, seconds, channels=50_000):
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    parts = [b"*%d\r\n$9\r\nSUBSCRIBE\r\n" % (channels + 1)]
    parts += [b"$%d\r\n%s\r\n" % (len(name), name)
              for name in (b"channel:%d" % i for i in range(channels))]
    begin = time.monotonic()
    sock.sendall(b"".join(parts))
    last, tail = b"\r\n:%d\r\n" % channels, b""  # the count in the last channel's reply
    while last not in tail:
        chunk = sock.recv(1 << 20)
        if not chunk:
            break
        tail = tail[-32:] + chunk
    subscribed = time.monotonic() - begin
    sock.close()
    time.sleep(max(1.0, seconds / 2))  # the disconnect's unsubscribing happens meanwhile
    return None, f"subscribed in {subscribed * 1000:.0f} ms"


def large_publishes(port, seconds, server, clients=8, size=60 << 20):
    before = server.rss_mib()
    socks = []
    request = b"*3\r\n$7\r\nPUBLISH\r\n$5\r\nlarge\r\n$%d\r\n" % size + b"x" * size + b"\r\n"
    for _ in range(clients):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(request)
        assert sock.recv(64) == b":0\r\n"
        socks.append(sock)
    time.sleep(min(seconds, 2))
    held = (server.rss_mib() - before) / clients
    return socks, f"{held:.2f} MiB held per idle connection"


def echo_never_read(port, seconds):
    return pipeline_never_read(port, seconds, block=bytes(1 << 20))


ATTACKS = [
    ("pipeline, never reads", ["hub", "redis"], lambda port, s, srv: pipeline_never_read(port, s)),
    ("subscribed, never reads", ["hub", "redis"],
     lambda port, s, srv: pipeline_never_read(port, s, subscribe=True)),
    ("PING flood", ["hub", "redis"], lambda port, s, srv: ping_flood(port, s)),
    ("subscribe 50,000", ["hub", "redis"], lambda port, s, srv: subscribe_many(port, s)),
    ("8 x 60 MiB PUBLISH", ["hub", "redis"], lambda port, s, srv: large_publishes(port, s, srv)),
    ("echo, never reads", ["echo_server"], lambda port, s, srv: echo_never_read(port, s)),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build/bench")
    parser.add_argument("--results", default="benchmarks/results")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--only", default="", help="run the attacks whose name contains this")
    args = parser.parse_args()
    build_dir = os.path.join(REPO, args.build_dir)
    rows = []
    for name, kinds, attack in ATTACKS:
        if args.only not in name:
            continue
        for kind in kinds:
            server = start(kind, build_dir)
            try:
                healthy = Healthy(server.port, echo=kind == "echo_server")
                healthy.start()
                time.sleep(0.3)
                held, outcome = attack(server.port, args.seconds, server)
                time.sleep(0.3)
                median, worst = healthy.finish()
                peak, end = server.peak_mib(), server.rss_mib()
                if held is not None:
                    for sock in held if isinstance(held, list) else [held]:
                        sock.close()
            finally:
                server.stop()
            row = (name, "redis-server" if kind == "redis" else kind, peak, end, median, worst,
                   outcome)
            print("| %s | %s | %.0f | %.0f | %.1f | %.1f | %s |" % row, flush=True)
            rows.append(row)
    redis = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
    lines = [
        "## Hostile clients: the hub and echo_server next to redis-server",
        "",
        f"benchmarks/hostile_clients.py --seconds {args.seconds:g}, {time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end; "
        f"{redis.split(' sha=')[0].strip()}; the examples from {args.build_dir}.",
        "",
        "| attack | server | peak RSS MiB | RSS at end MiB | healthy median ms | healthy worst ms "
        "| attacker |",
        "|---|---|---:|---:|---:|---:|---|",
    ] + ["| %s | %s | %.0f | %.0f | %.1f | %.1f | %s |" % row for row in rows]
    os.makedirs(os.path.join(REPO, args.results), exist_ok=True)
    with open(os.path.join(REPO, args.results, "hostile_clients.md"), "w") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
