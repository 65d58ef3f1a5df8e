"""Differential test of the hub's lists, keys, blocking pops and RESET: the same raw RESP scripts
go to a redis-server started here and to the hub, and the reply bytes must be identical (see
hub_test.py for the runner). Needs redis-server: without it the test is skipped (exit 77).
Usage: hub_lists_test.py HUB_BINARY"""
import os, random, shutil, socket, struct, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from example_util import start_server, stop_server
from hub_test import Blocked, compare, plain, read, run, start_redis
from hub_slowloris_test import resp as cmd

def lines(*requests):
    return b"".join(r.encode() + b"\r\n" for r in requests)

# A scenario is a list of steps (connection, bytes to send, or None to close the connection);
# after each step every connection's replies are read until it is idle.
SCENARIOS = {
    "push_pop": [(0, lines(
        "LPUSH l a b c", "RPUSH l d e", "LRANGE l 0 -1", "LLEN l", "LPOP l", "RPOP l",
        "LPOP l 2", "RPOP l 0", "LRANGE l 0 -1", "RPOP l 5", "EXISTS l", "LPOP l", "LPOP l 3",
        "RPOP nokey", "RPOP nokey 0", "LLEN nokey", "TYPE l", "DBSIZE"))],
    "pop_count_errors": [(0, lines(
        "RPUSH l a b", "LPOP l -1", "LPOP l x", "RPOP l 1.5", "LPOP l 9223372036854775808",
        "LPOP l 9223372036854775807", "LPOP l 1 2", "LPOP nokey x", "SET s v", "LPOP s x",
        "LPOP s", "RPOP s 0"))],
    "lrange_lindex": [(0, lines(
        "RPUSH l a b c d e", "LRANGE l 0 0", "LRANGE l -2 -1", "LRANGE l -100 100",
        "LRANGE l 3 1", "LRANGE l 5 10", "LRANGE l -1 -5", "LRANGE l 1 -1",
        "LRANGE l -9223372036854775808 9223372036854775807", "LRANGE l x 1", "LRANGE l 0 1.0",
        "LRANGE l 0 99999999999999999999", "LRANGE nokey 0 -1", "LRANGE nokey x 1",
        "LINDEX l 0", "LINDEX l -1", "LINDEX l 4", "LINDEX l 5", "LINDEX l -6",
        "LINDEX l -9223372036854775808", "LINDEX l x", "LINDEX nokey x", "LINDEX nokey 0",
        "SET s v", "LRANGE s 0 -1", "LRANGE s x 0", "LINDEX s x", "LINDEX s 0", "LLEN s"))],
    "lrem": [(0, lines(
        "RPUSH l 1 2 3 1 2 1 1", "LREM l 2 1", "LRANGE l 0 -1", "LREM l -1 1", "LRANGE l 0 -1",
        "LREM l 0 2", "LRANGE l 0 -1", "LREM l 0 zz", "LREM l x 1", "LREM l -0 1",
        "LREM nokey 0 a", "LREM nokey x a", "LREM l 0 1", "LREM l 0 3", "EXISTS l",
        "SET s v", "LREM s 0 v", "LREM s x v"))],
    "lmove": [(0, lines(
        "RPUSH src a b c", "LMOVE src dst LEFT RIGHT", "LMOVE src dst right left",
        "LRANGE src 0 -1", "LRANGE dst 0 -1", "LMOVE src src left right", "LMOVE dst dst RIGHT LEFT",
        "LRANGE dst 0 -1", "LMOVE src dst left up", "LMOVE src dst x left", "LMOVE nokey dst left left",
        "SET s v", "LMOVE src s left left", "LMOVE s dst left left", "LMOVE nokey s left left",
        "LMOVE src dst left left", "EXISTS src", "LRANGE dst 0 -1", "LMOVE dst dst left left",
        "LRANGE dst 0 -1", "LMOVE a b c", "LMOVE a b c d e"))],
    "keys": [(0, lines(
        "RPUSH q1 x", "RPUSH q2 y", "SET s v", "DBSIZE", "EXISTS q1 q1 q2 nokey", "TYPE q1",
        "TYPE s", "TYPE nokey", "KEYS q1", "KEYS s*", "KEYS nomatch*", "KEYS q[2]", "DEL q1 q1 nokey",
        "DBSIZE", "DEL q2 s", "DBSIZE", "KEYS *", "GET s", "SET s v2", "GET s", "SET s v3 NX",
        "SET s v4 XX", "GET s", "SET n v NX", "SET m v XX", "SET s v5 GET", "SET s v6 NX XX",
        "SET s v6 EXTRA", "RPUSH l a", "GET l", "SET l v GET", "SET l v", "TYPE l"))],
    "binary_values": [(0, cmd("RPUSH", b"k\x00\r\n", b"", b"\xff\x00", b"a" * 1000) +
                          cmd("LRANGE", b"k\x00\r\n", "0", "-1") + cmd("KEYS", b"k*") +
                          cmd("LPOP", b"k\x00\r\n", "4") + cmd("EXISTS", b"k\x00\r\n"))],
    "wrong_arity": [(0, lines(
        "LPUSH", "LPUSH l", "RPUSH l", "LPOP", "RPOP", "LLEN", "LLEN a b", "LRANGE l 0",
        "LINDEX l", "LREM l 0", "LMOVE a b left", "BLPOP", "BLPOP l", "BRPOP l", "BLMOVE a b left left",
        "DEL", "EXISTS", "TYPE", "TYPE a b", "KEYS", "KEYS a b", "DBSIZE x", "GET", "SET a",
        "RESET x", "lPuSh", "FLUSHALL a b", "FLUSHALL now", "FLUSHDB sync", "DBSIZE"))],
    "timeout_arguments": [(0, lines(
        "BLPOP q x", "BLPOP q -1", "BLPOP q -0.5", "BLPOP q 1e400", "BLPOP q inf", "BLPOP q -inf",
        "BLPOP q nan", "BLPOP q 1e-5000", "BLPOP q \" 1\"", "BLPOP q \"1 \"", "BLPOP q \"\"",
        "BLPOP q 9223372036854776", "BRPOP q x", "BLMOVE a b left left x", "BLMOVE a b up left 0",
        "BLMOVE a b left up x", "BLPOP q 0.05", "BRPOP q .05", "BLMOVE q d left left +0.05",
        "BLPOP q 0x0.1p-4"))],
    "blocking_immediate": [(0, lines(
        "RPUSH a 1 2", "BLPOP nokey a 0", "BRPOP a 0", "EXISTS a", "RPUSH a 3", "SET s v",
        "BLPOP s a 0", "BLPOP a s 0", "BLPOP s 0", "RPUSH a 4", "BLMOVE a b right left 0",
        "LRANGE b 0 -1", "BLMOVE s b left left 0", "BLMOVE b s left left 0", "BLMOVE nokey s left left 0.01",
        "BLMOVE b b left right 0"))],
    "fifo": [(0, b"BLPOP q 0\r\n"), (0, Blocked(1)), (1, b"BRPOP q other 0\r\n"), (1, Blocked(2)),
             (2, b"BLPOP q 0\r\n"), (2, Blocked(3)), (3, b"RPUSH q a b\r\nLRANGE q 0 -1\r\n"),
             (3, b"RPUSH other c\r\nLPUSH q d e\r\n"),
             (3, b"LLEN q\r\nLLEN other\r\nLRANGE q 0 -1\r\n")],
    "several_keys": [(0, b"BLPOP k1 k2 k1 0\r\n"), (0, Blocked(1)), (1, b"RPUSH k2 x y\r\n"),
                     (0, b"BRPOP k1 k2 0\r\n"), (1, b"RPUSH k1 z\r\nDBSIZE\r\n")],
    "pipelined_after_block": [(0, b"BLPOP q 0\r\nPING\r\nLLEN q\r\n"), (0, Blocked(1)),
                              (1, b"LPUSH q a b\r\n"), (0, b"ECHO next\r\n")],
    "push_then_pop_in_one_pipeline": [(0, b"BLPOP q 0\r\n"), (0, Blocked(1)),
                                      (1, b"RPUSH q a\r\nLPOP q\r\nLLEN q\r\n")],
    "blmove_chain": [(0, b"BLMOVE jobs processing LEFT RIGHT 0\r\n"), (0, Blocked(1)),
                     (1, b"BLPOP processing 0\r\n"), (1, Blocked(2)), (2, b"RPUSH jobs j1 j2\r\n"),
                     (2, b"LRANGE jobs 0 -1\r\nLRANGE processing 0 -1\r\n")],
    "blmove_wrong_destination": [(0, b"BLMOVE src dst LEFT LEFT 0\r\n"), (0, Blocked(1)),
                                 (1, b"SET dst v\r\nRPUSH src x\r\nLRANGE src 0 -1\r\n")],
    "timeout_leaves_no_trace": [(0, b"BLPOP q 0.1\r\n"), (1, b"BRPOP q 0.05\r\n"),
                                (0, b"BLMOVE q r left left 0.1\r\n"),
                                (2, b"RPUSH q a\r\nLLEN q\r\nLLEN r\r\n")],
    "disconnect_leaves_no_trace": [(0, b"BLPOP q 0\r\n"), (0, Blocked(1)),
                                   (1, b"BLMOVE q r LEFT LEFT 0\r\n"), (1, Blocked(2)),
                                   (0, None), (1, None), (2, Blocked(0)), (2, b"RPUSH q a\r\nLLEN q\r\nEXISTS r\r\n")],
    "reset": [(0, b"SUBSCRIBE c\r\nPSUBSCRIBE p*\r\nRESET\r\nPING\r\n"),
              (1, b"PUBLISH c x\r\nPUBLISH pp y\r\nPUBSUB NUMPAT\r\nRESET\r\nRPUSH l a\r\n")],
    "subscribed_context": [(0, b"SUBSCRIBE c\r\nLPUSH l a\r\nBLPOP l 0\r\nGET k\r\nKEYS *\r\n"
                               b"DBSIZE\r\nLPUSH\r\nnosuch\r\nRESET\r\nLPUSH l a\r\n")],
}

