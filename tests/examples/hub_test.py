"""Differential test of the hub example: the same raw RESP scripts go to redis-server and to the
hub, and the reply bytes must be identical. Without redis-server the hub's replies are compared
with bytes recorded from redis-server 7.0.15 (EXPECTED below; `--record` prints them anew), and
the scenario of random commands (LIVE_SCENARIOS) is left out.
Then hub-only checks: limits flags, a slow subscriber, and redis-cli as a client.
Usage: hub_test.py HUB_BINARY [--record]"""
import os, random, select, shutil, socket, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from example_util import start_server, stop_server
from hub_slowloris_test import resp

CLOSED = b"<closed>"

# A scenario is a list of steps (connection index, bytes to send); after each step every
# connection's replies are read.
SCENARIOS = {
    "ping_echo": [(0, b"PING\r\n"), (0, b"*2\r\n$4\r\nPING\r\n$5\r\nhello\r\n"),
                  (0, b"*2\r\n$4\r\necho\r\n$5\r\na\x00\r\nb\r\n"), (0, b"ping ''\r\n")],
    "pipelined_inline": [(0, b"PING\r\nECHO hi\r\n*1\r\n$4\r\nping\r\n\r\n  ping  \"a b\\x41\\n\" \r\n"
                             b"*0\r\necho 'it''s'\r\necho 'x\\'y'\nEcHo \"\\x4g\"\r\n")],
    "split_request": [(0, b"*2\r\n$4\r\nEC"), (0, b"HO\r\n$3\r\nabc\r"), (0, b"\nPI"), (0, b"NG\r\n")],
    "unknown_command": [(0, b"foo a b\r\nFoO\r\n*3\r\n$3\r\nbar\r\n$2\r\na\x00\r\n$1\r\nb\r\n"),
                        (0, b"*3\r\n$3\r\nbaz\r\n$100\r\n" + b"x" * 100 + b"\r\n$100\r\n" +
                         b"y" * 100 + b"\r\n")],
    "wrong_arity": [(0, b"subscribe\r\npsubscribe\r\necho\r\necho a b\r\npublish a\r\nping a b\r\n"
                        b"pubsub\r\npubsub foo\r\npubsub numpat x\r\npubsub channels a b\r\n")],
    "subscribe_publish": [
        (0, b"SUBSCRIBE news\r\n"), (1, b"PUBLISH news hello\r\nPUBLISH other x\r\n"),
        (0, b"SUBSCRIBE weather news\r\nPING\r\nPING m\r\nPUBLISH a b\r\nPUBSUB NUMPAT\r\nfoo\r\n"),
        (1, b"*3\r\n$7\r\npublish\r\n$7\r\nweather\r\n$6\r\n\r\n\x00\xff\r\n\r\n"),
        (0, b"UNSUBSCRIBE news nothere\r\n"),
        (1, b"PUBLISH news x\r\nPUBSUB NUMSUB news weather x\r\nPUBSUB CHANNELS\r\n"
            b"PUBSUB CHANNELS w*\r\nPUBSUB CHANNELS n*\r\nPUBSUB NUMSUB\r\n"),
        (0, b"UNSUBSCRIBE\r\n"), (0, b"UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nPING\r\nPUBSUB NUMSUB weather\r\n")],
    "patterns": [
        (0, b"PSUBSCRIBE n*\r\n"), (1, b"PUBLISH news x\r\nPUBSUB NUMPAT\r\nPUBSUB CHANNELS\r\n"),
        (0, b"SUBSCRIBE news\r\nPSUBSCRIBE n*\r\n"), (2, b"PSUBSCRIBE ?ews h[a-c]llo\r\n"),
        (1, b"PUBLISH news y\r\nPUBLISH hbllo z\r\nPUBSUB NUMPAT\r\n"),
        (0, b"PUNSUBSCRIBE\r\n"), (0, b"UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nPING\r\n"),
        (1, b"PUBLISH news w\r\n")],
    "quit": [(0, b"PING\r\nQUIT\r\nPING\r\n")],
    "quit_subscribed": [(0, b"SUBSCRIBE a\r\nQUIT\r\n"), (1, b"PUBLISH a b\r\n")],
    "bad_bulk_length": [(1, b"PING\r\n"), (0, b"PING\r\n*1\r\n$x\r\n"), (1, b"PING\r\n")],
    "bad_multibulk_length": [(0, b"ECHO a\r\n*a\r\nPING\r\n")],
    "expected_dollar": [(0, b"*1\r\n+PING\r\n")],
    "unbalanced_quotes": [(0, b"echo \"abc\r\n")],
}

