"""Outbound throughput: N notifications through the whole pipeline, against a floor of plain sends.

Run: ``.venv/bin/python bench/bench_outbound.py [--emails 1500] [--rounds 9] [--clients 8]``

A local SMTP sink (aiosmtpd, answers 250, keeps nothing) runs in another process. Each round:

- **pipeline**: N ``ticket.created`` events through ``EventApplier`` (policy, Jinja2 render,
  compose, SQLite transaction with ticket, entry, change and outbox row, enqueue), submitted
  from ``--clients`` threads as concurrent API requests would be (events that arrive together
  share a commit: ``gateway.store.uow``; ``--clients 1`` submits one at a time), while
  the gateway's own Dramatiq worker (in-process broker, ``--threads`` threads) claims the rows,
  sends them through ``RelaySender`` and records the outcomes; timed until the sink has all N;
- **floor**: the same N messages, already built (taken from the outbox), sent on one reused
  ``smtplib`` connection to the same sink.

Rounds alternate with floors (floor, pipeline, floor, pipeline, floor, ...): each pipeline run
is compared with the mean of the floors just before and just after it, which cancels the drift
of a shared machine's speed. A first pipeline run warms up and builds the floor's messages; it
is not counted. It prints messages per second, the ratio per round and the medians, and the CPU
used per email by this process and by the sink (the sink's bounds the floor).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.app import build_gateway
from gateway.broker import make_broker, make_worker
from gateway.models import Customer, TicketCreated, TicketState
from gateway.settings import Settings
from gateway.store.sqlite import use_fast_paths
from tests.services import free_port

#: Notifications per round.
EMAILS = 1500
#: Threads submitting events at once (concurrent API requests).
CLIENTS = 8
#: Rounds; the medians are reported.
ROUNDS = 9
#: Seconds a round may take before the benchmark gives up.
ROUND_LIMIT = 300.0

SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller
target, seen = int(sys.argv[2]), 0
class Sink:
    async def handle_DATA(self, server, session, envelope):
        global seen
        seen += 1
        if seen % target == 0:
            print(seen, flush=True)
        return "250 2.0.0 OK"
controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
sys.stdin.read()
controller.stop()
"""

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def event(n: int, round_: int) -> TicketCreated:
    return TicketCreated(
        event_id=f"bench-{round_}-{n}", occurred_at=T0 + timedelta(seconds=n), ticket_id=f"T-{round_}-{n}",
        title=f"Printer number {n} prints blank pages",
        description="Since this morning every page comes out blank.\nI already changed the cartridge twice.",
        state=TicketState.SUBMITTED, created_by="customer",
        customer=Customer(id=f"c-{n}", email=f"customer{n}@example.com", name=f"Customer {n}", locale="en"),
    )


