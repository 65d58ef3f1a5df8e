#!/usr/bin/env python3
"""Runs chat_server on port 0 with three socket clients: nickname handshake, broadcast to the
others and not to the sender, join/leave notices, /nick, /quit, \\r\\n and \\n, lines split
across reads and several per read, an over-long line that gets "! line too long" while the
connection continues, and a client that never reads its answers staying paused and small.
Then SIGTERM with a client still connected: exit status 0."""
import socket, sys, time

from example_util import send_without_reading, start_server, stop_server

MAX_LINE = 100

class Client:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data)
        time.sleep(0.05)  # let the server read it as a separate chunk

    def line(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed; unfinished line {self.buffer!r}"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def expect(self, *lines):
        for want in lines:
            got = self.line()
            assert got == want, f"expected {want!r}, got {got!r}"

    def expect_eof(self):
        assert self.buffer == b"", self.buffer
        assert self.sock.recv(65536) == b"", "expected the server to close"

    def expect_silence(self, seconds=0.3):
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
            raise AssertionError(f"expected nothing, got {self.buffer + data!r}")
        except socket.timeout:
            pass
        finally:
            self.sock.settimeout(10)
        assert self.buffer == b"", self.buffer

GREETING = "* welcome to evnet chat; your nickname?"

server, host, port = start_server([sys.argv[1], "--port", "0", "--host", "127.0.0.1",
                                   "--max-line", str(MAX_LINE)])
try:
    ann = Client(host, port)
    ann.expect(GREETING)
    ann.send(b"ann\r\n")
    ann.expect("* welcome ann, 1 online")

    bob = Client(host, port)
    bob.expect(GREETING)
    bob.send(b"bo")  # a nickname split across reads
    bob.send(b"b\n")
    bob.expect("* welcome bob, 2 online")
    ann.expect("* bob joined")

    cid = Client(host, port)
    cid.expect(GREETING)
    cid.send(b"ann\n")
    cid.expect("! that nickname is taken")
    cid.send(b"two words\n")
    cid.expect("! a nickname is 1 to 32 characters, no spaces")
    cid.send(b"cid\n")
    cid.expect("* welcome cid, 3 online")
    ann.expect("* cid joined")
    bob.expect("* cid joined")

    # Several lines in one read, \r\n and \n, and a line split across reads; the sender hears none.
    ann.send(b"hello\r\nsecond line\nthi")
    ann.send(b"rd\r")
    ann.send(b"\n")
    for other in (bob, cid):
        other.expect("ann: hello", "ann: second line", "ann: third")
    ann.expect_silence()

    # Over-long lines: in one read, and across reads without a newline; one error each, the
    # connection continues, and a line of exactly the limit still passes.
    bob.send(b"x" * (MAX_LINE + 1) + b"\n")
    bob.expect("! line too long")
    bob.send(b"y" * 60)
    bob.send(b"y" * 60)
    bob.send(b"y" * 500)
    bob.send(b"y\r\nstill here\n")
    bob.expect("! line too long")
    bob.send(b"z" * MAX_LINE + b"\r\n")
    for other in (ann, cid):
        other.expect("bob: still here", "bob: " + "z" * MAX_LINE)
    bob.expect_silence()

    # Unknown commands, empty lines, /nick.
    cid.send(b"/dance\n\n")
    cid.expect("! unknown command; try /nick NAME or /quit")
    cid.send(b"/nick bob\n")
    cid.expect("! that nickname is taken")
    cid.send(b"/nick cat\n")
    cid.expect("* you are now cat")
    ann.expect("* cid is now cat")
    bob.expect("* cid is now cat")
    cid.send(b"meow\n")
    ann.expect("cat: meow")
    bob.expect("cat: meow")

    # /quit: a goodbye, the server closes, the others hear it; the rest of the read is ignored.
    cid.send(b"/quit\nignored\n")
    cid.expect("* bye")
    cid.expect_eof()
    ann.expect("* cat left")
    bob.expect("* cat left")

    # A client that just disconnects leaves too.
    bob.sock.close()
    ann.expect("* bob left")
    ann.send(b"anyone?\n")
    ann.expect_silence()
    # A new member can take a nickname that was freed.
    dan = Client(host, port)
    dan.expect(GREETING)
    dan.send(b"bob\n")
    dan.expect("* welcome bob, 2 online")
    ann.expect("* bob joined")

    # A client that sends lines and never reads the answers ("! a nickname is ..." for each
    # " \n") is paused while they are queued: the server stays small, the others go on.
    sent, peak, flood = send_without_reading(host, port, b" \n" * (1 << 19), server.pid)
    with flood:
        assert sent < 128 << 20, f"the server read {sent >> 20} MiB from a client that never reads"
        assert peak <= 128, f"the server grew to {peak:.0f} MiB"
        ann.send(b"still here\n")
        dan.expect("ann: still here")
finally:
    stop_server(server)  # ann and dan still connected
ann.expect_eof()
print("chat_server: ok")
