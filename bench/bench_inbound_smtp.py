"""Inbound SMTP throughput: the gateway (every message committed before 250) against a bare aiosmtpd server.

    .venv/bin/python bench/bench_inbound_smtp.py [--messages 10000] [--sessions 20] [--size 4096] [--new-connections]

In one run: a bare aiosmtpd server that answers 250 and keeps nothing; the gateway's listener
(RCPT checks the reply token, DATA waits for the group commit into SQLite WAL with
synchronous=FULL); and two gateway processes on one port (SO_REUSEPORT). Each in its own
process; the load is Postfix's ``smtp-source`` (``apt-get install postfix``) with 20 sessions
sending 4 KB messages to a valid reply address, or, without it, a Python asyncio client. It
prints accepted messages per second, the ratio to the bare server, each server process's CPU
time per message, and checks that the store holds every message the gateway accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select

from gateway.settings import Settings

DOMAIN = "reply.bench.test"
SENDER = "ada@customer.bench.test"


def _settings(db: str, port: int, processes: int = 1) -> Settings:
    return Settings(database_url=db, smtp_port=port, reply_domain=DOMAIN, smtp_processes=processes,
                    secret_keys=((1, b"bench-secret-key-0123456789"),), api_keys=("bench-api-key-0123456789",))


def prepare(db: str) -> str:
    """Create a ticket; return its reply address."""
    from datetime import UTC, datetime

    from dramatiq.brokers.stub import StubBroker

    from gateway.app import build_gateway
    from gateway.models import Customer, TicketCreated, TicketState

    gw = build_gateway(_settings(db, 0), broker=StubBroker())
    now = datetime.now(UTC)
    gw.events.ticket_created(TicketCreated(
        event_id="bench", occurred_at=now, ticket_id="B-1", title="Bench", description="", state=TicketState.SUBMITTED,
        created_by="customer", customer=Customer(id="c", email=SENDER, name="Ada")), now=now)
    ticket = gw.tickets.get("B-1")
    assert ticket is not None
    return gw.keyring.address_for(ticket.key, SENDER)


def serve_bare(port: int, ready: Any, stop: Any) -> None:
    """aiosmtpd answering 250 to everything and keeping nothing."""
    from aiosmtpd.controller import Controller

    class Bare:
        accepted = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.accepted += 1
            return "250 OK"

    handler = Bare()
    controller = Controller(handler, hostname="127.0.0.1", port=port, decode_data=False)
    controller.start()
    started = _cpu()
    ready.set()
    stop.wait()
    controller.stop()
    print(f"    (process CPU {_per_message(_cpu() - started, handler.accepted)} per message)", flush=True)


def serve_gateway(db: str, port: int, processes: int, fast: bool, ready: Any, stop: Any) -> None:
    """The gateway's own server and group commit, as ``web2chat-gateway smtp`` runs them."""
    from dramatiq.brokers.stub import StubBroker

    from gateway.app import build_gateway, build_smtp_server
    from gateway.store.sqlite import use_fast_paths

    use_fast_paths(fast)
    gw = build_gateway(_settings(db, port, processes), broker=StubBroker(), migrate_sqlite=False)
    commits = gw.db.mail
    commits.start()
    server = build_smtp_server(gw)
    server.start()
    started = _cpu()
    ready.set()
    stop.wait()
    server.stop()
    commits.stop()
    cpu = _per_message(_cpu() - started, commits.committed)
    print(f"    (process committed {commits.committed} messages in {commits.commits} transactions;"
          f" CPU {cpu} per message)", flush=True)


