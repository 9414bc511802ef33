"""Messenger stream: delivery latency to 1,000 connected clients, and the API process's memory.

Run: ``.venv/bin/python bench/bench_stream.py`` (options: ``--clients``, ``--customers``,
``--rate``, ``--seconds``).

Starts ``web2chat-gateway api`` as its own process (SQLite in a temporary folder), connects
``--clients`` event streams on loopback spread over ``--customers`` customers (so each change
reaches clients/customers tabs), then posts ``ticket.created`` events at a steady ``--rate``
for ``--seconds``. Latency is from just before the POST to the frame arriving at a client, so
it includes applying the event and committing it. The baseline is a bare Starlette SSE server
(same clients, same rate, no store: a publish sets an ``asyncio.Event``), run in this same
command. Bounded: every connection, loop and wait has a count or a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-helpdesk-key-0123456789"
#: Connections opened at once while connecting the clients.
CONNECT_BATCH = 100
#: Seconds to wait for the last deliveries after the last event.
DRAIN_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_kib(pid: int) -> dict[str, int]:
    """Resident and peak resident memory of process ``pid`` (KiB)."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def wait_healthy(base: str, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"no server on {base} after {deadline}s")


class Clients:
    """``count`` raw SSE connections on asyncio; records when each ticket's frame arrives."""

    def __init__(self, port: int, paths: list[str], headers: str) -> None:
        self.port, self.paths, self.headers = port, paths, headers
        self.arrivals: dict[str, list[float]] = {}
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def connect_all(self) -> None:
        for start in range(0, len(self.paths), CONNECT_BATCH):
            batch = self.paths[start:start + CONNECT_BATCH]
            readers = await asyncio.gather(*(self._open(p) for p in batch))
            self.tasks.extend(asyncio.ensure_future(self._read(reader)) for reader in readers)

    async def _open(self, path: str) -> asyncio.StreamReader:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{self.headers}Accept: text/event-stream\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        self.writers.append(writer)
        while True:  # until the stream says it is joined
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line:
                raise SystemExit(f"{path}: connection closed before the stream started")
            if line.startswith(b": connected") or line.startswith(b"connected"):
                return reader

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            if line.startswith(b"data: "):
                now = time.perf_counter()
                ticket = json.loads(line[6:])["ticket"]["id"]
                self.arrivals.setdefault(ticket, []).append(now)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


def publish(
    post: Callable[[int], None], *, rate: float, seconds: float, sent: dict[str, float], answered: dict[str, float]
) -> None:
    """Call ``post(n)`` at a steady ``rate`` for ``seconds`` (bounded by count)."""
    total = int(rate * seconds)
    start = time.perf_counter()
    for n in range(total):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[f"B-{n}"] = time.perf_counter()
        post(n)
        answered[f"B-{n}"] = time.perf_counter()


def measure(name: str, port: int, pid: int, args: argparse.Namespace, *, path: Callable[[str], str],
            headers: str, post: Callable[[int, str], None]) -> dict[str, float]:
    customers = [f"c-{i}" for i in range(args.customers)]
    paths = [path(customers[i % len(customers)]) for i in range(args.clients)]
    idle = memory_kib(pid)["VmRSS"]
    clients = Clients(port, paths, headers)
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    loop = asyncio.new_event_loop()
    loop.run_until_complete(clients.connect_all())
    connected = memory_kib(pid)["VmRSS"]
    publisher = threading.Thread(
        target=publish, args=(lambda n: post(n, customers[n % len(customers)]),),
        kwargs={"rate": args.rate, "seconds": args.seconds, "sent": sent, "answered": answered},
    )
    publisher.start()
    deadline = time.monotonic() + args.seconds + 30
    while publisher.is_alive() and time.monotonic() < deadline:
        loop.run_until_complete(asyncio.sleep(0.05))
    expected = int(args.rate * args.seconds) * (args.clients // args.customers)
    end = time.monotonic() + DRAIN_SECONDS
    while sum(map(len, clients.arrivals.values())) < expected and time.monotonic() < end:
        loop.run_until_complete(asyncio.sleep(0.05))
    latencies = sorted((t - sent[k]) * 1000 for k, times in clients.arrivals.items() if k in sent for t in times)
    mem = memory_kib(pid)
    clients.close()
    loop.run_until_complete(asyncio.sleep(0.1))
    loop.close()
    delivered = len(latencies)
    if os.environ.get("BENCH_DEBUG"):
        for k in sorted(sent, key=lambda k: sent[k]):
            times = [round((t - sent[k]) * 1000) for t in clients.arrivals.get(k, [])]
            print(k, round((answered[k] - sent[k]) * 1000), min(times), max(times))
    posts = sorted((answered[k] - sent[k]) * 1000 for k in answered)
    fanout = sorted((t - answered[k]) * 1000 for k, times in clients.arrivals.items() if k in answered for t in times)
    result = {
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(0.99 * (delivered - 1))] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
        "delivered": delivered, "expected": expected,
        "post_p50": statistics.median(posts), "post_p99": posts[int(0.99 * (len(posts) - 1))],
        "fanout_p50": statistics.median(fanout), "fanout_p99": fanout[int(0.99 * (len(fanout) - 1))],
        "rss_idle": idle / 1024, "rss_connected": connected / 1024, "rss_peak": mem["VmHWM"] / 1024,
    }
    print(f"{name:<9} delivered {delivered}/{expected}  latency p50 {result['p50']:.1f} ms  p99 {result['p99']:.1f} ms"
          f"  max {result['max']:.1f} ms\n{'':<10}POST answered p50 {result['post_p50']:.1f} ms, p99 "
          f"{result['post_p99']:.1f} ms; after the answer p50 {result['fanout_p50']:.1f} ms, p99 "
          f"{result['fanout_p99']:.1f} ms\n{'':<10}RSS idle {result['rss_idle']:.0f} MiB, with {args.clients} streams "
          f"{result['rss_connected']:.0f} MiB, peak {result['rss_peak']:.0f} MiB", flush=True)
    return result


