"""Celery's client side for the bench: the same figures as the Node peers.

usage: /usr/bin/python3 celery_client.py warm|figures SIZES_JSON
The tasks module (benchtasks) is on PYTHONPATH; BENCH_BROKER names the broker.
Prints one JSON object on stdout.
"""
import json
import math
import sys
import time

from celery.result import ResultSet

from benchtasks import noop, sleep_ms


def percentile(s, p):
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def one():
    ResultSet([noop.apply_async()]).join_native()


def main():
    mode = sys.argv[1]
    sizes = json.loads(sys.argv[2])
    one()  # opens the connections and the reply queue; warms the worker
    if mode == "warm":
        print(json.dumps({}))
        return
    out = {}
    if "a" in sizes["figures"]:
        for _ in range(sizes["warmup"]):
            one()
        samples = []
        for _ in range(sizes["roundTrips"]):
            t0 = time.perf_counter()
            one()
            samples.append((time.perf_counter() - t0) * 1000)
        samples.sort()
        out["a_p50"] = percentile(samples, 50)
        out["a_p99"] = percentile(samples, 99)
    if "b" in sizes["figures"]:
        t0 = time.perf_counter()
        rs = ResultSet([noop.apply_async() for _ in range(sizes["burst"])])
        rs.join_native()
        out["b"] = sizes["burst"] / (time.perf_counter() - t0)
    if "c" in sizes["figures"]:
        t0 = time.perf_counter()
        rs = ResultSet([sleep_ms.apply_async((sizes["sleepMs"],)) for _ in range(sizes["sleepTasks"])])
        rs.join_native()
        out["c"] = sizes["sleepTasks"] / (time.perf_counter() - t0)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
