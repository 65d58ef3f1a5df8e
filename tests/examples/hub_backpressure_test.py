"""A client that sends and never reads cannot grow the hub (issue 17): past --max-reply-queue of
unsent replies the hub stops reading it until they drain, so its requests wait in the kernel;
once it reads, every reply arrives, none dropped, and other clients are served throughout. A
subscriber's cap (--max-subscriber-queue) counts its replies too: one that pipelines PINGs and
never reads is cut. Subscribing to and leaving many channels costs linear time (the hub's CPU
time, 2,000 to 10,000 to 50,000 channels). A blocked client that keeps sending is held to
--client-query-buffer-limit as redis-server holds it (compared with one started with the same
limit, when installed): below it, every request is answered once it is served; past it, it is
closed, and the element it waited for is left for others.
Usage: hub_backpressure_test.py HUB"""
import os, shutil, socket, sys, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from example_util import start_server, stop_server
from hub_queue_test import check, query
from hub_slowloris_test import resp
from hub_test import CLOSED, Blocked, read, start_redis

def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

def non_reader(hub_bin):
    hub, _, port = start_server([hub_bin, "--port", "0"])
    try:
        payload = b"x" * 4096
        request = resp("ECHO", payload)
        reply = b"$4096\r\n" + payload + b"\r\n"
        count = 50000  # 200 MiB of replies if the hub kept them all
        flooder = socket.socket()
        flooder.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        flooder.connect(("127.0.0.1", port))
        sent = threading.Event()

        def send():
            try:
                flooder.sendall(request * count)
            finally:
                sent.set()

        sender = threading.Thread(target=send)
        sender.start()
        before = rss_kib(hub.pid)
        peak = before
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # the sender blocks: nobody reads its replies
            peak = max(peak, rss_kib(hub.pid))
            time.sleep(0.02)
        check(not sent.is_set(), "the hub read everything the non-reader sent")
        check(query(port, "PING") == b"+PONG\r\n", "another client is served meanwhile")
        check(peak - before < 64 * 1024, f"the hub grew by {(peak - before) // 1024} MiB")
        received = 0
        flooder.settimeout(30)
        while received < count * len(reply):
            chunk = flooder.recv(1 << 20)
            check(chunk, f"closed after {received} bytes")
            received += len(chunk)
        sender.join(30)
        check(received == count * len(reply), f"{received} bytes of replies")
        flooder.close()
        print(f"ok   a non-reading client: the hub grew {(peak - before) // 1024} MiB at most, "
              f"then all {count} replies arrived")
    finally:
        stop_server(hub)

def subscriber_pinging(hub_bin):
    hub, _, port = start_server([hub_bin, "--port", "0", "--max-subscriber-queue", "100000",
                                 "--max-reply-queue", "100000000"])
    try:
        sub = socket.socket()
        sub.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sub.connect(("127.0.0.1", port))
        sub.sendall(b"SUBSCRIBE c\r\n")
        deadline = time.monotonic() + 10
        cut = False
        while time.monotonic() < deadline and not cut:
            try:
                sub.sendall(b"PING\r\n" * 10000)
            except OSError:
                cut = True
            if b"connected_clients:1\r\n" in query(port, "INFO", "clients"):
                cut = True  # only the INFO connection is left
        check(cut, "a subscriber that pipelines PINGs and never reads was not cut")
        sub.close()
        print("ok   a subscriber's replies count against its cap")
    finally:
        stop_server(hub)

def subscribe_and_drop(port, count):
    """One SUBSCRIBE of count channels, its replies read, then a disconnect until the hub has
    let go of them all."""
    last = f"channel:{count - 1}"
    request = resp("SUBSCRIBE", *[f"channel:{i}" for i in range(count)])
    want = sum(len(b"*3\r\n$9\r\nsubscribe\r\n$%d\r\nchannel:%d\r\n:%d\r\n" %
                   (len(f"channel:{i}"), i, i + 1)) for i in range(count))
    sub = socket.create_connection(("127.0.0.1", port))
    sub.sendall(request)
    got, deadline = 0, time.monotonic() + 30
    sub.settimeout(30)
    while got < want:
        chunk = sub.recv(1 << 20)
        check(chunk and time.monotonic() < deadline, "the subscriptions were not confirmed")
        got += len(chunk)
    check(query(port, "PUBSUB", "NUMSUB", last) ==
          b"*2\r\n$%d\r\n%s\r\n:1\r\n" % (len(last), last.encode()), "subscribed")
    sub.close()
    # The client stops counting in connected_clients at its end of stream, before its "close"
    # unsubscribes it: wait for the subscriptions themselves.
    gone = b"*2\r\n$%d\r\n%s\r\n:0\r\n" % (len(last), last.encode())
    while query(port, "PUBSUB", "NUMSUB", last) != gone:
        check(time.monotonic() < deadline, "not unsubscribed on disconnect")
        time.sleep(0.01)

