"""--maxmemory (Redis' noeviction policy): once the keys hold more than the limit, commands that
add data (LPUSH, RPUSH, LMOVE, BLMOVE, SET) get redis-server's OOM error, byte for byte (compared
with a redis-server started here with maxmemory 1, when it is installed); reads, pops, deletes
and every other client go on, and once data is removed pushes succeed again.
Usage: hub_maxmemory_test.py HUB"""
import os, shutil, socket, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from example_util import start_server, stop_server
from hub_test import start_redis
from hub_queue_test import check, query

OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"

def redis_oom():
    """redis-server's reply to an LPUSH over maxmemory, or None without redis-server."""
    redis = shutil.which("redis-server")
    if not redis:
        return None
    proc, port = start_redis(redis, "--maxmemory", "1")
    try:
        return query(port, "LPUSH", "q", "x")
    finally:
        proc.kill()
        proc.wait()

def used_memory(port):
    info = query(port, "INFO", "memory").decode()
    return int(info.split("used_memory:")[1].split("\r\n")[0])

def main():
    hub_bin = sys.argv[1]
    expected = redis_oom()
    if expected is None:
        print("redis-server not found: comparing with the text of redis-server 7.0.15")
        expected = OOM
    check(expected == OOM, f"redis-server's OOM reply: {expected!r}")
    hub, _, port = start_server([hub_bin, "--port", "0", "--maxmemory", "2000"])
    try:
        replies = []
        for i in range(100):  # 100-byte elements: past 2000 bytes within 20 pushes
            replies.append(query(port, "RPUSH", "q", f"{i:0100d}"))
            if replies[-1] == expected:
                break
        check(replies[-1] == expected and all(r.startswith(b":") for r in replies[:-1]),
              f"pushes until the OOM error: {replies[-3:]!r}")
        pushed = len(replies) - 1
        check(used_memory(port) > 2000, "INFO memory shows the limit passed")
        for args in (["LPUSH", "q", "x"], ["LMOVE", "q", "r", "LEFT", "LEFT"],
                     ["BLMOVE", "q", "r", "LEFT", "LEFT", "0"], ["SET", "s", "v"], ["RPUSH", "new", "x"]):
            check(query(port, *args) == expected, f"{args[0]} over the limit")
        check(query(port, "LLEN", "q") == b":%d\r\n" % pushed, "nothing denied was added")
        check(query(port, "LINDEX", "q", "0") == b"$100\r\n%0100d\r\n" % 0, "reads go on")
        check(query(port, "PING") == b"+PONG\r\n", "other commands go on")
        check(query(port, "LPOP", "q") == b"$100\r\n%0100d\r\n" % 0, "pops go on")
        check(query(port, "LPUSH", "q") == b"-ERR wrong number of arguments for 'lpush' command\r\n",
              "the argument count is checked first, as in Redis")
        check(query(port, "DEL", "q") == b":1\r\n", "DEL goes on")
        check(used_memory(port) == 0, "nothing is counted once the keys are gone")
        check(query(port, "RPUSH", "q", "again") == b":1\r\n", "pushes succeed again")
    finally:
        stop_server(hub)
    print("ok   maxmemory: Redis' OOM error for writes that add data; everything else goes on")

if __name__ == "__main__":
    main()
