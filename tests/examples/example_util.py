"""Helpers for example tests: start a server that prints 'listening on <host>:<port>', stop it
with SIGTERM and require exit status 0; never leave a process behind."""
import os, re, select, signal, subprocess, time

def start_server(argv, timeout=10):
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        if not ready:
            proc.kill()
            raise SystemExit(f"{argv[0]} did not print its listening line in {timeout}s")
        byte = os.read(proc.stdout.fileno(), 1)  # unbuffered: select sees the rest
        if not byte:
            proc.kill()
            raise SystemExit(f"{argv[0]} exited: {proc.stderr.read().decode(errors='replace')}")
        line += byte
    match = re.fullmatch(rb"listening on (.+):(\d+)\n", line)
    if not match:
        proc.kill()
        raise SystemExit(f"unexpected first line: {line!r}")
    return proc, match.group(1).decode(), int(match.group(2))

def stop_server(proc, timeout=10):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        status = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("server did not exit on SIGTERM")
    extra = proc.stdout.read()
    if status != 0:
        raise SystemExit(f"server exited with {status}: {proc.stderr.read().decode(errors='replace')}")
    if extra:
        raise SystemExit(f"server printed more than its listening line: {extra!r}")

def rss_mib(pid):
    """The resident memory of process pid, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024

def send_without_reading(host, port, block, server_pid, limit=512 << 20, stall=1.0):
    """Sends block after block to the server and never reads, until limit bytes went or no
    byte could be sent for stall seconds (the server stopped reading: backpressure). Returns
    (bytes sent, the server's peak RSS in MiB), the connection still open in the third value."""
    import socket
    flood = socket.create_connection((host, port), timeout=10)
    flood.setblocking(False)
    sent, peak = 0, 0.0
    deadline = time.monotonic() + 30
    while sent < limit and time.monotonic() < deadline:
        try:
            sent += flood.send(block)
        except BlockingIOError:
            if not select.select([], [flood], [], stall)[1]:
                break
        peak = max(peak, rss_mib(server_pid))
    return sent, peak, flood
