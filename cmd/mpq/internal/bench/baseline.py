#!/usr/bin/env python3
"""Python baselines for the mpq benchmark harness (stdlib only).

Each run prints one JSON object on one line of stdout:

    baseline.py tput --transport queue|pipe --producers P --consumers C \\
        --size BYTES --count MSGS --seconds S
    baseline.py rtt --transport queue|pipe --size BYTES --count N \\
        --seconds S --warmup N [--hist MIN_NS,PER_DECADE,BUCKETS]
    baseline.py pool --transport pool|executor --workers W --count N \\
        --seconds S
    baseline.py submit --workers W --count N --seconds S --warmup N \\
        [--hist MIN_NS,PER_DECADE,BUCKETS]
    baseline.py version

tput: P producer processes send up to MSGS messages in all (each stops
after S seconds too) of BYTES bytes to C consumer processes. queue is a
multiprocessing.Queue bounded to about 4 MiB of messages, like mpq's
default ring; pipe is multiprocessing.Pipe(duplex=False) with
send_bytes/recv_bytes and takes 1 producer and 1 consumer. Throughput is
the messages received over the time from the start barrier to the last
message received.

rtt: the parent sends a message to an echo child and waits for the reply,
N times or for S seconds after N warm-up round trips; each round trip is
timed with time.perf_counter_ns. pipe uses one duplex Pipe, queue a pair
of Queues. With --hist it also counts the round trips in BUCKETS buckets,
PER_DECADE to a factor of ten from MIN_NS nanoseconds (the first bucket
takes the shorter times too, the last the longer ones), and reports them
as "hist": {"min_ns", "per_decade", "counts"}.

pool: the throughput, in tasks per second, of mapping square (x*x) over
ints with W worker processes. pool is multiprocessing.Pool(W).map(square,
range(N)), one call with its default chunksize; executor is
concurrent.futures.ProcessPoolExecutor(W).map(square, ...) with its
default chunksize of 1, which moves each task alone: it maps rounds of
EXECUTOR_ROUND ints, one after the other, until N are done or S seconds
have passed. The pool is made and warmed with a small map first, untimed.

submit: the latency of ProcessPoolExecutor(W).submit(square, x).result(),
one at a time, N times or for S seconds after N warm-up calls, reported as
rtt reports its round trips.

Both start their workers by fork (the default on Linux up to Python 3.13).
"""

import argparse
import json
import math
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor

CTX = mp.get_context("fork")
RING_BYTES = 4 << 20  # bound of the Queue, like mpq's default capacity
STEP = 64  # messages between deadline checks
EXECUTOR_ROUND = 500  # tasks of one ProcessPoolExecutor.map between deadline checks
POOL_WARMUP = 1000  # tasks of the untimed map that warms a pool


def square(x):
    """The pool rows' task: module-level, so that a worker can unpickle it."""
    return x * x


def produce(send, size, count, seconds, barrier):
    """Send up to count messages for at most seconds."""
    msg = b"x" * size
    barrier.wait()
    deadline = time.perf_counter() + seconds
    sent = 0
    while sent < count:
        for _ in range(min(STEP, count - sent)):
            send(msg)
        sent += min(STEP, count - sent)
        if time.perf_counter() >= deadline:
            break


def consume(recv, results, barrier):
    """Receive until recv returns None; report count, bytes and end time."""
    barrier.wait()
    n = nbytes = 0
    last = time.perf_counter_ns()
    while True:
        m = recv()
        if m is None:
            break
        n += 1
        nbytes += len(m)
        last = time.perf_counter_ns()
    results.put((n, nbytes, last))


def pipe_recv(conn):
    """recv_bytes, with None at end of stream."""
    def recv():
        try:
            return conn.recv_bytes()
        except EOFError:
            return None
    return recv


def pipe_producer(r, w, size, count, seconds, barrier):
    r.close()
    produce(w.send_bytes, size, count, seconds, barrier)
    w.close()


def pipe_consumer(r, w, results, barrier):
    w.close()
    consume(pipe_recv(r), results, barrier)


