"""Idle workers wake for new jobs instead of polling, on the real Redis (across brokers, as across
processes) and in-process: jobs, delayed jobs and stops are prompt though an idle consumer would
otherwise look at its queue only every ten minutes here."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import dramatiq
import pytest

from gateway.broker import make_broker, make_worker
from tests.services import REDIS_URL, require_service

#: The consumers' idle poll here: far longer than any wait below, so what runs a job in time is a wake-up.
IDLE_POLL_MS = 600_000
#: Seconds a woken job may take to run on a loaded test machine (against the ten-minute poll).
PROMPT = 10.0


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.redis)])
def brokers(request: pytest.FixtureRequest) -> Iterator[tuple[dramatiq.Broker, dramatiq.Broker]]:
    """The worker's broker and the one jobs are sent from: one in-process broker twice, or two Redis
    brokers on one namespace (two processes' view of it)."""
    if request.param == "in-process":
        broker = make_broker(None, idle_poll_ms=IDLE_POLL_MS)
        yield broker, broker
        broker.close()
        return
    require_service("Redis", "127.0.0.1", 6379)
    namespace = "w2c-wakes-" + uuid.uuid4().hex[:8]
    working, sending = (make_broker(REDIS_URL, namespace=namespace, idle_poll_ms=IDLE_POLL_MS) for _ in range(2))
    yield working, sending
    for key in sending.client.scan_iter(f"{namespace}*"):
        sending.client.delete(key)
    working.close()
    sending.close()


class Ran:
    """A job that records when each of its runs happened."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}
        self.changed = threading.Condition()

    def __call__(self, n: int) -> None:
        with self.changed:
            self.at[n] = time.monotonic()
            self.changed.notify_all()

    def wait(self, n: int) -> float:
        with self.changed:
            assert self.changed.wait_for(lambda: n in self.at, PROMPT), f"job {n} did not run within {PROMPT} s"
            return self.at[n]


def declare(brokers: tuple[dramatiq.Broker, dramatiq.Broker], ran: Ran) -> dramatiq.Actor[[int], None]:
    actors = [dramatiq.actor(broker=b, actor_name="job", queue_name="jobs", max_retries=0)(ran)
              for b in dict.fromkeys(brokers)]  # the in-process broker once
    return actors[-1]


@contextmanager
def working(broker: dramatiq.Broker) -> Iterator[dramatiq.Worker]:
    """A worker of two threads on ``broker``, stopped afterwards."""
    worker = make_worker(broker, threads=2)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def test_an_idle_worker_runs_each_new_job_at_once(brokers: tuple[dramatiq.Broker, dramatiq.Broker]) -> None:
    ran = Ran()
    job = declare(brokers, ran)
    with working(brokers[0]):
        for n in range(3):  # after the first, each job comes while the worker's consumer waits, idle
            sent = time.monotonic()
            job.send(n)
            assert ran.wait(n) - sent < PROMPT


def test_a_delayed_job_runs_when_due_on_an_idle_worker(brokers: tuple[dramatiq.Broker, dramatiq.Broker]) -> None:
    ran = Ran()
    job = declare(brokers, ran)
    with working(brokers[0]):
        job.send(0)
        ran.wait(0)
        sent = time.monotonic()
        job.send_with_options(args=(1,), delay=300)
        assert 0.3 <= ran.wait(1) - sent < PROMPT  # not before its delay, and not at the next idle poll


def test_an_idle_worker_stops_promptly(brokers: tuple[dramatiq.Broker, dramatiq.Broker]) -> None:
    ran = Ran()
    job = declare(brokers, ran)
    worker = make_worker(brokers[0], threads=2)
    worker.start()
    job.send(0)
    ran.wait(0)
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < PROMPT


def test_a_worker_started_again_on_the_same_broker_is_woken_too(
        brokers: tuple[dramatiq.Broker, dramatiq.Broker]) -> None:
    ran = Ran()
    job = declare(brokers, ran)
    for n in range(2):  # a second worker listens to the wake-ups anew
        with working(brokers[0]):
            job.send(2 * n)
            ran.wait(2 * n)
            sent = time.monotonic()
            job.send(2 * n + 1)  # the worker is idle now: only a wake-up runs this in time
            assert ran.wait(2 * n + 1) - sent < PROMPT
