"""The hub over TLS, next to a redis-server started with the same TLS options (Debian's is built
with TLS): the scripts of hub_test.py and hub_lists_test.py sent over TLS to both give the same
bytes; redis-cli --tls gives the same output; --tls-auth-clients yes, optional and no let in and
refuse the same clients (none, one with a certificate of the trusted CA, one with a self-signed
certificate) as redis-server; plaintext sent to the TLS port and a handshake that never comes
close only their own connection. Certificates are made here with `openssl req`; bad TLS flags
exit 2 with the usage. Needs redis-server and openssl: without them the test is skipped (77).
Usage: hub_tls_test.py HUB_BINARY"""
import functools, os, re, select, shutil, socket, ssl, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from example_util import start_server, stop_server
import hub_lists_test, hub_test
from hub_test import CLOSED, compare, free_port, read, redis_cli_subscriber, run, start_redis

def openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

def make_certificates(d):
    """ca.pem; server.pem (localhost and 127.0.0.1) and client.pem signed by it, with their keys;
    stranger.pem, self-signed, which the CA does not vouch for."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
            "-subj", "/CN=hub test CA")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl(d, "req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={'localhost' if name == 'server' else 'hub test client'}")
        openssl(d, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "1",
                *(["-extfile", "san.ext"] if name == "server" else []))
    openssl(d, "req", "-x509", *ec, "-keyout", "stranger.key", "-out", "stranger.pem", "-days",
            "1", "-subj", "/CN=stranger")

def tls_options(d, auth):
    """The same TLS flags for the hub and for redis-server (a free TLS port added by each)."""
    return ["--tls-cert-file", f"{d}/server.pem", "--tls-key-file", f"{d}/server.key",
            "--tls-ca-cert-file", f"{d}/ca.pem", "--tls-auth-clients", auth]

def tls_connect(d, client=None):
    """A `connect` for the runners: TLS to 127.0.0.1:port, trusting ca.pem, checking the name
    localhost, showing client.pem or stranger.pem when `client` names one."""
    context = ssl.create_default_context(cafile=f"{d}/ca.pem")
    if client:
        context.load_cert_chain(f"{d}/{client}.pem", f"{d}/{client}.key")
    def connect(port):
        return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                   server_hostname="localhost")
    return connect

def read_line(proc, timeout=10):
    line, deadline = b"", time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], max(deadline - time.monotonic(), 0))
        byte = os.read(proc.stdout.fileno(), 1) if ready else b""
        if not byte:
            proc.kill()
            raise SystemExit(f"the hub's second line did not come: {line!r}")
        line += byte
    return line

def start_hub(hub_bin, *args):
    """The hub with TLS on a free port: (process, plain port, TLS port). Its first line is the
    plain listener's, as without TLS; the second names the TLS port."""
    proc, _, port = start_server([hub_bin, "--port", "0", "--tls-port", "0", *args])
    line = read_line(proc)
    match = re.fullmatch(rb"listening for TLS on 127\.0\.0\.1:(\d+)\n", line)
    if not match:
        proc.kill()
        raise SystemExit(f"unexpected second line: {line!r}")
    return proc, port, int(match.group(1))

def start_redis_tls(redis, *args):
    """redis-server with a TLS port too: (process, plain port, TLS port)."""
    tls_port = free_port()
    proc, port = start_redis(redis, "--tls-port", str(tls_port), *args)
    return proc, port, tls_port

def stop_redis(proc):
    proc.kill()
    proc.wait()

def expect_exit(argv, status, text):
    result = subprocess.run(argv, capture_output=True, timeout=10)
    output = (result.stdout + result.stderr).decode()
    if result.returncode != status or text not in output:
        print(f"FAIL {argv[1:]}: exit {result.returncode} (wanted {status}), {output!r}")
        return 1
    return 0

