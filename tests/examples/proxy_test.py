#!/usr/bin/env python3
"""Runs tcp_proxy on port 0 in front of echo_server: 4 MiB of patterned data round-trips byte-exact
(several connections at once). Then in front of a target that accepts and never reads: the
proxy's RSS stays bounded while a client tries to push 256 MiB (backpressure through pipe()).
A reset on either side reaches the other as a reset. A refused target closes the client. Each proxy stops on SIGTERM with exit status 0."""
import socket, struct, sys, threading, time

from example_util import start_server, stop_server

proxy_bin, echo_bin = sys.argv[1], sys.argv[2]

def pattern(size, seed):
    block = bytes((i * 31 + seed + (i >> 8)) & 0xFF for i in range(65536))
    return (block * (size // len(block) + 1))[:size]

def round_trip(host, port, payload, results, index):
    with socket.create_connection((host, port), timeout=30) as s:
        def send():
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)  # half-close: the reply must still come back whole
        sender = threading.Thread(target=send)
        sender.start()
        received = bytearray()
        while chunk := s.recv(1 << 20):
            received += chunk
        sender.join()
    results[index] = bytes(received)

def describe(received, sent):
    """How received differs from sent: its length and the first byte that differs."""
    if received is None:
        return "nothing came back (the connection failed)"
    first = next((i for i, (a, b) in enumerate(zip(received, sent)) if a != b), min(len(received), len(sent)))
    return f"{len(received)} of {len(sent)} bytes came back, the first difference at byte {first}"

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")

def start_proxy(target_port):
    return start_server([proxy_bin, "--port", "0", "--host", "127.0.0.1",
                         "--target-host", "127.0.0.1", "--target-port", str(target_port)])

# 1. Byte-exact through the proxy to echo_server: one 4 MiB connection plus three at once.
echo, echo_host, echo_port = start_server([echo_bin, "--port", "0", "--host", "127.0.0.1"])
try:
    proxy, host, port = start_proxy(echo_port)
    try:
        payloads = [pattern(4 << 20, 0)] + [pattern((1 << 20) + k * 4099, k) for k in (1, 2, 3)]
        results = [None]
        round_trip(host, port, payloads[0], results, 0)
        assert results[0] == payloads[0], f"4 MiB differs: {describe(results[0], payloads[0])}"
        results = [None] * 3
        threads = [threading.Thread(target=round_trip, args=(host, port, payloads[k + 1], results, k))
                   for k in range(3)]
        for t in threads: t.start()
        for t in threads: t.join(60)
        for k in range(3):
            assert results[k] == payloads[k + 1], f"connection {k} differs: {describe(results[k], payloads[k + 1])}"
    finally:
        stop_server(proxy)
finally:
    stop_server(echo)

# 2. A target that accepts and never reads: the client's send blocks, the proxy's memory does not
#    grow with what the client tries to send.
sink = socket.create_server(("127.0.0.1", 0))
sink_port = sink.getsockname()[1]
accepted = []
threading.Thread(target=lambda: accepted.append(sink.accept()[0]), daemon=True).start()
proxy, host, port = start_proxy(sink_port)
client = None
try:
    baseline = rss_kib(proxy.pid)
    client = socket.create_connection((host, port), timeout=10)
    client.settimeout(0.2)
    sent = 0
    stop = threading.Event()
    def push():
        global sent
        chunk = pattern(1 << 20, 9)
        while sent < (256 << 20) and not stop.is_set():
            try:
                sent += client.send(chunk)
            except socket.timeout:
                pass  # buffers are full: the proxy stopped reading, as it should
    pusher = threading.Thread(target=push)
    pusher.start()
    peak = baseline
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        peak = max(peak, rss_kib(proxy.pid))
        time.sleep(0.05)
    stop.set()
    pusher.join(10)
    peak = max(peak, rss_kib(proxy.pid))
    grew_mib = (peak - baseline) / 1024
    print(f"non-reading target: client sent {sent >> 20} MiB of 256, proxy RSS grew {grew_mib:.1f} MiB")
    assert accepted, "the proxy did not connect to the target"
    assert sent < (256 << 20), "the client sent everything: no backpressure"
    assert grew_mib < 64, f"proxy RSS grew by {grew_mib:.1f} MiB"
finally:
    stop_server(proxy)  # with the stuck connection still open
    if client: client.close()
    for s in accepted: s.close()
    sink.close()

# 3. A reset passes through as a reset, both ways: a target that sends 4 MiB and resets, and a
#    client that sends and resets. Without it the other side sees a clean end of a cut stream.
def reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()

def read_until_closed(sock):
    """Reads to the end: 'reset' if the connection was reset, else 'end'."""
    try:
        while sock.recv(1 << 20):
            pass
        return "end"
    except ConnectionResetError:
        return "reset"

target = socket.create_server(("127.0.0.1", 0))
proxy, host, port = start_proxy(target.getsockname()[1])
try:
    target.settimeout(10)
    with socket.create_connection((host, port), timeout=10) as client:
        upstream, _ = target.accept()
        upstream.sendall(pattern(4 << 20, 5))
        reset(upstream)
        assert read_until_closed(client) == "reset", "the target's reset reached the client as a clean end"
    client = socket.create_connection((host, port), timeout=10)
    upstream, _ = target.accept()
    upstream.settimeout(10)
    client.sendall(b"x" * 65536)
    reset(client)
    with upstream:
        assert read_until_closed(upstream) == "reset", "the client's reset reached the target as a clean end"
finally:
    stop_server(proxy)
    target.close()

# 4. A target that refuses: the client's connection closes.
refused = socket.create_server(("127.0.0.1", 0))
refused_port = refused.getsockname()[1]
refused.close()
proxy, host, port = start_proxy(refused_port)
try:
    with socket.create_connection((host, port), timeout=10) as s:
        try:
            assert s.recv(1) == b"", "expected the proxy to close the connection"
        except ConnectionResetError:
            pass
finally:
    stop_server(proxy)
print("tcp_proxy: ok")