def random_pubsub(seed, rounds, count=30):
    """Commands drawn at random, with a fixed seed: connection 0 sends `count` of SUBSCRIBE,
    UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PING and RESET (and commands not allowed while
    subscribed), then connection 1 sends `count` of PUBLISH and PUBSUB, `rounds` times. Left
    out: what redis-server orders by its hash tables (UNSUBSCRIBE without channels, PUBSUB
    CHANNELS matching several, several patterns matching one channel)."""
    rng = random.Random(seed)
    channels = ["c1", "c2", "news.a", "news.b", "x", "[", "news.*"]
    patterns = ["news.*", "c?", "x", "\\[", "c\\"]  # no channel matches two
    pick = rng.choice
    def subscriber():
        return pick([
            lambda: ["SUBSCRIBE"] + rng.sample(channels, rng.randrange(1, 3)),
            lambda: ["UNSUBSCRIBE"] + rng.sample(channels, rng.randrange(1, 3)),
            lambda: ["PSUBSCRIBE", pick(patterns[:3]), pick(patterns[3:])],
            lambda: ["PSUBSCRIBE", pick(patterns)],
            lambda: ["PUNSUBSCRIBE"] + rng.sample(patterns, rng.randrange(1, 3)),
            lambda: ["PING"] + [pick(["a", ""])] * rng.randrange(2),
            lambda: ["RESET"],
            lambda: [pick(["RESET", "ECHO", "GET", "PUBLISH", "PUBSUB", "ping"]), "k"],
        ])()
    def publisher():
        publish = lambda: ["PUBLISH", pick(channels), pick(["m", "", "hello world"])]
        return pick([
            publish, publish,  # drawn twice as often as each of the others
            lambda: ["PUBSUB", "NUMSUB"] + [pick(channels) for _ in range(rng.randrange(3))],
            lambda: ["PUBSUB", "NUMPAT"],
            lambda: ["PUBSUB", "CHANNELS", pick(["x", "c1", "news.a", "nomatch*"])],
            lambda: ["PUBSUB", pick(["numsub", "Channels", "nosuch", "NUMPAT"]), "x"],
        ])()
    steps = []
    for _ in range(rounds):
        steps.append((0, b"".join(resp(*subscriber()) for _ in range(count))))
        steps.append((1, b"".join(resp(*publisher()) for _ in range(count))))
    return steps

# Compared only against a live redis-server (too long to record).
LIVE_SCENARIOS = {"random_pubsub": random_pubsub(7, 12)}

def plain(port):
    """A plaintext connection to 127.0.0.1:port (the runners' `connect`; hub_tls_test.py passes
    one that speaks TLS)."""
    return socket.create_connection(("127.0.0.1", port))

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def read(conn, want=None, expect_close=False, timeout=5.0, idle=0.3):
    """Reads until `want` bytes (and the close, if expected) arrive, or, with want=None, until
    the connection is idle for `idle` seconds. Appends CLOSED when the peer closed."""
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if want is not None and len(data) >= want and not expect_close:
            break
        conn.settimeout(idle if want is None else max(deadline - time.monotonic(), 0.01))
        try:
            chunk = conn.recv(65536)
        except socket.timeout:
            if want is None:
                break
            continue
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return data + CLOSED
        data += chunk
    return data

class Blocked:
    """A step that waits until the server counts `count` blocked clients (INFO's
    blocked_clients): a connection closed before it is gone from the server's view."""
    def __init__(self, count):
        self.count = count

    def wait(self, port, timeout=5.0, connect=plain):
        deadline = time.monotonic() + timeout
        with connect(port) as conn:
            while time.monotonic() < deadline:
                conn.sendall(b"INFO clients\r\n")
                info = b""
                while not (info.startswith(b"$") and b"\r\n" in info and
                           len(info) >= info.index(b"\r\n") + 2 + int(info[1:info.index(b"\r\n")]) + 2):
                    chunk = conn.recv(65536)
                    if not chunk:
                        raise SystemExit("INFO: connection closed")
                    info += chunk
                if b"\r\nblocked_clients:%d\r\n" % self.count in info:
                    return
                time.sleep(0.01)
        raise SystemExit(f"the server did not reach {self.count} blocked clients")

