#!/usr/bin/env python3
"""An example's command line: --help prints the usage and exits 0; an unknown flag, a flag without
its value, or a malformed or out-of-range number prints what is wrong and the usage and exits 2,
before listening or connecting; a server whose port is taken exits 1 with the error, and a
client whose server refuses exits 1 with the error.

usage: command_line_test.py <binary> server|client <flag>=<min>:<max>...
"""
import os, socket, subprocess, sys

binary, kind, numeric = sys.argv[1], sys.argv[2], sys.argv[3:]
name = os.path.basename(binary)

def run(*args):
    # Bounded: an example that wrongly starts listening is killed and the test fails.
    try:
        out = subprocess.run([binary, *args], capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{name} {' '.join(args)}: still running after 10 s")
    return out.returncode, out.stdout.decode(), out.stderr.decode()

def expect_usage_error(args, message):
    status, out, err = run(*args)
    assert status == 2, f"{args}: exit status {status}, stderr {err!r}"
    assert message in err, f"{args}: {message!r} not in stderr {err!r}"
    assert f"usage: {name} " in err, f"{args}: no usage in stderr {err!r}"
    assert out == "", f"{args}: stdout {out!r}"

for flag in ("--help", "-h"):
    status, out, err = run(flag)
    assert status == 0, f"{flag}: exit status {status}"
    assert out.startswith(f"usage: {name} "), f"{flag}: stdout {out!r}"
    assert err == "", f"{flag}: stderr {err!r}"

expect_usage_error(["--no-such-flag", "1"], "unknown option '--no-such-flag'")
expect_usage_error(["--port"], "--port needs a value")
for spec in numeric:
    flag, bounds = spec.split("=")
    low, high = (int(n) for n in bounds.split(":"))
    bad = ["abc", "", "-1", "12x", " 1", "0x10", str(high + 1), "99999999999999999999999"]
    if low > 0:
        bad.append(str(low - 1))
    for value in bad:
        expect_usage_error([flag, value], f"{flag}: '{value}' is not a number from {low} to {high}")

with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))  # a port of ours: listening for a server, refusing for a client
    port = taken.getsockname()[1]
    if kind == "server":
        taken.listen()
        status, out, err = run("--port", str(port), "--host", "127.0.0.1")
        assert status == 1, f"port in use: exit status {status}, stderr {err!r}"
        assert err.startswith(f"{name}: cannot listen on 127.0.0.1:{port}: "), err
    else:
        status, out, err = run("--port", str(port), "--host", "127.0.0.1")
        assert status == 1, f"connection refused: exit status {status}, stderr {err!r}"
        assert err.startswith(f"{name}: ") and "refused" in err, err
    assert out == "", f"stdout {out!r}"
print(f"{name} command line: ok")