def tput(a):
    results = CTX.Queue()
    barrier = CTX.Barrier(a.producers + a.consumers + 1)
    per = max(1, a.count // a.producers)
    if a.transport == "queue":
        q = CTX.Queue(maxsize=max(64, min(10000, RING_BYTES // a.size)))
        prods = [CTX.Process(target=produce, args=(q.put, a.size, per, a.seconds, barrier))
                 for _ in range(a.producers)]
        cons = [CTX.Process(target=consume, args=(q.get, results, barrier))
                for _ in range(a.consumers)]
    else:
        if a.producers != 1 or a.consumers != 1:
            sys.exit("pipe takes 1 producer and 1 consumer")
        r, w = CTX.Pipe(duplex=False)
        prods = [CTX.Process(target=pipe_producer, args=(r, w, a.size, per, a.seconds, barrier))]
        cons = [CTX.Process(target=pipe_consumer, args=(r, w, results, barrier))]
    for p in cons + prods:
        p.daemon = True
        p.start()
    if a.transport == "pipe":
        r.close()
        w.close()
    barrier.wait()
    t0 = time.perf_counter_ns()
    for p in prods:
        p.join()
    if a.transport == "queue":
        for _ in cons:
            q.put(None)
    got = [results.get() for _ in cons]
    for p in cons:
        p.join()
    n = sum(g[0] for g in got)
    nbytes = sum(g[1] for g in got)
    secs = (max(g[2] for g in got) - t0) / 1e9
    return {"msgs": n, "bytes": nbytes, "seconds": secs,
            "msgs_per_sec": n / secs, "mb_per_sec": nbytes / secs / 1e6}


def echo_pipe(a, b, size):
    a.close()
    msg = b"y" * size
    while True:
        try:
            b.recv_bytes()
        except EOFError:
            return
        b.send_bytes(msg)


def echo_queue(ping, pong, size):
    msg = b"y" * size
    while ping.get() is not None:
        pong.put(msg)


def rtt(a):
    msg = b"x" * a.size
    if a.transport == "pipe":
        end, other = CTX.Pipe()
        child = CTX.Process(target=echo_pipe, args=(end, other, a.size))
        send, recv = end.send_bytes, end.recv_bytes
    else:
        ping, pong = CTX.Queue(), CTX.Queue()
        child = CTX.Process(target=echo_queue, args=(ping, pong, a.size))
        send, recv = ping.put, pong.get
    child.daemon = True
    child.start()
    if a.transport == "pipe":
        other.close()
    clock = time.perf_counter_ns
    for _ in range(a.warmup):
        send(msg)
        recv()
    lat = []
    t0 = clock()
    deadline = t0 + int(a.seconds * 1e9)
    while len(lat) < a.count:
        t = clock()
        send(msg)
        recv()
        now = clock()
        lat.append(now - t)
        if now >= deadline:
            break
    total = clock() - t0
    if a.transport == "pipe":
        end.close()
    else:
        ping.put(None)
    child.join()
    return latencies(lat, total, a.hist)


def pool_map(a):
    clock = time.perf_counter_ns
    if a.transport == "pool":
        with CTX.Pool(a.workers) as pool:
            pool.map(square, range(POOL_WARMUP))
            t0 = clock()
            out = pool.map(square, range(a.count))
            secs = (clock() - t0) / 1e9
            pool.close()
            pool.join()
        n = len(out)
        check(out, 0)
    else:
        with ProcessPoolExecutor(a.workers, mp_context=CTX) as ex:
            list(ex.map(square, range(POOL_WARMUP)))
            n = 0
            t0 = clock()
            deadline = t0 + int(a.seconds * 1e9)
            while n < a.count:
                k = min(EXECUTOR_ROUND, a.count - n)
                out = list(ex.map(square, range(n, n + k)))
                check(out, n)
                n += k
                if clock() >= deadline:
                    break
            secs = (clock() - t0) / 1e9
    return {"msgs": n, "seconds": secs, "msgs_per_sec": n / secs}


def check(out, first):
    """Exit unless out holds the squares of first, first+1, ..."""
    for i, y in enumerate(out):
        if y != (first + i) * (first + i):
            sys.exit("task %d: got %r; want %d" % (first + i, y, (first + i) ** 2))


def submit(a):
    clock = time.perf_counter_ns
    with ProcessPoolExecutor(a.workers, mp_context=CTX) as ex:
        for x in range(a.warmup):
            ex.submit(square, x).result()
        lat = []
        t0 = clock()
        deadline = t0 + int(a.seconds * 1e9)
        while len(lat) < a.count:
            x = len(lat)
            t = clock()
            y = ex.submit(square, x).result()
            now = clock()
            if y != x * x:
                sys.exit("task %d: got %r; want %d" % (x, y, x * x))
            lat.append(now - t)
            if now >= deadline:
                break
        total = clock() - t0
    return latencies(lat, total, a.hist)


def latencies(lat, total, hist):
    """The rtt and submit report of the times lat (ns), taken over total."""
    lat.sort()
    out = {"msgs": len(lat), "seconds": total / 1e9,
           "p50_ns": lat[(len(lat) + 1) // 2 - 1],
           "p99_ns": lat[max(0, -(-99 * len(lat) // 100) - 1)]}
    if hist:
        out["hist"] = histogram(lat, hist)
    return out


def histogram(lat, spec):
    """Count the times of lat (ns) in the log-spaced buckets of spec."""
    min_ns, per_decade, buckets = (int(x) for x in spec.split(","))
    counts = [0] * buckets
    for t in lat:
        i = 0
        if t >= min_ns:
            i = math.floor(math.log10(t / min_ns) * per_decade)
        counts[min(max(i, 0), buckets - 1)] += 1
    return {"min_ns": min_ns, "per_decade": per_decade, "counts": counts}


CASES = {"tput": tput, "rtt": rtt, "pool": pool_map, "submit": submit}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("case", choices=list(CASES) + ["version"])
    p.add_argument("--transport", choices=["queue", "pipe", "pool", "executor"], default="queue")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--producers", type=int, default=1)
    p.add_argument("--consumers", type=int, default=1)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--count", type=int, default=200000)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--hist", default="")
    a = p.parse_args()
    if a.case == "version":
        out = {}
    else:
        out = CASES[a.case](a)
        out.update(case=a.case, transport=a.transport)
        if a.case in ("pool", "submit"):
            out.update(workers=a.workers)
        else:
            out.update(producers=a.producers, consumers=a.consumers, size=a.size)
    out["python"] = sys.version.split()[0]
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