def _cpu() -> float:
    """CPU seconds this process used so far (every thread, user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _per_message(seconds: float, messages: int) -> str:
    return f"{seconds / messages * 1e6:,.0f} µs" if messages else "n/a"


async def _client(port: int, to: str, body: bytes, count: int, reuse: bool) -> int:
    accepted = 0
    reader = writer = None

    async def command(line: bytes) -> bytes:
        assert writer is not None and reader is not None
        writer.write(line + b"\r\n")
        reply = b""
        while True:
            chunk = await reader.readline()
            reply += chunk
            if len(chunk) < 4 or chunk[3:4] == b" ":
                return reply

    for _ in range(count):
        if writer is None:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.readline()
            await command(b"EHLO bench.test")
        await command(b"MAIL FROM:<" + SENDER.encode() + b">")
        await command(b"RCPT TO:<" + to.encode() + b">")
        await command(b"DATA")
        if (await command(body + b"\r\n."))[:3] == b"250":
            accepted += 1
        if not reuse:
            await command(b"QUIT")
            writer.close()
            writer = None
    if writer is not None:
        await command(b"QUIT")
        writer.close()
    return accepted


def drive(port: int, to: str, *, messages: int, sessions: int, size: int, reuse: bool) -> tuple[float, int]:
    """Send ``messages`` over ``sessions`` concurrent sessions; (seconds taken, messages accepted)."""
    source = shutil.which("smtp-source")
    started = time.perf_counter()
    if source:
        args = [source, "-s", str(sessions), "-m", str(messages), "-l", str(size), "-f", SENDER, "-t", to]
        done = subprocess.run([*args, *(["-d"] if reuse else []), f"127.0.0.1:{port}"], capture_output=True)
        accepted = messages if done.returncode == 0 else 0
        if done.returncode:
            print("    smtp-source:", done.stderr.decode().strip()[:200])
        return time.perf_counter() - started, accepted
    line = b"X" * 78 + b"\r\n"
    body = b"From: <" + SENDER.encode() + b">\r\nSubject: bench\r\n\r\n" + line * (size // len(line))
    per = [messages // sessions + (1 if i < messages % sessions else 0) for i in range(sessions)]

    async def run() -> int:
        return sum(await asyncio.gather(*(_client(port, to, body, n, reuse) for n in per)))

    accepted = asyncio.run(run())
    return time.perf_counter() - started, accepted


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(
    name: str, targets: list[tuple[Any, tuple[Any, ...]]], port: int, to: str, args: argparse.Namespace
) -> float:
    """Start the server processes, drive them, stop them; the accepted rate."""
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    procs = []
    for target, extra in targets:
        ready = ctx.Event()
        proc = ctx.Process(target=target, args=(*extra, ready, stop))
        proc.start()
        if not ready.wait(60):
            raise SystemExit(f"{name}: server did not start")
        procs.append(proc)
    seconds, accepted = drive(port, to, messages=args.messages, sessions=args.sessions, size=args.size,
                              reuse=not args.new_connections)
    stop.set()
    for proc in procs:
        proc.join(60)
    rate = accepted / seconds
    print(f"  {name:<44} {rate:>8,.0f} msg/s  ({accepted} accepted in {seconds:.2f} s)", flush=True)
    return rate


def stored_count(db: str) -> int:
    from gateway.store import make_engine
    from gateway.store.tables import inbound_messages

    with make_engine(db).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbound_messages)).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--new-connections", action="store_true", help="a new connection per message")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; medians are reported")
    parser.add_argument("--no-fast-paths", action="store_true",
                        help="store through SQLAlchemy instead of the sqlite3 driver (gateway.store.sqlite)")
    args = parser.parse_args()
    driver = "smtp-source" if shutil.which("smtp-source") else "python asyncio client"
    mode = "new connection per message" if args.new_connections else "connections reused"
    print(f"{args.messages} messages of {args.size} bytes, {args.sessions} sessions, {mode}, driver: {driver}")
    rates: dict[object, list[float]] = {"bare": [], 1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(1, args.rounds + 1):  # interleaved, so load from elsewhere hits every server alike
            print(f"round {round_}")
            port = _free_port()
            rates["bare"].append(measure("bare aiosmtpd (250, stores nothing)", [(serve_bare, (port,))], port,
                                         "x@y.test", args))
            for processes in (1, 2):
                db = f"sqlite:///{Path(tmp) / f'bench{round_}-{processes}.sqlite3'}"
                to = prepare(db)
                port = _free_port()
                label = (f"gateway, {processes} processes (SO_REUSEPORT)" if processes > 1
                         else "gateway, 1 process (group commit, SQLite)")
                target = (serve_gateway, (db, port, processes, not args.no_fast_paths))
                rates[processes].append(measure(label, [target] * processes, port, to, args))
                stored = stored_count(db)
                verdict = "every one committed" if stored == args.messages else "MISSING"
                print(f"    stored {stored} of {args.messages} accepted: {verdict}")
    bare, one, two = (statistics.median(rates[k]) for k in ("bare", 1, 2))
    print(f"medians of {args.rounds}: bare {bare:,.0f}, gateway 1 process {one:,.0f}, 2 processes {two:,.0f} msg/s")
    print(f"ratio gateway/bare, 1 process:  {one / bare:.0%}")
    print(f"ratio gateway/bare, 2 processes: {two / bare:.0%}")
    print(f"scaling 2 processes / 1 process: {two / one:.2f}x")


if __name__ == "__main__":
    main()
