#!/usr/bin/env python3
"""Runs tls_echo_server and tls_proxy against real TLS clients: openssl s_client with TLS 1.2 and
TLS 1.3 forced and SNI, Python's ssl module (1 MiB both ways, half-closed), plaintext sent to the
TLS port (only that connection closes), tls_proxy in front of echo_server. Certificates are made
here with `openssl req`. Every server stops on SIGTERM with exit status 0; bad flags exit 2."""
import os, select, socket, ssl, subprocess, sys, tempfile, time

from example_util import start_server, stop_server

tls_echo_bin, tls_proxy_bin, echo_bin = sys.argv[1], sys.argv[2], sys.argv[3]

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)

def make_certificates(d):
    """A CA, and a server certificate for localhost and 127.0.0.1 signed by it."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=evnet example CA",
            cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "key.pem", "-out", "server.csr", "-subj", "/CN=localhost", cwd=d)
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "cert.pem", "-days", "1", "-extfile", "san.ext", cwd=d)

def pattern(size):
    block = bytes((i * 31 + (i >> 8)) & 0xFF for i in range(65536))
    return (block * (size // len(block) + 1))[:size]

def client_context(d):
    context = ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))
    return context

def round_trip(d, port, payload):
    """Sends payload, then closes its side with a TCP FIN and no close_notify (Node reads that as
    the end); returns everything that came back. TLS through MemoryBIOs, so that the socket can
    half-close and go on reading."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context(d).wrap_bio(incoming, outgoing, server_hostname="localhost")
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    raw.setblocking(False)
    received, pending, offset, finished = bytearray(), b"", 0, False
    deadline = time.monotonic() + 30
    with raw:
        while time.monotonic() < deadline:
            try:
                if tls.version() is None:
                    tls.do_handshake()
                elif offset < len(payload) and len(pending) < (1 << 20):
                    offset += tls.write(payload[offset:offset + 16384])
            except ssl.SSLWantReadError:
                pass
            pending += outgoing.read()
            if pending:
                try:
                    pending = pending[raw.send(pending):]
                except BlockingIOError:
                    pass
            if offset == len(payload) and not pending and not finished and tls.version():
                raw.shutdown(socket.SHUT_WR)
                finished = True
            readable, _, _ = select.select([raw], [raw] if pending else [], [], 1)
            if not readable:
                continue
            chunk = raw.recv(1 << 20)
            if not chunk:
                break
            incoming.write(chunk)
            try:
                while data := tls.read(1 << 20):
                    received += data
                break  # b"": the server's close_notify
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                break
    return bytes(received)

def s_client(d, port, *flags):
    """openssl s_client: sends a line, returns (what it printed, the echoed line seen)."""
    proc = subprocess.Popen(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                             "-servername", "localhost", "-CAfile", os.path.join(d, "ca.pem"),
                             "-verify_return_error", "-brief", *flags],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        proc.stdin.write(b"hello from s_client\n")
        proc.stdin.flush()
        out = b""
        deadline = time.monotonic() + 10
        while b"hello from s_client" not in out and time.monotonic() < deadline:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
        proc.stdin.close()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return out.decode(errors="replace")

def expect_exit(argv, status, text):
    result = subprocess.run(argv, capture_output=True, timeout=10)
    assert result.returncode == status, f"{argv}: exit {result.returncode}, wanted {status}"
    output = (result.stdout + result.stderr).decode()
    assert text in output, f"{argv}: {text!r} not in {output!r}"

with tempfile.TemporaryDirectory() as d:
    make_certificates(d)
    key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")

    # Flags: usage on --help (0), errors with the usage (2), a key that is not a key (1).
    for binary in (tls_echo_bin, tls_proxy_bin):
        expect_exit([binary, "--help"], 0, "usage:")
        expect_exit([binary, "--cert", cert], 2, "--cert and --key are required")
        expect_exit([binary, "--cert", cert, "--key", key, "--port", "70000"], 2, "invalid port")
        expect_exit([binary, "--cert", cert, "--key", key, "--port", "abc"], 2, "invalid port")
        expect_exit([binary, "--bogus", "1"], 2, "unknown option")
        expect_exit([binary, "--cert", cert, "--key", cert, "--port", "0"], 1, "")

    server, host, port = start_server([tls_echo_bin, "--port", "0", "--host", "127.0.0.1",
                                       "--cert", cert, "--key", key])
    try:
        for version, flag in (("TLSv1.3", "-tls1_3"), ("TLSv1.2", "-tls1_2")):
            out = s_client(d, port, flag)
            assert f"Protocol version: {version}" in out, out
            assert "Verification: OK" in out, out
            assert "hello from s_client" in out, out

        payload = pattern(1 << 20)
        assert round_trip(d, port, payload) == payload, "1 MiB did not come back whole"

        # Plaintext to the TLS port: that connection is closed; the server goes on.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
            plain.sendall(b"*1\r\n$4\r\nPING\r\n")
            try:
                leftover = plain.recv(4096)
                while plain.recv(4096):
                    pass
            except ConnectionResetError:
                pass
        assert round_trip(d, port, b"still here") == b"still here"
    finally:
        stop_server(server)

    # tls_proxy in front of the plaintext echo_server.
    echo, _, echo_port = start_server([echo_bin, "--port", "0", "--host", "127.0.0.1"])
    try:
        proxy, _, proxy_port = start_server([tls_proxy_bin, "--port", "0", "--host", "127.0.0.1",
                                             "--cert", cert, "--key", key,
                                             "--target-port", str(echo_port)])
        try:
            payload = pattern(4 << 20)
            assert round_trip(d, proxy_port, payload) == payload, "4 MiB through the proxy"
        finally:
            stop_server(proxy)
    finally:
        stop_server(echo)
print("tls examples: ok")
