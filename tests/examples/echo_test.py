#!/usr/bin/env python3
"""Runs echo_server on port 0, drives it with a plain Python socket client and with
echo_client, checks every byte, then stops the server with SIGTERM and expects exit status 0."""
import os, random, signal, socket, subprocess, sys

from example_util import start_server, stop_server

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

    out = subprocess.run([client_bin, "--port", str(port), "--host", host, "--message",
                          "hello evnet"], capture_output=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello evnet", out.stdout
finally:
    stop_server(server)
print("echo_server and echo_client: ok")