def run_gateway(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    port = free_port()
    env = {
        **os.environ, "GATEWAY_DATABASE_URL": f"sqlite:///{folder / 'bench.sqlite3'}", "GATEWAY_API_PORT": str(port),
        "GATEWAY_API_KEYS": KEY, "GATEWAY_SMTP_PORT": str(free_port()),
    }
    server = subprocess.Popen([sys.executable, "-m", "gateway.cli", "api"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    try:
        wait_healthy(f"http://127.0.0.1:{port}")

        def post(n: int, customer: str) -> None:
            event = {
                "type": "ticket.created", "id": f"bench-{n}", "occurred_at": "2026-11-26T10:00:00Z",
                "ticket": {"id": f"B-{n}", "title": f"Ticket {n}", "state": "submitted", "created_by": "teammate"},
                "customer": {"id": customer, "email": f"{customer}@bench.example.test", "name": customer},
            }
            client.post("/v1/events", json=event).raise_for_status()

        return measure("gateway", port, server.pid, args, path=lambda c: f"/v1/customers/{c}/events",
                       headers=f"Authorization: Bearer {KEY}\r\n", post=post)
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=30)


def run_baseline(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve-baseline", str(port)], cwd=ROOT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        return measure("baseline", port, server.pid, args, path=lambda c: f"/events/{c}", headers="",
                       post=lambda n, c: client.post(f"/publish/{c}/B-{n}").raise_for_status())
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=30)


def serve_baseline(port: int) -> None:
    """A bare SSE fan-out: per customer, an ``asyncio.Event`` swapped on each publish; no store, no keys."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    latest: dict[str, tuple[str, asyncio.Event]] = {}

    async def events(request):  # type: ignore[no-untyped-def]
        customer = request.path_params["customer"]

        async def body():  # type: ignore[no-untyped-def]
            yield b": connected\n\n"
            while True:
                _, arrived = latest.setdefault(customer, ("", asyncio.Event()))
                await arrived.wait()
                ticket = latest[customer][0]
                yield f"event: entry\ndata: {json.dumps({'ticket': {'id': ticket}})}\n\n".encode()

        return StreamingResponse(body(), media_type="text/event-stream")

    async def publish_one(request):  # type: ignore[no-untyped-def]
        customer, ticket = request.path_params["customer"], request.path_params["ticket"]
        _, arrived = latest.get(customer, ("", asyncio.Event()))
        latest[customer] = (ticket, asyncio.Event())
        arrived.set()
        return PlainTextResponse("ok")

    async def healthz(request):  # type: ignore[no-untyped-def]
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/events/{customer}", events), Route("/publish/{customer}/{ticket}", publish_one,
                                                                        methods=["POST"]), Route("/healthz", healthz)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve-baseline", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(args.serve_baseline)
        return
    print(f"{args.clients} streams over {args.customers} customers, {args.rate:g} events/s for {args.seconds:g} s "
          f"({args.clients // args.customers} deliveries per event)", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        gateway = run_gateway(args, Path(folder))
    baseline = run_baseline(args)
    print(f"ratio gateway/baseline: p50 {gateway['p50'] / baseline['p50']:.1f}x, p99 "
          f"{gateway['p99'] / baseline['p99']:.1f}x, peak RSS {gateway['rss_peak'] / baseline['rss_peak']:.1f}x")


if __name__ == "__main__":
    main()