def cpu_seconds(pid):
    """The CPU time of process pid, all its threads, to the nanosecond (schedstat)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9

def hub_cpu_of(hub, work, budget):
    """The hub's CPU seconds while work() runs (in a thread); None, the hub killed, as soon as
    they pass budget (no limit if None)."""
    outcome = []

    def run():
        try:
            work()
            outcome.append(None)
        except BaseException as error:  # a failed check, too, is reported by the caller
            outcome.append(error)

    begin = cpu_seconds(hub.pid)
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.02)
        if budget is not None and cpu_seconds(hub.pid) - begin > budget:
            hub.kill()
            hub.wait()
            return None
    if outcome[0] is not None:
        raise outcome[0]
    return cpu_seconds(hub.pid) - begin

def many_subscriptions(hub_bin):
    """SUBSCRIBEs of 2,000, 10,000 and 50,000 channels, each followed by a disconnect: the work
    is linear, so each size costs the hub about five times the CPU time of the one before
    (measured: 4.0-6.3 times in Debug, ASan and Release builds); O(n^2), as before, cost 24-27
    times (16 s for 50,000 in Release) and fails here. A ratio of the hub's CPU time, not a
    time, so that a slow or shared machine (or a sanitizer) does not fail it. A size that costs
    more than `limit` times the one before is stopped there and the hub killed: a quadratic hub
    fails in seconds. A client PINGs throughout; its worst wait is reported."""
    limit = 12  # between 5 (linear) and 25 (quadratic)
    hub, _, port = start_server([hub_bin, "--port", "0"])
    worst, stop = [0.0], threading.Event()

    def ping():
        try:
            with socket.create_connection(("127.0.0.1", port)) as conn:
                while not stop.is_set():
                    start = time.monotonic()
                    conn.sendall(b"PING\r\n")
                    check(conn.recv(100) == b"+PONG\r\n", "PING")
                    worst[0] = max(worst[0], time.monotonic() - start)
                    time.sleep(0.005)
        except OSError:  # the hub was killed: the failure is the main thread's to report
            pass

    pinger = threading.Thread(target=ping, daemon=True)
    pinger.start()
    cpu, previous = {}, None
    try:
        for count in (2000, 10000, 50000):
            budget = None if previous is None else limit * cpu[previous]
            used = hub_cpu_of(hub, lambda: subscribe_and_drop(port, count), budget)
            if used is None:
                check(False, f"{count:,} channels cost the hub more than {budget:.2f} s of CPU, "
                      f"{limit} times the {cpu[previous] * 1000:.0f} ms of {previous:,}: not linear")
            cpu[count], previous = used, count
    except BaseException:
        stop.set()
        if hub.poll() is None:
            hub.kill()
            hub.wait()
        raise
    stop.set()
    pinger.join(10)
    stop_server(hub)
    print(f"ok   2,000, 10,000 and 50,000 channels subscribed and dropped in "
          f"{cpu[2000] * 1000:.0f}, {cpu[10000] * 1000:.0f} and {cpu[50000] * 1000:.0f} ms of the "
          f"hub's CPU ({cpu[10000] / cpu[2000]:.1f} and {cpu[50000] / cpu[10000]:.1f} times the size "
          f"before); a PING waited at worst {worst[0] * 1000:.0f} ms")

def blocked_sender(port, size, close_within):
    """A client blocked in BLPOP sends `size` bytes of PINGs. Under the limit it is served, when
    another client pushes, and then answered every PING; past it, it is closed, and the element
    pushed after that is left in the list: the push waits for the close up to `close_within`
seconds. Returns (its bytes, the push's reply, LLEN)."""
    pings = b"PING\r\n" * (size // 6)
    with socket.create_connection(("127.0.0.1", port)) as blocked:
        blocked.sendall(b"BLPOP q 0\r\n")
        Blocked(1).wait(port)
        try:
            blocked.sendall(pings)
        except OSError:  # closed while sending
            pass
        want = b"*2\r\n$1\r\nq\r\n$3\r\njob\r\n" + b"+PONG\r\n" * (size // 6)
        closed = read(blocked, 0, expect_close=True, timeout=close_within)
        pushed = query(port, "RPUSH", "q", "job")
        got = closed if closed.endswith(CLOSED) else read(blocked, len(want), timeout=10)
    left = query(port, "LLEN", "q")
    query(port, "DEL", "q")
    return got == want or got, pushed, left

def blocked_flooder(hub_bin):
    limit = 1024 * 1024  # redis-server's smallest client-query-buffer-limit
    redis = shutil.which("redis-server")
    redis_proc, redis_port = start_redis(redis, "--client-query-buffer-limit", "1mb") if redis \
        else (None, None)
    hub, _, port = start_server([hub_bin, "--port", "0", "--client-query-buffer-limit",
                                 str(limit)])
    try:
        before = rss_kib(hub.pid)
        for size, wait, want in ((limit // 4, 0.5, (True, b":1\r\n", b":0\r\n")),
                                 (4 * limit, 10, (CLOSED, b":1\r\n", b":1\r\n"))):
            got = blocked_sender(port, size, wait)
            check(got == want, f"a blocked client that sent {size} bytes: {got}, not {want}")
            if redis_proc:
                ref = blocked_sender(redis_port, size, wait)
                check(ref == got, f"{size} bytes: hub {got}, redis-server {ref}")
        check(b"blocked_clients:0\r\n" in query(port, "INFO", "clients"), "no client blocked")
        grown = rss_kib(hub.pid) - before
        check(grown < 16 * 1024, f"the hub grew by {grown} KiB")
        print(f"ok   a blocked client is held to --client-query-buffer-limit"
              f"{' as by redis-server' if redis_proc else ''}; the hub grew by {grown} KiB")
    finally:
        stop_server(hub)
        if redis_proc:
            redis_proc.kill()
            redis_proc.wait()

def main():
    hub_bin = sys.argv[1]
    blocked_flooder(hub_bin)
    non_reader(hub_bin)
    subscriber_pinging(hub_bin)
    many_subscriptions(hub_bin)

if __name__ == "__main__":
    main()