def run(port, steps, expected=None, idle=0.3, connect=plain):
    """Runs one scenario; returns the replies per step and connection. A step whose bytes are
    None closes that connection; one with Blocked(n) waits for n blocked clients."""
    conns = [connect(port) for _ in range(1 + max(c for c, _ in steps))]
    closed, out = set(), []
    try:
        for k, (index, data) in enumerate(steps):
            if isinstance(data, Blocked):
                data.wait(port, connect=connect)
            elif data is None:
                conns[index].close()
                closed.add(index)
            elif index not in closed:
                conns[index].sendall(data)
            replies = []
            for i, conn in enumerate(conns):
                if i in closed:
                    replies.append(b"")
                    continue
                if expected is None:
                    got = read(conn, idle=idle)
                else:
                    want = expected[k][i]
                    got = read(conn, len(want) - (len(CLOSED) if want.endswith(CLOSED) else 0),
                               want.endswith(CLOSED))
                if got.endswith(CLOSED):
                    closed.add(i)
                replies.append(got)
            out.append(replies)
    finally:
        for conn in conns:
            conn.close()
    return out

# Recorded from redis-server 7.0.15 with --record.
EXPECTED = {'bad_bulk_length': [[b'', b'+PONG\r\n'],
                     [b'+PONG\r\n-ERR Protocol error: invalid bulk length\r\n<closed>', b''],
                     [b'', b'+PONG\r\n']],
 'bad_multibulk_length': [[b'$1\r\na\r\n-ERR Protocol error: invalid multibulk length\r\n<close'
                           b'd>']],
 'expected_dollar': [[b"-ERR Protocol error: expected '$', got '+'\r\n<closed>"]],
 'patterns': [[b'*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n', b'', b''],
              [b'*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$1\r\nx\r\n',
               b':1\r\n:1\r\n*0\r\n', b''],
              [b'*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:2\r\n*3\r\n$10\r\npsubscribe\r\n$2\r\nn*'
               b'\r\n:2\r\n',
               b'', b''],
              [b'', b'',
               b'*3\r\n$10\r\npsubscribe\r\n$4\r\n?ews\r\n:1\r\n*3\r\n$10\r\npsubscribe\r\n$9\r\n'
               b'h[a-c]llo\r\n:2\r\n'],
              [b'*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$1\r\ny\r\n*4\r\n$8\r\npmessage\r\n$2\r\n'
               b'n*\r\n$4\r\nnews\r\n$1\r\ny\r\n',
               b':3\r\n:1\r\n:3\r\n',
               b'*4\r\n$8\r\npmessage\r\n$4\r\n?ews\r\n$4\r\nnews\r\n$1\r\ny\r\n*4\r\n$8\r\npmessag'
               b'e\r\n$9\r\nh[a-c]llo\r\n$5\r\nhbllo\r\n$1\r\nz\r\n'],
              [b'*3\r\n$12\r\npunsubscribe\r\n$2\r\nn*\r\n:1\r\n', b'', b''],
              [b'*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n*3\r\n$12\r\npunsubscribe\r\n$'
               b'-1\r\n:0\r\n+PONG\r\n',
               b'', b''],
              [b'', b':1\r\n', b'*4\r\n$8\r\npmessage\r\n$4\r\n?ews\r\n$4\r\nnews\r\n$1\r\nw\r\n']],
 'ping_echo': [[b'+PONG\r\n'], [b'$5\r\nhello\r\n'], [b'$5\r\na\x00\r\nb\r\n'], [b'$0\r\n\r\n']],
 'pipelined_inline': [[b'+PONG\r\n$2\r\nhi\r\n+PONG\r\n$5\r\na bA\n\r\n-ERR Protocol error: unbala'
                       b'nced quotes in request\r\n<closed>']],
 'quit': [[b'+PONG\r\n+OK\r\n<closed>']],
 'quit_subscribed': [[b'*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n+OK\r\n<closed>', b''],
                     [b'', b':0\r\n']],
 'split_request': [[b''], [b''], [b'$3\r\nabc\r\n'], [b'+PONG\r\n']],
 'subscribe_publish': [[b'*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n', b''],
                       [b'*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n', b':1\r\n:0\r\n'],
                       [b'*3\r\n$9\r\nsubscribe\r\n$7\r\nweather\r\n:2\r\n*3\r\n$9\r\nsubscrib'
                        b'e\r\n$4\r\nnews\r\n:2\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npon'
                        b"g\r\n$1\r\nm\r\n-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P"
                        b'|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n-E'
                        b"RR Can't execute 'pubsub|numpat': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE"
                        b' / PING / QUIT / RESET are allowed in this context\r\n-ERR unknown com'
                        b"mand 'foo', with args beginning with: \r\n",
                        b''],
                       [b'*3\r\n$7\r\nmessage\r\n$7\r\nweather\r\n$6\r\n\r\n\x00\xff\r\n\r\n',
                        b':1\r\n'],
                       [b'*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n*3\r\n$11\r\nunsubscribe'
                        b'\r\n$7\r\nnothere\r\n:1\r\n',
                        b''],
                       [b'',
                        b':0\r\n*6\r\n$4\r\nnews\r\n:0\r\n$7\r\nweather\r\n:1\r\n$1\r\nx\r\n:0'
                        b'\r\n*1\r\n$7\r\nweather\r\n*1\r\n$7\r\nweather\r\n*0\r\n*0\r\n'],
                       [b'*3\r\n$11\r\nunsubscribe\r\n$7\r\nweather\r\n:0\r\n', b''],
                       [b'*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n*3\r\n$12\r\npunsubscribe\r\n$-'
                        b'1\r\n:0\r\n+PONG\r\n*2\r\n$7\r\nweather\r\n:0\r\n',
                        b'']],
 'unbalanced_quotes': [[b'-ERR Protocol error: unbalanced quotes in request\r\n<closed>']],
 'unknown_command': [[b"-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n-ERR unk"
                      b"nown command 'FoO', with args beginning with: \r\n-ERR unknown command 'ba"
                      b"r', with args beginning with: 'a' 'b' \r\n"],
                     [b"-ERR unknown command 'baz', with args beginning with: 'xxxxxxxxxxxxxxxxx"
                      b'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'
                      b"xxxxxxxxxxx' 'yyyyyyyyyyyyyyyyyyyyyyyyy' \r\n"]],
 'wrong_arity': [[b"-ERR wrong number of arguments for 'subscribe' command\r\n-ERR wrong number of"
                  b" arguments for 'psubscribe' command\r\n-ERR wrong number of arguments for 'ech"
                  b"o' command\r\n-ERR wrong number of arguments for 'echo' command\r\n-ERR wron"
                  b"g number of arguments for 'publish' command\r\n-ERR wrong number of arguments "
                  b"for 'ping' command\r\n-ERR wrong number of arguments for 'pubsub' command\r"
                  b"\n-ERR unknown subcommand 'foo'. Try PUBSUB HELP.\r\n-ERR wrong number of argum"
                  b"ents for 'pubsub|numpat' command\r\n-ERR unknown subcommand or wrong number of"
                  b" arguments for 'channels'. Try PUBSUB HELP.\r\n"]]}

