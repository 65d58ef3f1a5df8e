"""The reliable queue pattern end to end, through the hub and, with the same programs unchanged,
through redis-server (skipped without it): the producer example pushes jobs; a worker takes
some with BLMOVE and acknowledges them with LREM; a worker killed (SIGKILL) mid-job leaves its
job in its processing list; a new worker puts it back and does it, then the rest, in order.
Also: bad flags give the usage and exit status 2.
Usage: hub_queue_test.py HUB PRODUCER WORKER"""
import os, select, shutil, signal, socket, subprocess, sys, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from example_util import start_server, stop_server
from hub_test import CLOSED, read, start_redis
from hub_slowloris_test import resp

def query(port, *args):
    """One command on a fresh connection; the reply's bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(resp(*args) + b"PING\r\n")
        data, deadline = b"", time.monotonic() + 20
        while not data.endswith(b"+PONG\r\n"):
            if data.endswith(CLOSED) or time.monotonic() > deadline:
                raise SystemExit(f"FAIL {args[0]}: no reply and PONG in 20 s, got {data[:200]!r}")
            data += read(conn, len(data) + 1)
        return data[:-len(b"+PONG\r\n")]

def bulk_array(*items):
    return b"*%d\r\n" % len(items) + b"".join(b"$%d\r\n%s\r\n" % (len(i), i.encode()) for i in items)

def run_program(argv, timeout=20):
    done = subprocess.run(argv, capture_output=True, timeout=timeout)
    return done.returncode, done.stdout.decode(), done.stderr.decode()

def check(condition, what):
    if not condition:
        raise SystemExit(f"FAIL {what}")

def wait_for_line(proc, wanted, timeout=10):
    """Reads the process's stdout until the line `wanted`; returns what it printed."""
    out, deadline = b"", time.monotonic() + timeout
    while (wanted + "\n").encode() not in out:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        check(ready, f"the worker did not print {wanted!r} in {timeout}s: {out!r}")
        chunk = os.read(proc.stdout.fileno(), 4096)
        check(chunk, f"the worker exited before {wanted!r}: {out!r}")
        out += chunk
    return out.decode()

def scenario(port, producer, worker, where):
    common = ["--port", str(port), "--host", "127.0.0.1"]
    query(port, "DEL", "jobs", "w1")
    status, out, err = run_program([producer, *common, "--count", "5"])
    check(status == 0 and out == "pushed 5 jobs to jobs\n", f"{where}: producer: {status} {out!r} {err!r}")
    check(query(port, "LRANGE", "jobs", "0", "-1") ==
          bulk_array("job-5", "job-4", "job-3", "job-2", "job-1"), f"{where}: the jobs are queued")

    status, out, err = run_program([worker, *common, "--processing", "w1", "--count", "2"])
    check(status == 0 and out == "working on job-1\ndone job-1\nworking on job-2\ndone job-2\n",
          f"{where}: first worker: {status} {out!r} {err!r}")
    check(query(port, "LLEN", "w1") == b":0\r\n", f"{where}: acknowledged jobs leave processing")

    # A worker killed while it works on job-3 leaves job-3 in its processing list.
    slow = subprocess.Popen([worker, *common, "--processing", "w1", "--work-ms", "60000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_line(slow, "working on job-3")
    finally:
        slow.kill()
        slow.wait()
    check(query(port, "LRANGE", "w1", "0", "-1") == bulk_array("job-3"),
          f"{where}: the killed worker's job stays in processing")
    check(query(port, "LRANGE", "jobs", "0", "-1") == bulk_array("job-5", "job-4"),
          f"{where}: the other jobs wait")

    # Started again, the worker requeues job-3 and does it first, then the rest; then the
    # queue stays empty for its --timeout and it exits.
    status, out, err = run_program([worker, *common, "--processing", "w1", "--timeout", "1"])
    check(status == 0 and out == "requeued job-3\n" + "".join(
        f"working on job-{i}\ndone job-{i}\n" for i in (3, 4, 5)),
          f"{where}: recovering worker: {status} {out!r} {err!r}")
    check(query(port, "EXISTS", "jobs", "w1") == b":0\r\n", f"{where}: nothing is left")

    # A worker waiting on an empty queue gets a job pushed later, at once.
    waiting = subprocess.Popen([worker, *common, "--processing", "w1", "--count", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while b"blocked_clients:1\r\n" not in query(port, "INFO", "clients"):
            check(time.monotonic() < deadline, f"{where}: the worker does not wait")
            time.sleep(0.01)
        status, _, _ = run_program([producer, *common, "--count", "1", "--prefix", "late-"])
        check(status == 0, f"{where}: producer of the late job")
        out, err = waiting.communicate(timeout=10)
        check(waiting.returncode == 0 and out == b"working on late-1\ndone late-1\n",
              f"{where}: waiting worker: {waiting.returncode} {out!r} {err!r}")
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()
    print(f"ok   reliable queue through {where}")

def bad_flags(programs):
    for program in programs:
        for argv in (["--bogus", "1"], ["--port"], ["--port", "x"], ["--port", "70000"]):
            status, out, err = run_program([program, *argv])
            check(status == 2 and "usage:" in err and out == "",
                  f"{os.path.basename(program)} {argv}: {status} {out!r} {err!r}")
    print("ok   bad flags: usage and exit status 2")

def main():
    hub_bin, producer, worker = sys.argv[1:4]
    bad_flags([hub_bin, producer, worker])
    hub, _, port = start_server([hub_bin, "--port", "0"])
    try:
        scenario(port, producer, worker, "the hub")
    finally:
        stop_server(hub)
    redis = shutil.which("redis-server")
    if not redis:
        print("skipped the same programs through redis-server: it is not installed")
        return
    redis_proc, rport = start_redis(redis)
    try:
        scenario(rport, producer, worker, "redis-server")
    finally:
        redis_proc.kill()
        redis_proc.wait()

if __name__ == "__main__":
    main()