def random_commands(seed, count):
    """`count` commands drawn from the list and key commands with arguments good and bad, over
    four keys, one of them a string: one pipeline whose replies, every one, must match. KEYS
    patterns match one key at most (redis-server lists several in its hash table's order)."""
    rng = random.Random(seed)
    keys, values = ["a", "b", "c", "s"], ["x", "y", "1", "", "xx"]
    numbers = ["0", "1", "-1", "2", "-2", "3", "10", "-10", "x", "1.5", "-0", "+1", "007", " 1",
               "9223372036854775807", "-9223372036854775808", "9223372036854775808"]
    sides = ["LEFT", "RIGHT", "left", "Right", "up"]
    pick = rng.choice
    def one():
        k = pick(keys)
        return pick([
            lambda: ["LPUSH", k] + [pick(values) for _ in range(rng.randrange(1, 4))],
            lambda: ["RPUSH", k] + [pick(values) for _ in range(rng.randrange(1, 4))],
            lambda: [pick(["LPOP", "RPOP"]), k] + [pick(numbers)] * rng.randrange(2),
            lambda: ["LLEN", k],
            lambda: ["LRANGE", k, pick(numbers), pick(numbers)],
            lambda: ["LINDEX", k, pick(numbers)],
            lambda: ["LREM", k, pick(numbers), pick(values)],
            lambda: ["LMOVE", k, pick(keys), pick(sides), pick(sides)],
            lambda: ["DEL"] + rng.sample(keys, rng.randrange(1, 3)),
            lambda: ["EXISTS"] + [pick(keys) for _ in range(rng.randrange(1, 3))],
            lambda: ["TYPE", k],
            lambda: ["KEYS", pick(["a", "s", "?x", "b*", "[c]", "\\a", "nomatch*"])],
            lambda: ["DBSIZE"],
            lambda: ["SET", "s", pick(values)] + [pick(["NX", "XX", "GET"])] * rng.randrange(2),
            lambda: ["GET", k],
        ])()
    def blocking():  # returns at once when a key has elements, else after 10 ms
        k = pick(keys)
        return pick([[pick(["BLPOP", "BRPOP"]), k, pick(keys), "0.01"],
                     ["BLMOVE", k, pick(keys), pick(sides[:2]), pick(sides[:2]), "0.01"]])
    return b"".join(cmd(*(blocking() if rng.random() < 0.03 else one())) for _ in range(count))