def compare(port, scenarios, expected, runner=run, same=lambda name, a, b: a == b):
    """Runs the scenarios against the server at `port`; returns how many differ from
    `expected` (by same(name, expected, got)), printing each."""
    failures = 0
    for name, steps in scenarios.items():
        got = runner(port, steps, expected[name])
        if not same(name, expected[name], got):
            failures += 1
            print(f"FAIL {name}:\n  redis: {expected[name]!r}\n  hub:   {got!r}")
        else:
            print(f"ok   {name}")
    return failures

def start_redis(redis, *args):
    """A redis-server on a free port without persistence (unless `args` say otherwise); returns
    (process, port) once it answers PING (not -LOADING: it has read its files)."""
    for _ in range(5):  # the port may be taken between free_port() and the bind
        port = free_port()
        proc = subprocess.Popen([redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64) == b"+PONG\r\n":
                        return proc, port
            except OSError:
                pass
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    raise SystemExit("redis-server did not start")

def main():
    hub_bin = sys.argv[1]
    record = "--record" in sys.argv
    redis = shutil.which("redis-server")
    expected, failures = {}, 0
    redis_proc = None
    try:
        if redis:
            redis_proc, rport = start_redis(redis)
            for name, steps in {**SCENARIOS, **LIVE_SCENARIOS}.items():
                expected[name] = run(rport, steps)
            recordable = {name: expected[name] for name in SCENARIOS}
            if record:
                print(repr(recordable))
                return
            if EXPECTED is not None and EXPECTED != recordable:
                print("note: redis-server's replies differ from the recorded ones")
        else:
            print("redis-server not found: comparing with replies recorded from redis-server 7.0.15")
            expected = EXPECTED

        hub, host, port = start_server([hub_bin, "--port", "0"])
        try:
            failures += compare(port, SCENARIOS, expected)
            if redis:
                failures += compare(port, LIVE_SCENARIOS, expected)
            failures += redis_cli_checks(port, rport if redis else None)
        finally:
            stop_server(hub)
        # --busy-poll 0: the loop sleeps as soon as it has no work (plain run()), where by
        # default it polls 5 µs first; the replies are the same, and SIGTERM ends it with 0.
        hub, host, port = start_server([hub_bin, "--port", "0", "--busy-poll", "0"])
        try:
            failures += compare(port, SCENARIOS, expected)
        finally:
            stop_server(hub)
    finally:
        if redis_proc:
            redis_proc.kill()
            redis_proc.wait()
    failures += limits_checks(hub_bin) + slow_subscriber_check(hub_bin) + busy_poll_flag(hub_bin)
    if failures:
        raise SystemExit(f"{failures} check(s) failed")
    print("all hub checks passed")

def redis_cli_checks(port, redis_port):
    cli = shutil.which("redis-cli")
    if not cli:
        print("redis-cli not found: skipping its check")
        return 0
    def cli_out(p, *args):
        return subprocess.run([cli, "-p", str(p), *args], capture_output=True, timeout=10).stdout
    failures = 0
    for args, want in [(["PING"], b"PONG\n"), (["PUBLISH", "ch", "hi"], b"0\n"),
                       (["ECHO", "a b"], b"a b\n"), (["PUBSUB", "NUMSUB", "ch"], b"ch\n0\n")]:
        got = cli_out(port, *args)
        ref = cli_out(redis_port, *args) if redis_port else want
        if got != ref:
            failures += 1
            print(f"FAIL redis-cli {args}: hub {got!r}, redis {ref!r}")
    failures += redis_cli_subscriber([cli, "-p", str(port)])
    print("ok   redis-cli" if not failures else "FAIL redis-cli")
    return failures

def redis_cli_subscriber(cli):
    """A redis-cli subscriber receives what a second redis-cli publishes (`cli`: redis-cli and
    its connection flags); returns the number of failures."""
    sub = subprocess.Popen([*cli, "SUBSCRIBE", "ch"], stdout=subprocess.PIPE)
    try:
        deadline, published, out = time.monotonic() + 5, b"", b""
        while time.monotonic() < deadline and published != b"1\n":
            published = subprocess.run([*cli, "PUBLISH", "ch", "hello"], capture_output=True,
                                       timeout=10).stdout
            time.sleep(0.05)
        while b"message\nch\nhello\n" not in out and time.monotonic() < deadline + 5:
            ready, _, _ = select.select([sub.stdout], [], [], 0.1)
            out += os.read(sub.stdout.fileno(), 4096) if ready else b""
        if published != b"1\n" or b"message\nch\nhello\n" not in out:
            print(f"FAIL redis-cli subscriber: {published!r} {out!r}")
            return 1
        return 0
    finally:
        sub.kill()
        sub.wait()

def busy_poll_flag(hub_bin):
    """--busy-poll takes 0 to 1000000 microseconds: anything else is the usage and status 2."""
    failures = 0
    for value in ("-1", "x", "1000001", ""):
        proc = subprocess.run([hub_bin, "--port", "0", "--busy-poll", value], capture_output=True,
                              timeout=10)
        if proc.returncode != 2 or b"usage:" not in proc.stderr or proc.stdout:
            failures += 1
            print(f"FAIL --busy-poll {value!r}: {proc.returncode} {proc.stderr[:80]!r}")
    print("ok   --busy-poll's bad values" if not failures else "FAIL --busy-poll")
    return failures

def limits_checks(hub_bin):
    hub, _, port = start_server([hub_bin, "--port", "0", "--max-bulk", "10", "--max-inline", "16",
                                 "--max-args", "3"])
    failures = 0
    try:
        for data, want in [
                (b"*2\r\n$4\r\necho\r\n$10\r\n0123456789\r\n", b"$10\r\n0123456789\r\n"),
                (b"*2\r\n$4\r\necho\r\n$11\r\n", b"-ERR Protocol error: invalid bulk length\r\n" + CLOSED),
                (b"*4\r\n", b"-ERR Protocol error: invalid multibulk length\r\n" + CLOSED),
                (b"echo " + b"x" * 20, b"-ERR Protocol error: too big inline request\r\n" + CLOSED)]:
            with socket.create_connection(("127.0.0.1", port)) as conn:
                conn.sendall(data)
                got = read(conn, len(want) - (len(CLOSED) if want.endswith(CLOSED) else 0),
                           want.endswith(CLOSED))
                if got != want:
                    failures += 1
                    print(f"FAIL limits {data[:20]!r}: {got!r} != {want!r}")
    finally:
        stop_server(hub)
    print("ok   limits" if not failures else "FAIL limits")
    return failures

def slow_subscriber_check(hub_bin):
    """A subscriber that never reads is disconnected once its queue passes the limit; the
    publisher gets every reply at once and a reading subscriber gets every message."""
    hub, _, port = start_server([hub_bin, "--port", "0", "--max-subscriber-queue", "1000000"])
    failures = 0
    try:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.connect(("127.0.0.1", port))
        fast = socket.create_connection(("127.0.0.1", port))
        pub = socket.create_connection(("127.0.0.1", port))
        for conn in (slow, fast):
            conn.sendall(b"SUBSCRIBE c\r\n")
            read(conn, len(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"))
        payload = b"p" * 65536
        count = 100  # 6.5 MB: far past the limit and any socket buffers
        request = b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$65536\r\n" + payload + b"\r\n"
        push = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$65536\r\n" + payload + b"\r\n"
        received, replies = 0, b""
        for _ in range(count):
            pub.sendall(request)
            while b"\r\n" not in replies:
                replies += read(pub, 1)
            replies = replies[replies.index(b"\r\n") + 2:]
            fast.settimeout(0)
            try:
                while True:
                    chunk = fast.recv(1 << 20)
                    if not chunk:
                        break
                    received += len(chunk)
            except BlockingIOError:
                pass
        fast.settimeout(10)
        while received < count * len(push):
            chunk = fast.recv(1 << 20)
            if not chunk:
                break
            received += len(chunk)
        if received != count * len(push):
            failures += 1
            print(f"FAIL fast subscriber got {received} of {count * len(push)} bytes")
        # The slow subscriber is closed: draining it ends in EOF well short of everything.
        slow_bytes, deadline = 0, time.monotonic() + 10
        slow.settimeout(10)
        while time.monotonic() < deadline:
            try:
                chunk = slow.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                break
            slow_bytes += len(chunk)
        else:
            failures += 1
            print("FAIL slow subscriber was not disconnected")
        if slow_bytes >= count * len(push):
            failures += 1
            print("FAIL slow subscriber received everything")
        pub.sendall(b"PUBLISH c x\r\n")
        if read(pub, 4) != b":1\r\n":
            failures += 1
            print("FAIL the slow subscriber is still counted")
        for conn in (slow, fast, pub):
            conn.close()
    finally:
        stop_server(hub)
    print("ok   slow subscriber" if not failures else "FAIL slow subscriber")
    return failures

if __name__ == "__main__":
    main()
