#!/usr/bin/env python3
"""Runs echo_server on port 0, drives it with a plain Python socket client and with
echo_client, checks every byte; a client that sends and never reads must not grow the server
(backpressure: it is paused) nor stop it serving another client. Then stops the server with
SIGTERM and expects exit status 0."""
import random, socket, subprocess, sys

from example_util import send_without_reading, start_server, stop_server

server_bin, client_bin = sys.argv[1], sys.argv[2]
server, host, port = start_server([server_bin, "--port", "0", "--host", "127.0.0.1"])
try:
    payload = random.Random(7).randbytes(1 << 20)
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        echoed = bytearray()
        while chunk := s.recv(65536):
            echoed += chunk
    assert bytes(echoed) == payload, f"echo differs: {len(echoed)} of {len(payload)} bytes"

    # A client that sends 1 MiB blocks and never reads. The server pauses it while its echoes
    # are queued, so the client's sends stop (the kernel buffers fill) and a second with no
    # progress ends the flood; without backpressure the server would take all 512 MiB.
    sent, peak, flood = send_without_reading(host, port, bytes(1 << 20), server.pid)
    with flood:
        assert sent < 128 << 20, f"the server read {sent >> 20} MiB from a client that never reads"
        assert peak <= 128, f"the server grew to {peak:.0f} MiB"
        with socket.create_connection((host, port), timeout=10) as other:
            other.sendall(b"still there?")
            assert other.recv(64) == b"still there?"
        print(f"non-reading client: {sent >> 20} MiB taken, server peak {peak:.0f} MiB")

    out = subprocess.run([client_bin, "--port", str(port), "--host", host, "--message",
                          "hello evnet"], capture_output=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello evnet", out.stdout
finally:
    stop_server(server)
print("echo_server and echo_client: ok")