SCENARIOS["random_pipeline"] = [(0, random_commands(15, 2000))]

# Scenarios whose replies wait for a timer: redis-server's replies are read with more patience,
# and compared per connection whatever step they came in (a loaded machine may delay a timer
# past one step's reading).
TIMED = {"timeout_arguments", "timeout_leaves_no_trace"}

def same(name, expected, got):
    if name not in TIMED:
        return expected == got
    per_connection = lambda replies: [b"".join(step[i] for step in replies) for i in range(len(replies[0]))]
    return per_connection(expected) == per_connection(got)

def run_fresh(port, steps, expected=None, idle=0.3, connect=plain):
    """run() on an empty keyspace."""
    with connect(port) as conn:
        conn.sendall(b"FLUSHALL\r\n")
        if read(conn, 5) != b"+OK\r\n":
            raise SystemExit("FLUSHALL failed")
    return run(port, steps, expected, idle, connect)

def departed_waiters(port, rounds=50):
    """A client blocked in BLPOP leaves (its FIN, or a reset) and another client pushes at once:
    the element must stay in the list, every time. Before the hub dropped such a waiter when its
    socket ended or was destroyed rather than at its "close", the push handed it the element,
    which was lost (on io_uring every time, on epoll now and then). Returns how many were lost."""
    lost = 0
    with socket.create_connection(("127.0.0.1", port)) as pusher:
        def send(data, want):
            pusher.sendall(data)
            return read(pusher, len(want))
        for leave in ("end", "reset") * rounds:
            waiter = socket.create_connection(("127.0.0.1", port))
            waiter.sendall(b"BLPOP q 0\r\n")
            Blocked(1).wait(port)
            if leave == "reset":
                waiter.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                waiter.close()
            else:
                waiter.shutdown(socket.SHUT_WR)
            pushed = send(b"RPUSH q job\r\n", b":1\r\n")
            left = send(b"LLEN q\r\nDEL q\r\n", b":1\r\n:1\r\n")
            waiter.close()
            if (pushed, left) != (b":1\r\n", b":1\r\n:1\r\n"):
                lost += 1
            Blocked(0).wait(port)
    return lost

def main():
    hub_bin = sys.argv[1]
    redis = shutil.which("redis-server")
    if not redis:
        print("skipped: redis-server is not installed (.ci/run installs it); this test compares "
              "the hub's replies with redis-server's")
        raise SystemExit(77)
    redis_proc, rport = start_redis(redis)
    try:
        expected = {name: run_fresh(rport, steps, idle=1.0 if name in TIMED else 0.3)
                    for name, steps in SCENARIOS.items()}
        redis_lost = departed_waiters(rport)
    finally:
        redis_proc.kill()
        redis_proc.wait()
    hub, _, port = start_server([hub_bin, "--port", "0"])
    try:
        failures = compare(port, SCENARIOS, expected, run_fresh, same)
        lost = departed_waiters(port)
        if (lost, redis_lost) != (0, 0):
            failures += 1
            print(f"FAIL a push right after its waiter left was lost {lost} times of 100 "
                  f"(redis-server: {redis_lost})")
        else:
            print("ok   a waiter that ends or resets gives its place up at once (100 times)")
    finally:
        stop_server(hub)
    if failures:
        raise SystemExit(f"{failures} scenario(s) differ from redis-server")
    print("all list scenarios match redis-server")

if __name__ == "__main__":
    main()