def flag_checks(hub_bin, redis, d):
    failures = 0
    cert, key, ca = f"{d}/server.pem", f"{d}/server.key", f"{d}/ca.pem"
    for args, status, text in [
            (["--tls-port", "0"], 2, "--tls-port needs --tls-cert-file and --tls-key-file"),
            (["--tls-port", "0", "--tls-cert-file", cert], 2, "needs --tls-cert-file and"),
            (["--tls-port", "0", "--tls-cert-file", cert, "--tls-key-file", key], 2,
             "--tls-ca-cert-file is required unless --tls-auth-clients no"),
            (["--tls-port", "0", "--tls-cert-file", cert, "--tls-key-file", key,
              "--tls-auth-clients", "optional"], 2, "--tls-ca-cert-file is required"),
            (["--tls-cert-file", cert, "--tls-key-file", key], 2, "need --tls-port"),
            (["--tls-port", "70000"], 2, "bad value '70000' for --tls-port"),
            (["--tls-port", "0", "--tls-auth-clients", "maybe"], 2, "bad value 'maybe'"),
            (["--tls-port", "0", "--tls-cert-file", cert, "--tls-key-file", f"{d}/none.key",
              "--tls-auth-clients", "no"], 1, "cannot read"),
            (["--tls-port", "0", "--tls-cert-file", cert, "--tls-key-file", ca,
              "--tls-auth-clients", "no"], 1, "hub: TLS:")]:
        failures += expect_exit([hub_bin, *args], status, text)
    # Without a CA to check clients against, redis-server refuses to start too.
    failures += expect_exit([redis, "--port", "0", "--tls-port", str(free_port()), "--save", "",
                             "--tls-cert-file", cert, "--tls-key-file", key], 1,
                            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified")
    print("ok   TLS flags" if not failures else "FAIL TLS flags")
    return failures

def differential(hub_bin, redis, d):
    """Every scenario of hub_test.py and hub_lists_test.py over TLS: the hub's bytes are
    redis-server's."""
    connect = tls_connect(d)
    runner = functools.partial(run, connect=connect)
    fresh = functools.partial(hub_lists_test.run_fresh, connect=connect)
    redis_proc, _, redis_tls = start_redis_tls(redis, *tls_options(d, "no"))
    try:
        expected = {name: runner(redis_tls, steps) for name, steps in hub_test.SCENARIOS.items()}
        expected_lists = {
            name: fresh(redis_tls, steps, idle=1.0 if name in hub_lists_test.TIMED else 0.3)
            for name, steps in hub_lists_test.SCENARIOS.items()}
    finally:
        stop_redis(redis_proc)
    hub, _, hub_tls = start_hub(hub_bin, *tls_options(d, "no"))
    try:
        failures = compare(hub_tls, hub_test.SCENARIOS, expected, runner)
        failures += compare(hub_tls, hub_lists_test.SCENARIOS, expected_lists, fresh,
                            hub_lists_test.same)
    finally:
        stop_server(hub)
    return failures

def redis_cli(port, d, *args, client=None):
    cli = ["redis-cli", "-p", str(port), "--tls", "--cacert", f"{d}/ca.pem"]
    if client:
        cli += ["--cert", f"{d}/{client}.pem", "--key", f"{d}/{client}.key"]
    result = subprocess.run([*cli, *args], capture_output=True, timeout=10)
    return result.returncode, result.stdout + result.stderr

def ping(connect, port):
    """'PONG' if a client that connects this way is served, else how it was refused."""
    try:
        with connect(port) as conn:
            conn.sendall(b"PING\r\n")
            got = read(conn, 7, timeout=5)
            return "PONG" if got == b"+PONG\r\n" else f"refused ({got!r})"
    except (ssl.SSLError, OSError) as e:  # the alert, or the reset after it
        return f"refused ({type(e).__name__})"

def client_auth(hub_bin, redis, d):
    """--tls-auth-clients: the same clients let in and refused as by redis-server, with Python's
    ssl and with redis-cli; the hub serves on after each refusal."""
    want = {"yes": ["refused", "PONG", "refused"], "optional": ["PONG", "PONG", "refused"],
            "no": ["PONG", "PONG", "PONG"]}
    clients = [None, "client", "stranger"]
    failures = 0
    for auth, expected in want.items():
        redis_proc, _, redis_tls = start_redis_tls(redis, *tls_options(d, auth))
        hub, _, hub_tls = start_hub(hub_bin, *tls_options(d, auth))
        try:
            kept = tls_connect(d, "client")(hub_tls)  # served before and after the refusals
            for client, outcome in zip(clients, expected):
                got = {name: (ping(tls_connect(d, client), port),
                              redis_cli(port, d, "PING", client=client))
                       for name, port in (("hub", hub_tls), ("redis", redis_tls))}
                (hub_ping, (hub_status, hub_out)), (redis_ping, (redis_status, redis_out)) = \
                    got["hub"], got["redis"]
                if (not hub_ping.startswith(outcome) or not redis_ping.startswith(outcome) or
                        hub_status != redis_status or (hub_status == 0) != (outcome == "PONG") or
                        (outcome == "PONG" and hub_out != redis_out)):
                    failures += 1
                    print(f"FAIL --tls-auth-clients {auth}, client {client}: wanted {outcome}; "
                          f"hub {hub_ping}, redis-cli {hub_status} {hub_out!r}; redis-server "
                          f"{redis_ping}, redis-cli {redis_status} {redis_out!r}")
            kept.sendall(b"PING\r\n")
            if read(kept, 7) != b"+PONG\r\n":
                failures += 1
                print(f"FAIL --tls-auth-clients {auth}: a client served before is not any more")
            kept.close()
        finally:
            stop_redis(redis_proc)
            stop_server(hub)
        if auth != "no" and b"TLS handshake failed" not in hub.stderr.read():
            failures += 1
            print(f"FAIL --tls-auth-clients {auth}: no refusal logged")
    print("ok   --tls-auth-clients yes|optional|no" if not failures else
          "FAIL --tls-auth-clients")
    return failures

def redis_cli_checks(hub_bin, redis, d):
    """redis-cli --tls --cacert (and a client certificate, as the default yes wants): the same
    output from the hub as from redis-server; the README's example among them."""
    failures = 0
    redis_proc, _, redis_tls = start_redis_tls(redis, *tls_options(d, "yes"))
    hub, _, hub_tls = start_hub(hub_bin, *tls_options(d, "yes"))
    try:
        for args in (["PING"], ["ECHO", "over tls"], ["RPUSH", "jobs", "a", "b"],
                     ["LRANGE", "jobs", "0", "-1"], ["PUBLISH", "news", "hi"], ["LPOP", "jobs", "5"],
                     ["BLPOP", "jobs", "0.05"], ["NOSUCH", "x"]):
            got = redis_cli(hub_tls, d, *args, client="client")
            ref = redis_cli(redis_tls, d, *args, client="client")
            if got != ref:
                failures += 1
                print(f"FAIL redis-cli --tls {args}: hub {got!r}, redis-server {ref!r}")
        failures += redis_cli_subscriber(
            ["redis-cli", "-p", str(hub_tls), "--tls", "--cacert", f"{d}/ca.pem", "--cert",
             f"{d}/client.pem", "--key", f"{d}/client.key"])
    finally:
        stop_redis(redis_proc)
        stop_server(hub)
    print("ok   redis-cli --tls" if not failures else "FAIL redis-cli --tls")
    return failures

def bad_clients(hub_bin, d):
    """Plaintext sent to the TLS port, and a client that never starts its handshake: only that
    connection closes (the handshake at --request-timeout); TLS and plain clients go on."""
    failures = 0
    hub, port, tls_port = start_hub(hub_bin, *tls_options(d, "no"), "--request-timeout", "300")
    try:
        connect = tls_connect(d)
        good = connect(tls_port)
        good.sendall(b"PING\r\n")
        first = read(good, 7)
        with socket.create_connection(("127.0.0.1", tls_port)) as plaintext, \
             socket.create_connection(("127.0.0.1", tls_port)) as silent:
            plaintext.sendall(b"PING\r\n*1\r\n$4\r\nPING\r\n")
            cut = read(plaintext, 0, expect_close=True, timeout=5)
            started = time.monotonic()
            quiet = read(silent, 0, expect_close=True, timeout=5)
            waited = time.monotonic() - started
        good.sendall(b"ECHO still\r\n")
        after = read(good, 11)
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(b"PING\r\n")
            plain = read(conn, 7)
        with connect(tls_port) as conn:
            conn.sendall(b"PING\r\n")
            fresh = read(conn, 7)
        good.close()
        checks = [(first == b"+PONG\r\n", f"TLS client before: {first!r}"),
                  (cut.endswith(CLOSED) and b"PONG" not in cut, f"plaintext client: {cut!r}"),
                  (quiet == CLOSED and waited < 3, f"silent client: {quiet!r} after {waited:.1f}s"),
                  (after == b"$5\r\nstill\r\n", f"TLS client after: {after!r}"),
                  (plain == b"+PONG\r\n", f"plain client: {plain!r}"),
                  (fresh == b"+PONG\r\n", f"new TLS client: {fresh!r}")]
        for ok, what in checks:
            if not ok:
                failures += 1
                print(f"FAIL bad clients: {what}")
    finally:
        stop_server(hub)
    log = hub.stderr.read()
    if b"TLS handshake failed" not in log or b"TLS handshake timeout" not in log:
        failures += 1
        print(f"FAIL bad clients: the hub's log {log!r}")
    print("ok   plaintext and silent clients on the TLS port" if not failures else
          "FAIL bad clients")
    return failures

def main():
    hub_bin = sys.argv[1]
    redis = shutil.which("redis-server")
    missing = [tool for tool in ("redis-server", "redis-cli", "openssl") if not shutil.which(tool)]
    if missing:
        print(f"skipped: {', '.join(missing)} not installed (.ci/run installs them)")
        raise SystemExit(77)
    with tempfile.TemporaryDirectory() as d:
        make_certificates(d)
        failures = flag_checks(hub_bin, redis, d)
        failures += bad_clients(hub_bin, d)
        failures += client_auth(hub_bin, redis, d)
        failures += redis_cli_checks(hub_bin, redis, d)
        failures += differential(hub_bin, redis, d)
    if failures:
        raise SystemExit(f"{failures} TLS check(s) failed")
    print("all hub TLS checks passed")

if __name__ == "__main__":
    main()
