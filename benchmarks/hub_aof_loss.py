#!/usr/bin/env python3
"""hub_aof_loss.py — what `--appendfsync everysec` can lose: the hub (and, with --redis,
redis-server with the same settings) under a write load, killed with SIGKILL, then restarted.

  benchmarks/hub_aof_loss.py HUB [--seconds S] [--rounds N] [--connections C] [--redis]

Each round starts the server under `strace -f --seccomp-bpf -ttt -e trace=fdatasync,fsync` (only
those calls stop the process), with --appendonly yes --appendfsync everysec in a fresh
directory; C connections (4) push RPUSH <connection> <sequence number> in pipelined batches of 64
for S seconds (3) and record when each reply came back; then SIGKILL. The server is started
again on the same directory and each list read back. Reported per round:
  lost on kill -9   acknowledged pushes missing after the restart (the process died, the kernel
                    did not: what everysec may lose is only what a machine that stops loses);
  fsync gap         the longest time between two syncs of the file during the load;
  unsynced at kill  the time since the last sync when the kill came, and the acknowledged
                    pushes of that time: what a power cut at that moment could have lost.
Every acknowledged push must be there once and in order; the script fails otherwise."""
import argparse, os, re, select, shutil, signal, socket, subprocess, sys, tempfile, threading
import time

def resp(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def start(kind, binary, d, traced):
    """The server (under strace when traced): (process to wait for, server pid, port)."""
    port = free_port()
    if kind == "hub":
        argv = [binary, "--port", "0", "--appendonly", "yes", "--appendfsync", "everysec",
                "--dir", d]
    else:
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                "yes", "--appendfsync", "everysec", "--aof-use-rdb-preamble", "no", "--dir", d]
    if traced:
        argv = ["strace", "-f", "--seccomp-bpf", "-ttt", "-e", "trace=fdatasync,fsync", "-o",
                os.path.join(d, "strace.txt"), *argv]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    if kind == "hub":
        line = b""
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                byte = os.read(proc.stdout.fileno(), 1)
                if not byte:
                    break
                line += byte
        match = re.fullmatch(rb"listening on .+:(\d+)\n", line)
        if not match:
            raise SystemExit(f"the hub did not start: {line!r}")
        port = int(match.group(1))
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            break
        except OSError:
            time.sleep(0.05)
    pid = proc.pid
    if traced:  # the server is strace's child
        while time.monotonic() < deadline:
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                      text=True).stdout.split()
            if children:
                pid = int(children[0])
                break
            time.sleep(0.05)
    return proc, pid, port

def pusher(port, key, stop, acked):
    """Pushes key's sequence numbers in batches; acked gets (time, highest acknowledged)."""
    conn = socket.create_connection(("127.0.0.1", port))
    seq, data = 0, b""
    try:
        while not stop.is_set():
            conn.sendall(b"".join(resp("RPUSH", key, seq + i) for i in range(64)))
            replies = 0
            while replies < 64:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
                while b"\r\n" in data:
                    data = data[data.index(b"\r\n") + 2:]
                    replies += 1
                    seq += 1
                acked.append((time.time(), seq))
    except OSError:
        return
    finally:
        conn.close()

def read_list(port, key):
    deadline = time.monotonic() + 30
    while True:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(resp("LRANGE", key, 0, -1))
            data = b""
            while b"\r\n" not in data or data.startswith(b"*") and \
                    len(re.findall(rb"\$\d+\r\n\d+\r\n", data)) < int(data[1:data.index(b"\r\n")]):
                chunk = conn.recv(1 << 20)
                if not chunk:
                    raise SystemExit("LRANGE: connection closed")
                data += chunk
        if data.startswith(b"*"):
            return [int(i) for i in re.findall(rb"\$\d+\r\n(\d+)\r\n", data)]
        if not data.startswith(b"-LOADING") or time.monotonic() > deadline:
            raise SystemExit(f"LRANGE: {data[:80]!r}")
        time.sleep(0.1)  # redis-server is still loading its file

def one_round(kind, binary, seconds, connections):
    with tempfile.TemporaryDirectory() as d:
        proc, pid, port = start(kind, binary, d, traced=True)
        stop = threading.Event()
        acked = [[] for _ in range(connections)]
        threads = [threading.Thread(target=pusher, args=(port, f"k{i}", stop, acked[i]))
                   for i in range(connections)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        killed_at = time.time()
        os.kill(pid, signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(10)
        proc.wait(10)
        syncs = [float(line.split()[1]) for line in open(os.path.join(d, "strace.txt"))
                 if "fdatasync(" in line or "fsync(" in line]
        server, _, port = start(kind, binary, d, traced=False)
        try:
            lost = total = 0
            for i in range(connections):
                got = read_list(port, f"k{i}")
                done = acked[i][-1][1] if acked[i] else 0
                total += done
                lost += len(set(range(done)) - set(got))
                if len(got) != len(set(got)) or got != sorted(got):
                    raise SystemExit(f"{kind}: k{i} holds duplicates or is out of order")
        finally:
            server.kill()
            server.wait()
    during = [s for s in syncs if s <= killed_at]
    gaps = [b - a for a, b in zip(during, during[1:])]
    last = during[-1] if during else None
    at_risk = 0  # pushes acknowledged after the last sync
    for pushes in acked:
        if pushes and last is not None:
            at_risk += pushes[-1][1] - max((seq for t, seq in pushes if t <= last), default=0)
    return {"acknowledged": total, "lost": lost, "syncs": len(during),
            "max_gap": max(gaps) if gaps else float("nan"),
            "unsynced": killed_at - last if last else float("nan"), "at_risk": at_risk}

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("hub")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--redis", action="store_true")
    args = parser.parse_args()
    if not shutil.which("strace"):
        raise SystemExit("strace is required (apt-get install strace)")
    servers = [("hub", args.hub)] + ([("redis-server", shutil.which("redis-server"))]
                                      if args.redis else [])
    print("| server | round | pushes acknowledged | lost on kill -9 | syncs | longest fsync gap | "
          "unsynced at kill | acknowledged pushes not yet synced |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    failed = False
    for n in range(args.rounds):
        for kind, binary in servers:
            r = one_round(kind, binary, args.seconds, args.connections)
            failed = failed or r["lost"] > 0
            print(f"| {kind} | {n + 1} | {r['acknowledged']} | {r['lost']} | {r['syncs']} | "
                  f"{r['max_gap'] * 1000:.0f} ms | {r['unsynced'] * 1000:.0f} ms | "
                  f"{r['at_risk']} |", flush=True)
    if failed:
        raise SystemExit("acknowledged pushes were lost")

if __name__ == "__main__":
    main()
