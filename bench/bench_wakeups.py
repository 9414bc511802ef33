"""Messenger wake-ups through Redis: one commit's customers in one pipeline, against one PUBLISH each.

Run: ``.venv/bin/python bench/bench_wakeups.py [--commits 2000]``

A commit that changed customers wakes their Messenger streams in every process through Redis pub/sub
(``gateway.messenger.live.RedisSignal``). For 1, 4, 8 and 16 customers per commit it times
``--commits`` commits' wake-ups sent as one pipeline (``publish_many``, what the gateway does) and, as
the baseline in the same run, as one ``PUBLISH`` round trip per customer; prints the wall and CPU time
per commit and the ratio. Redis on 127.0.0.1:6379, database 9, a channel of its own that no one
listens on; exits with the reason when Redis does not answer. Bounded: ``--commits`` per measure.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.messenger.live import RedisSignal

REDIS_URL = "redis://127.0.0.1:6379/9"


def one_by_one(signal: RedisSignal, customers: list[str]) -> Callable[[], None]:
    """The baseline: one PUBLISH round trip per customer."""

    def send() -> None:
        for customer in customers:
            signal.publish(customer)

    return send


def pipelined(signal: RedisSignal, customers: list[str]) -> Callable[[], None]:
    """What the gateway does: the commit's customers in one pipeline."""
    return lambda: signal.publish_many(customers)


def timed(commits: int, send: Callable[[], None]) -> tuple[float, float]:
    """Microseconds of wall and CPU time per commit for ``commits`` calls of ``send``."""
    send()  # the connection is open before timing
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(commits):
        send()
    return 1e6 * (time.perf_counter() - wall) / commits, 1e6 * (time.process_time() - cpu) / commits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=2000, help="commits per measure (default 2000)")
    args = parser.parse_args()
    if not 1 <= args.commits <= 1_000_000:
        parser.error("need 1 <= --commits <= 1000000")
    signal = RedisSignal(REDIS_URL, channel=f"w2c-bench-{uuid.uuid4().hex[:8]}")
    try:
        signal.publish("ping")
    except Exception as error:  # noqa: BLE001 - any failure to reach Redis ends the run with its reason
        raise SystemExit(f"Redis does not answer on {REDIS_URL}: {error}") from None
    print(f"{args.commits} commits per measure; us per commit (wall / CPU)")
    for n in (1, 4, 8, 16):
        customers = [f"c-{i}" for i in range(n)]
        base = timed(args.commits, one_by_one(signal, customers))
        batched = timed(args.commits, pipelined(signal, customers))
        print(f"{n:3d} customers: one PUBLISH each {base[0]:7.0f} / {base[1]:7.0f}   "
              f"pipeline {batched[0]:7.0f} / {batched[1]:7.0f}   CPU ratio {batched[1] / base[1]:.2f}")
    signal.close()


if __name__ == "__main__":
    main()
