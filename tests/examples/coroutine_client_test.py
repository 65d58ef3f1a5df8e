#!/usr/bin/env python3
"""Runs coroutine_client against echo_server (port 0): a short message and one large enough to
come back in several reads are printed byte-exact with exit status 0; a refused connection
exits non-zero with the error on stderr. Then SIGTERM stops the server with exit status 0."""
import socket, subprocess, sys

from example_util import start_server, stop_server

echo_bin, client_bin = sys.argv[1], sys.argv[2]

def run_client(port, *args):
    return subprocess.run([client_bin, "--port", str(port), "--host", "127.0.0.1", *args],
                          capture_output=True, timeout=10)

server, host, port = start_server([echo_bin, "--port", "0", "--host", "127.0.0.1"])
try:
    out = run_client(port, "--message", "hello coroutine")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello coroutine", out.stdout

    large = "".join(chr(ord("a") + i % 26) for i in range(100_000))
    out = run_client(port, "--message", large)
    assert out.returncode == 0, out.stderr
    assert out.stdout == large.encode(), f"{len(out.stdout)} of {len(large)} bytes"
finally:
    stop_server(server)

closed = socket.create_server(("127.0.0.1", 0))
closed_port = closed.getsockname()[1]
closed.close()
out = run_client(closed_port, "--message", "nobody")
assert out.returncode != 0, "expected a failure against a closed port"
assert out.stdout == b"", out.stdout
assert b"coroutine_client:" in out.stderr, out.stderr
print("coroutine_client: ok")