class Sink:
    """The SMTP sink process."""

    def __init__(self, port: int, emails: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SINK, str(port), str(emails)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError("the SMTP sink did not start")

    def wait_batch(self) -> None:
        """Block until the sink has taken another full batch of emails."""
        assert self.process.stdout is not None
        if not self.process.stdout.readline():
            raise RuntimeError("the SMTP sink died")

    def cpu_seconds(self) -> float | None:
        """CPU time the sink process has used so far (Linux ``/proc``; None elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


def sink_share(sink: Sink, before: float | None, emails: int) -> str:
    """``, sink x.xx ms``: the sink's CPU per email since ``before`` (it bounds the floor)."""
    now = sink.cpu_seconds()
    return "" if now is None or before is None else f", the sink's {1000 * (now - before) / emails:.2f} ms"


def run_pipeline(
    round_: int, *, emails: int, threads: int, clients: int, sink: Sink, port: int, folder: Path
) -> tuple[float, list[bytes]]:
    """One pipeline run on a fresh gateway; messages per second and the emails it sent."""
    settings = Settings(
        database_url=f"sqlite:///{folder / f'bench-{round_}.sqlite3'}",
        smtp_relay_url=f"smtp://127.0.0.1:{port}",
        api_keys=("bench-key-0123456789abcdef",),
        secret_keys=((1, b"bench-secret-0123456789"),),
        worker_threads=threads,
    )
    gw = build_gateway(settings, broker=make_broker(None))
    worker = make_worker(gw.jobs.broker, threads=threads)
    worker.start()
    try:
        started, cpu, sink_cpu = time.perf_counter(), time.process_time(), sink.cpu_seconds()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            for applied in pool.map(lambda n: gw.events.ticket_created(event(n, round_), now=T0), range(emails)):
                assert not applied.replayed
        sink.wait_batch()
        pipeline = emails / (time.perf_counter() - started)
        print(f"  pipeline: {1000 * (time.process_time() - cpu) / emails:.2f} ms of this process's CPU per email"
              f"{sink_share(sink, sink_cpu, emails)}", flush=True)
    finally:
        worker.stop(timeout=10_000)
        close = getattr(gw.sender, "close", None)
        if close is not None:
            close()
    sent = gw.outbox.recent(limit=emails)
    assert len(sent) == emails and all(e.status.value == "sent" for e in sent)
    return pipeline, [e.raw for e in sent]


def run_floor(raws: list[bytes], *, sink: Sink, port: int) -> float:
    """The prebuilt ``raws`` on one reused smtplib connection; messages per second."""
    client = smtplib.SMTP("127.0.0.1", port, timeout=30)
    client.ehlo()
    started, cpu, sink_cpu = time.perf_counter(), time.process_time(), sink.cpu_seconds()
    for n, raw in enumerate(raws):
        client.sendmail("support@localhost", [f"customer{n}@example.com"], raw)
    sink.wait_batch()
    floor = len(raws) / (time.perf_counter() - started)
    print(f"  floor:    {1000 * (time.process_time() - cpu) / len(raws):.2f} ms of this process's CPU per email"
          f"{sink_share(sink, sink_cpu, len(raws))}", flush=True)
    client.quit()
    return floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--emails", type=int, default=EMAILS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--threads", type=int, default=4, help="worker threads (GATEWAY_WORKER_THREADS)")
    parser.add_argument("--clients", type=int, default=CLIENTS, help="threads submitting events at once")
    parser.add_argument("--dir", default=None, help="where the SQLite files go (default: a temporary folder)")
    parser.add_argument("--no-fast-paths", action="store_true",
                        help="run statements through SQLAlchemy instead of the sqlite3 driver (gateway.store.sqlite)")
    args = parser.parse_args()
    port = free_port()
    use_fast_paths(not args.no_fast_paths)
    sink = Sink(port, args.emails)
    pipelines, floors, ratios = [], [], []
    try:
        with tempfile.TemporaryDirectory(dir=args.dir) as folder:
            options = {"emails": args.emails, "threads": args.threads, "clients": args.clients, "sink": sink,
                       "port": port, "folder": Path(folder)}
            print("warm-up (not counted):", flush=True)
            _, raws = run_pipeline(0, **options)
            before = run_floor(raws, sink=sink, port=port)
            for round_ in range(1, args.rounds + 1):
                pipeline, _ = run_pipeline(round_, **options)
                after = run_floor(raws, sink=sink, port=port)
                floor = (before + after) / 2  # the floor on either side: cancels the machine's drift
                pipelines.append(pipeline)
                floors.append(floor)
                ratios.append(pipeline / floor)
                print(f"round {round_}: pipeline {pipeline:7.0f} msg/s   floor {floor:7.0f} msg/s "
                      f"(before {before:.0f}, after {after:.0f})   ratio {pipeline / floor:.0%}", flush=True)
                before = after
    finally:
        sink.stop()
    print(f"median: pipeline {statistics.median(pipelines):.0f} msg/s, floor {statistics.median(floors):.0f} msg/s, "
          f"ratio {statistics.median(ratios):.0%} (target >= 70%; rounds {', '.join(f'{r:.0%}' for r in ratios)}), "
          f"{args.emails} emails x {args.rounds} rounds, {args.clients} clients, {args.threads} worker threads, "
          f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
