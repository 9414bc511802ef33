"""How late the unseen checks run at 10,000 pending, on the real Redis broker and PostgreSQL.

Run: ``.venv/bin/python bench/bench_unseen.py [--checks 10000] [--spread 60] [--workers 1]``

Stores N tickets, each with one teammate reply whose unseen window ends at a different time
(spread evenly over ``--spread`` seconds, starting after the scheduling is done), schedules
their N delayed checks on Redis through the gateway (in due order, as replies arrive in real
life), and lets ``--workers`` ``web2chat-gateway worker`` processes run them. For every check it reports
when the check stored its email minus when the reply fell due (p50, p99, max), and the worker's
peak memory (VmHWM). Baseline in the same run: bare Dramatiq, N delayed no-op messages with the
same due times on the same Redis, run by an in-process worker with the same settings.
Needs PostgreSQL on 127.0.0.1:5432 (database ``test``) and Redis on 127.0.0.1:6379 (uses DB 14,
flushed before and after).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dramatiq  # noqa: E402
from dramatiq.brokers.redis import RedisBroker  # noqa: E402
from sqlalchemy import func, insert, select, text  # noqa: E402

from gateway.app import build_gateway  # noqa: E402
from gateway.broker import make_worker  # noqa: E402
from gateway.settings import load_settings  # noqa: E402
from gateway.store import make_engine, migrate  # noqa: E402
from gateway.store.tables import customers, entries, outbox, tickets  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/14"
#: Unseen delay used by the run (seconds).
DELAY = 2
#: Seconds between the end of scheduling and the first due time.
LEAD = 3.0
#: Worker threads, in the gateway's worker and in the baseline.
THREADS = 8


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99, ordered[-1]


def seed(url: str, n: int, first_due: datetime, spread: float) -> list[tuple[int, datetime]]:
    engine = make_engine(url)
    migrate(engine)
    dues = [first_due + timedelta(seconds=spread * i / n) for i in range(n)]
    with engine.begin() as conn:
        conn.execute(
            insert(customers),
            [
                {"pk": i + 1, "external_id": f"c{i}", "email": f"c{i}@bench.test", "name": "C", "locale": "en"}
                for i in range(n)
            ],
        )
        conn.execute(
            insert(tickets),
            [
                {"pk": i + 1, "external_id": f"T{i}", "customer_pk": i + 1, "title": "Bench", "description": "",
                 "state": "in_progress", "created_by": "customer", "created_at": dues[i] - timedelta(hours=1),
                 "last_activity_at": dues[i] - timedelta(seconds=DELAY)}
                for i in range(n)
            ],
        )
        conn.execute(
            insert(entries),
            [
                {"ticket_pk": i + 1, "kind": "teammate_reply", "text": "We are on it.", "author_name": "Sam",
                 "external_id": f"r{i}", "created_at": dues[i] - timedelta(seconds=DELAY), "due_at": dues[i]}
                for i in range(n)
            ],
        )
    engine.dispose()
    return [(i + 1, dues[i]) for i in range(n)]


def lateness(url: str) -> list[float]:
    engine = make_engine(url)
    query = select(outbox.c.created_at, entries.c.due_at).join(entries, entries.c.emailed_outbox_pk == outbox.c.pk)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    engine.dispose()
    return [(created - due).total_seconds() for created, due in rows]


def emailed(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(outbox).where(outbox.c.kind == "teammate_reply")).scalar()
    engine.dispose()
    return int(count or 0)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def gateway_run(n: int, spread: float, workers: int) -> tuple[list[float], float, float, float]:
    schema = "bench_unseen_" + uuid.uuid4().hex[:8]
    admin = make_engine(POSTGRES)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        conn.commit()
    url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    env = {
        "GATEWAY_DATABASE_URL": url,
        "GATEWAY_REDIS_URL": REDIS,
        "GATEWAY_UNSEEN_DELAY_SECONDS": str(DELAY),
        "GATEWAY_SECRET_KEYS": "1:bench-secret-0123456789",
        "GATEWAY_API_KEYS": "bench-api-key-0123456789",
        "GATEWAY_WORKER_THREADS": str(THREADS),
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        estimated_scheduling = n / 400  # scheduling runs at roughly 500-1,000 checks/s here
        pending = seed(url, n, datetime.now(UTC) + timedelta(seconds=LEAD + estimated_scheduling), spread)
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "worker"], env={**os.environ, **env}, cwd=ROOT,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            for _ in range(workers)
        ]
        gw = build_gateway(load_settings(env))
        started = time.monotonic()
        for ticket_key, due in pending:
            gw.unseen.schedule_for(ticket_key, due)
        scheduled_in = time.monotonic() - started
        deadline = time.monotonic() + LEAD + spread + 120
        while emailed(url) < n and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            time.sleep(0.5)
        peak = max(peak_rss_mb(p.pid) for p in procs)
        cpu = sum(cpu_seconds(p.pid) for p in procs)
        late = lateness(url)
        if len(late) != n:
            print(f"  only {len(late)} of {n} checks emailed before the deadline", file=sys.stderr)
        return late, peak, scheduled_in, cpu
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.commit()
        admin.dispose()


def dramatiq_run(n: int, spread: float) -> list[float]:
    broker = RedisBroker(url=REDIS, namespace="bench-baseline")
    late: list[float] = []
    lock = threading.Lock()

    @dramatiq.actor(broker=broker, queue_name="baseline", actor_name="noop")
    def noop(due: float) -> None:
        with lock:
            late.append(time.time() - due)

    first_due = time.time() + LEAD + n / 5000
    worker = make_worker(broker, threads=THREADS)
    worker.start()
    try:
        for i in range(n):
            due = first_due + spread * i / n
            noop.send_with_options(args=(due,), delay=max(0, int((due - time.time()) * 1000)))
        deadline = time.monotonic() + LEAD + spread + 60
        while len(late) < n and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        worker.stop()
        broker.close()
    return late


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=10_000)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which the due times are spread")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (each with its own threads)")
    args = parser.parse_args()
    flush = RedisBroker(url=REDIS).client
    flush.flushdb()
    try:
        base = dramatiq_run(args.checks, args.spread)
        late, peak, scheduled_in, cpu = gateway_run(args.checks, args.spread, args.workers)
    finally:
        flush.flushdb()
    b50, b99, bmax = percentiles(base)
    g50, g99, gmax = percentiles(late)
    print(f"{args.checks} pending checks due over {args.spread:.0f} s; delay {DELAY} s; "
          f"{args.workers} worker process(es) x {THREADS} threads; load average {os.getloadavg()[0]:.1f}")
    print(f"scheduling: {scheduled_in:.1f} s ({args.checks / scheduled_in:,.0f} checks/s)")
    print(f"{'':28} {'p50':>8} {'p99':>8} {'max':>8}   (seconds late)")
    print(f"{'bare Dramatiq (baseline)':28} {b50:8.3f} {b99:8.3f} {bmax:8.3f}")
    print(f"{'gateway unseen check':28} {g50:8.3f} {g99:8.3f} {gmax:8.3f}")
    print(f"p99 ratio gateway/baseline: {g99 / b99 if b99 > 0 else float('nan'):.2f}")
    print(f"worker peak memory (VmHWM, largest process): {peak:.0f} MB; checks emailed: {len(late)}/{args.checks}")
    print(f"worker CPU: {cpu:.1f} s in all, {cpu / max(1, len(late)) * 1000:.2f} ms per check emailed "
          "(start-up and the emails' delivery included)")


if __name__ == "__main__":
    main()
