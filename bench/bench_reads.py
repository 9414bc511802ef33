"""Reads under write load: Messenger and API reads and RCPT checks, on an idle gateway and while it is written to.

Run: ``.venv/bin/python bench/bench_reads.py`` (options: ``--seconds``, ``--readers``, ``--writers``,
``--interval``, ``--tickets``, ``--customers``).

Starts ``web2chat-gateway serve`` as its own process, as a user would (SQLite in a temporary
folder, free loopback ports, a fixed API key, reply and Messenger secrets, all through
``GATEWAY_*`` variables), seeds tickets (each with two teammate replies; a quarter also with a
customer reply by email) and one Messenger key per customer, then measures, in two phases of
``--seconds`` each:

- **idle**: only the readers;
- **load**: the same readers while one process posts ``ticket.created`` / ``ticket.reply`` events
  at full speed from ``--writers`` threads and another sends email replies to reply addresses
  over SMTP at full speed from ``--writers`` connections (after one second of warm-up).

Each of the ``--readers`` reader processes does one read every ``--interval`` ms (no catch-up: a
slow read delays the next), taking the kinds in turn: a ticket's thread with the customer's
Messenger key, the customer's Recent tickets with that key, the same thread with the help desk's
key, and an RCPT check (on a kept-open SMTP session: MAIL FROM, RCPT TO a valid reply address,
timed from sending RCPT to its answer, then RSET). The gateway remembers a verified reply
address for 30 s, so RCPT checks are reported twice more: the first check of a ticket's address
(reads the store; each phase has its own tickets for these, spread evenly over the phase) and
repeats (answered from memory). It prints count, p50, p99 and max per kind for both phases, the
p99 ratio load/idle against the targets (within 3x of idle and under 50 ms), the writes achieved
during the load phase, the gateway's CPU, every error and the warnings in the gateway's log.

Only loopback traffic. Bounded: every loop has a deadline, every wait a timeout; everything
started (gateway, reader and writer processes) is stopped on the way out, Ctrl-C and errors
included.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import multiprocessing as mp
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from split_topology import Split, die_with_parent, free_ports, reachable

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-helpdesk-key-0123456789"
SECRET_KEYS = "1:bench-reply-secret-0123456789"
MESSENGER_SECRET = "bench-messenger-secret-0123456789"
DOMAIN = "reply.bench.test"
#: Seconds any one request may take before it counts as a timeout.
REQUEST_TIMEOUT = 10.0
#: Seconds the gateway and each helper process have to get ready.
START_TIMEOUT = 60.0
#: Seconds the writers run before the loaded phase's measurements start.
WARMUP_SECONDS = 1.0
#: The gateway's RCPT cache (``inbound.recipients.TICKET_CACHE_SECONDS``) and safe margins around it.
RCPT_CACHE_SECONDS = 30.0
#: Redis database the split topology uses (flushed before and after).
SPLIT_REDIS_DB = 7
RCPT_SURELY_CACHED = RCPT_CACHE_SECONDS - 5
RCPT_SURELY_EXPIRED = RCPT_CACHE_SECONDS + 1
#: Targets: p99 under load within this factor of idle, and under this many ms.
TARGET_RATIO, TARGET_MS = 3.0, 50.0

THREAD, RECENT, HELPDESK, RCPT = "messenger thread", "recent tickets", "help-desk thread", "rcpt check"
RCPT_FIRST, RCPT_REPEAT = "  rcpt, first check (store)", "  rcpt, repeat (cached)"
KINDS = (THREAD, RECENT, HELPDESK, RCPT)
ROWS = (*KINDS, RCPT_FIRST, RCPT_REPEAT)


# --- what the helper processes get --------------------------------------------------------------


@dataclass(frozen=True)
class Ticket:
    id: str
    customer: str
    email: str
    address: str  # the Reply-To of its ticket_created email


@dataclass(frozen=True)
class Plan:
    """Everything a reader or writer process needs (pickled to it)."""

    api_port: int
    smtp_port: int
    seconds: float
    warmup: float
    interval: float
    writers: int
    phase: str
    tickets: tuple[Ticket, ...]  # read by the readers
    tokens: dict[str, str]  # Messenger key per customer
    targets: tuple[Ticket, ...]  # written to by the writers
    readers: int = 1
    rcpt_pool: tuple[Ticket, ...] = ()  # this reader's addresses for first RCPT checks


@dataclass
class Tally:
    """What one process measured within the window: latencies (ms) per kind, counts, errors."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    done: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        for kind, values in other.latencies.items():
            self.latencies.setdefault(kind, []).extend(values)
        self.done.update(other.done)
        self.errors.update(other.errors)


# --- small clients -------------------------------------------------------------------------------


class Http:
    """One keep-alive HTTP/1.1 connection on loopback (http.client: little client CPU)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            content = response.read()
        except BaseException:
            self.close()  # no retry: the error is counted, the next request reconnects
            raise
        if response.will_close:
            self.close()
        return response.status, content

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Smtp:
    """One kept-open SMTP session; reconnects after an error."""

    def __init__(self, port: int, name: str) -> None:
        self.port, self.name = port, name
        self.smtp: smtplib.SMTP | None = None

    def session(self) -> smtplib.SMTP:
        if self.smtp is None:
            smtp = smtplib.SMTP("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            smtp.ehlo(self.name)
            self.smtp = smtp
        return self.smtp

    def drop(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.close()
            self.smtp = None

    def quit(self) -> None:
        if self.smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self.smtp.quit()
        self.drop()


def error_name(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, TimeoutError | socket.timeout) else type(exc).__name__


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


# --- helper processes ----------------------------------------------------------------------------


def _child_start(out: Queue[Any], go: Event) -> float | None:
    """Tell the parent this process is ready; the instant it says go (None: it never did)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    out.put(("ready", os.getpid()))
    if not go.wait(START_TIMEOUT):
        return None
    return time.monotonic()


def reader_main(index: int, plan: Plan, go: Event, stop: Event, out: Queue[Any]) -> None:
    """Reads at a steady pace until the window ends; sends a :class:`Tally` back."""
    tally = Tally()
    rng = random.Random(index)
    web = Http(plan.api_port)
    smtp = Smtp(plan.smtp_port, f"reader{index}.bench.test")
    cold = list(plan.rcpt_pool)
    warm: list[tuple[float, Ticket]] = []  # (when first checked, ticket)
    try:
        smtp.session()  # connect before the window
        started = _child_start(out, go)
        if started is None:
            return
        start = started + plan.warmup + plan.interval * index / plan.readers
        end = started + plan.warmup + plan.seconds
        cold_every = plan.seconds / max(1, len(cold))
        next_cold, last_first = start, False
        time.sleep(max(0.0, start - time.monotonic()))
        n = 0
        next_at = time.monotonic()
        while not stop.is_set() and (now := time.monotonic()) < end:
            kind = KINDS[n % len(KINDS)]
            n += 1
            ticket = rng.choice(plan.tickets)
            try:
                if kind == RCPT:
                    picked = _pick_rcpt(now, cold, warm, next_cold, last_first, rng)
                    if picked is not None:
                        first, ticket = picked
                        last_first = first
                        if first:
                            next_cold += cold_every
                        ms = _rcpt(smtp, ticket, tally)
                        if ms is not None:
                            tally.latencies.setdefault(RCPT, []).append(ms)
                            tally.latencies.setdefault(RCPT_FIRST if first else RCPT_REPEAT, []).append(ms)
                else:
                    token = KEY if kind == HELPDESK else plan.tokens[ticket.customer]
                    path = (f"/v1/customers/{ticket.customer}/recent-tickets" if kind == RECENT
                            else f"/v1/tickets/{ticket.id}/thread")
                    t0 = time.perf_counter()
                    status, _ = web.request("GET", path, token)
                    ms = (time.perf_counter() - t0) * 1000
                    if status == 200:
                        tally.latencies.setdefault(kind, []).append(ms)
                    else:
                        tally.errors[f"{kind}: HTTP {status}"] += 1
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                tally.errors[f"{kind}: {error_name(exc)}"] += 1
                if kind == RCPT:
                    smtp.drop()
            next_at = max(next_at + plan.interval, time.monotonic())
            time.sleep(max(0.0, next_at - time.monotonic()))
    finally:
        web.close()
        smtp.quit()
        out.put(("tally", os.getpid(), tally))


def _pick_rcpt(
    now: float, cold: list[Ticket], warm: list[tuple[float, Ticket]], next_cold: float, last_first: bool,
    rng: random.Random,
) -> tuple[bool, Ticket] | None:
    """(first check?, ticket) for the next RCPT check, or None to skip this turn.

    A first check comes when its turn in the phase is due (spread evenly over the phase), but
    never twice in a row while a repeat is possible, so a slow phase still gets both; a repeat
    uses an address first checked less than 25 s ago (surely in the gateway's 30 s cache).
    Addresses first checked over 31 s ago are surely out of the cache and count as first again.
    """
    for first_at, ticket in [w for w in warm if now - w[0] > RCPT_SURELY_EXPIRED]:
        warm.remove((first_at, ticket))
        cold.append(ticket)
    fresh = [t for first_at, t in warm if now - first_at < RCPT_SURELY_CACHED]
    if cold and (not fresh or (now >= next_cold and not last_first)):
        ticket = cold.pop(0)
        warm.append((now, ticket))
        return True, ticket
    if fresh:
        return False, rng.choice(fresh)
    return None


def _rcpt(smtp: Smtp, ticket: Ticket, tally: Tally) -> float | None:
    """MAIL FROM, RCPT TO (timed), RSET on the kept session; the RCPT's ms, or None if refused."""
    session = smtp.session()
    code, _ = session.mail(ticket.email)
    if code != 250:
        tally.errors[f"{RCPT}: MAIL {code}"] += 1
        session.rset()
        return None
    t0 = time.perf_counter()
    code, answer = session.rcpt(ticket.address)
    ms = (time.perf_counter() - t0) * 1000
    session.rset()
    if code != 250:
        tally.errors[f"{RCPT}: RCPT {code} {answer.decode(errors='replace')[:60]}"] += 1
        return None
    return ms


def event_writer_main(plan: Plan, go: Event, stop: Event, out: Queue[Any]) -> None:
    """``--writers`` threads posting ticket.created and ticket.reply (in turn) at full speed."""

    def work(thread: int, start: float, end: float, tally: Tally) -> None:
        web = Http(plan.api_port)
        rng = random.Random(thread)
        n = 0
        try:
            while not stop.is_set() and (now := time.monotonic()) < end:
                n += 1
                if n % 2:
                    customer = rng.choice(plan.targets)
                    kind, event = "ticket.created", {
                        "type": "ticket.created", "id": f"{plan.phase}-c-{thread}-{n}", "occurred_at": now_iso(),
                        "ticket": {"id": f"{plan.phase}-{thread}-{n}", "title": f"Load ticket {thread}-{n}",
                                   "description": "The scanner jams on every page.\nIt started today.",
                                   "state": "submitted", "created_by": "customer"},
                        "customer": {"id": customer.customer, "email": customer.email, "name": "Bench customer"},
                    }
                else:
                    target = rng.choice(plan.targets)
                    kind, event = "ticket.reply", {
                        "type": "ticket.reply", "id": f"{plan.phase}-r-{thread}-{n}", "occurred_at": now_iso(),
                        "ticket_id": target.id,
                        "reply": {"id": f"{plan.phase}-reply-{thread}-{n}", "author": {"name": "Grace"},
                                  "text": f"Could you try again with the new driver? ({n})"},
                    }
                t0 = time.perf_counter()
                try:
                    status, _ = web.request("POST", "/v1/events", KEY, event)
                except Exception as exc:  # noqa: BLE001 - counted and shown
                    if now >= start:
                        tally.errors[f"{kind}: {error_name(exc)}"] += 1
                    continue
                ms = (time.perf_counter() - t0) * 1000
                if now < start:
                    continue
                if status == 202:
                    tally.done["events"] += 1
                    tally.latencies.setdefault("event POST", []).append(ms)
                else:
                    tally.errors[f"{kind}: HTTP {status}"] += 1
        finally:
            web.close()

    _run_writer_threads(plan, go, stop, out, work)


def inbound_writer_main(plan: Plan, go: Event, stop: Event, out: Queue[Any]) -> None:
    """``--writers`` SMTP clients sending replies to reply addresses at full speed (one session each)."""

    def work(thread: int, start: float, end: float, tally: Tally) -> None:
        smtp = Smtp(plan.smtp_port, f"writer{thread}.bench.test")
        rng = random.Random(1000 + thread)
        n = 0
        try:
            while not stop.is_set() and (now := time.monotonic()) < end:
                n += 1
                target = rng.choice(plan.targets)
                message = (
                    f"From: Bench customer <{target.email}>\r\nTo: <{target.address}>\r\n"
                    f"Subject: Re: [#{target.id}] Bench ticket\r\nDate: {formatdate()}\r\n"
                    f"Message-ID: <{plan.phase}-{thread}-{n}-{uuid.uuid4().hex}@customer.bench.test>\r\n"
                    f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
                    f"Tried again, message {n}: still blank pages.\r\n\r\n"
                    f"On {formatdate()}, Web2Chat Support wrote:\r\n> Could you try again?\r\n"
                ).encode()
                t0 = time.perf_counter()
                try:
                    session = smtp.session()
                    code, answer = session.mail(target.email)
                    if code == 250:
                        code, answer = session.rcpt(target.address)
                    if code == 250:
                        code, answer = session.data(message)
                    else:
                        session.rset()
                except Exception as exc:  # noqa: BLE001 - counted and shown
                    smtp.drop()
                    if now >= start:
                        tally.errors[f"inbound: {error_name(exc)}"] += 1
                    continue
                ms = (time.perf_counter() - t0) * 1000
                if now < start:
                    continue
                if code == 250:
                    tally.done["inbound"] += 1
                    tally.latencies.setdefault("inbound message", []).append(ms)
                else:
                    tally.errors[f"inbound: {code} {answer.decode(errors='replace')[:60]}"] += 1
        finally:
            smtp.quit()

    _run_writer_threads(plan, go, stop, out, work)


def _run_writer_threads(
    plan: Plan, go: Event, stop: Event, out: Queue[Any], work: Callable[[int, float, float, Tally], None]
) -> None:
    tallies = [Tally() for _ in range(plan.writers)]
    try:
        started = _child_start(out, go)
        if started is None:
            return
        start, end = started + plan.warmup, started + plan.warmup + plan.seconds
        threads = [threading.Thread(target=work, args=(i, start, end, tallies[i]), daemon=True)
                   for i in range(plan.writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(end - time.monotonic() + REQUEST_TIMEOUT + 5)
    finally:
        total = Tally()
        for tally in tallies:
            total.add(tally)
        out.put(("tally", os.getpid(), total))


# --- the gateway ---------------------------------------------------------------------------------


#: The ``GATEWAY_*`` settings of both topologies (the store, the broker and the ports are added to them).
SETTINGS = {
    "GATEWAY_API_KEYS": KEY, "GATEWAY_SECRET_KEYS": SECRET_KEYS, "GATEWAY_MESSENGER_SECRET": MESSENGER_SECRET,
    "GATEWAY_REPLY_DOMAIN": DOMAIN,
    # No unseen-reply email falls due during the run, so both phases see the same work.
    "GATEWAY_UNSEEN_DELAY_SECONDS": "3600", "GATEWAY_UNSEEN_MAX_WAIT_SECONDS": "3600",
}


class SplitGateway:
    """The split topology (``bench/split_topology.py``: api, smtp, two workers on PostgreSQL and Redis) with the
    face of :class:`Gateway`."""

    def __init__(self, folder: Path) -> None:
        self.split = Split(folder, SETTINGS, key=KEY, workers=2, redis_db=SPLIT_REDIS_DB, prefix="bench_reads")
        self.api_port, self.smtp_port = self.split.api_port, self.split.smtp_port
        self.log_path = folder
        self.stopped_in: float | None = None
        self.started = False

    def start(self) -> None:
        self.split.start()
        self.started = True

    def stop(self) -> None:
        if not self.started:
            return
        began = time.monotonic()
        self.split.stop()
        self.started = False
        self.stopped_in = time.monotonic() - began

    def cpu_seconds(self) -> float:
        return self.split.cpu_seconds()

    def log_problems(self) -> list[str]:
        return self.split.log_problems()


class Gateway:
    """``web2chat-gateway serve`` in its own process, configured through the environment."""

    def __init__(self, folder: Path) -> None:
        self.api_port, self.smtp_port = free_ports(2)
        self.log_path = folder / "gateway.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.env.update(SETTINGS)
        self.env.update({
            "GATEWAY_DATABASE_URL": f"sqlite:///{folder / 'gateway.sqlite3'}",
            "GATEWAY_API_PORT": str(self.api_port), "GATEWAY_SMTP_PORT": str(self.smtp_port),
        })
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped_in: float | None = None

    def start(self) -> None:
        found = shutil.which("web2chat-gateway", path=str(Path(sys.executable).parent))
        command = [found, "serve"] if found else [sys.executable, "-m", "gateway.cli", "serve"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        web = Http(self.api_port)
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if web.request("GET", "/healthz", KEY)[0] == 200:
                        with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=2):
                            return
                except OSError:
                    pass
                time.sleep(0.1)
        finally:
            web.close()
        raise SystemExit(f"the gateway did not answer within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        began = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            print("the gateway did not stop within 20 s of SIGTERM; killing it", flush=True)
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.stopped_in = time.monotonic() - began

    def cpu_seconds(self) -> float:
        """CPU time used by the gateway process so far (all threads, user and system)."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if re.search(r"WARNING|ERROR|CRITICAL|Traceback|Exception", line)]


# --- seeding -------------------------------------------------------------------------------------


def seed(gw: Gateway | SplitGateway, *, tickets: int, customers: int) -> tuple[list[Ticket], dict[str, str]]:
    """Create ``tickets`` tickets (two teammate replies each) over ``customers``; a Messenger key each."""
    local = threading.local()

    def call(method: str, path: str, body: Any = None, expect: int = 202) -> bytes:
        if not hasattr(local, "web"):
            local.web = Http(gw.api_port)
            opened.append(local.web)
        status, content = local.web.request(method, path, KEY, body)
        if status != expect:
            raise SystemExit(f"seeding: {method} {path} answered {status}: {content[:300]!r}")
        return bytes(content)

    def create(i: int) -> None:
        c = f"c-{i % customers}"
        call("POST", "/v1/events", {
            "type": "ticket.created", "id": f"seed-{i}", "occurred_at": now_iso(),
            "ticket": {"id": f"S-{i}", "title": f"Printer {i} prints blank pages",
                       "description": "Every page comes out blank.", "state": "submitted", "created_by": "customer"},
            "customer": {"id": c, "email": f"{c}@customer.bench.test", "name": f"Customer {c}"},
        })

    def replies(i: int) -> None:
        for r in range(2):
            call("POST", "/v1/events", {
                "type": "ticket.reply", "id": f"seed-{i}-r{r}", "occurred_at": now_iso(), "ticket_id": f"S-{i}",
                "reply": {"id": f"seed-reply-{i}-{r}", "author": {"name": "Grace"},
                          "text": f"Thanks for the report. Step {r + 1}: please check the toner."},
            })

    def token(c: int) -> tuple[str, str]:
        answer = json.loads(call("POST", "/v1/messenger-tokens", {"customer_id": f"c-{c}", "ttl_seconds": 7200},
                                 expect=201))
        return f"c-{c}", str(answer["token"])

    opened: list[Http] = []
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, range(tickets)))
            list(pool.map(replies, range(tickets)))
            tokens = dict(pool.map(token, range(customers)))
        outbox = json.loads(call("GET", f"/v1/outbox?limit={min(1000, tickets)}", expect=200))["emails"]
    finally:
        for web in opened:
            web.close()
    found: dict[str, Ticket] = {}
    for email in outbox:
        subject = re.match(r"\[#(S-\d+)\]", email["subject"])
        reply_to = re.search(r"^Reply-To: (\S+)\r?$", email["raw"], re.MULTILINE)
        if subject and reply_to:
            i = int(subject.group(1)[2:])
            c = f"c-{i % customers}"
            found[subject.group(1)] = Ticket(subject.group(1), c, email["to"], reply_to.group(1))
    if len(found) != tickets:
        raise SystemExit(f"seeding: found the reply address of {len(found)} of {tickets} tickets in the outbox")
    return [found[f"S-{i}"] for i in range(tickets)], tokens


def seed_customer_replies(gw: Gateway | SplitGateway, targets: list[Ticket]) -> None:
    """One emailed customer reply per ticket of ``targets``; waits until each is on its thread."""
    smtp = Smtp(gw.smtp_port, "seed.bench.test")
    try:
        for n, t in enumerate(targets):
            message = (f"From: <{t.email}>\r\nTo: <{t.address}>\r\nSubject: Re: [#{t.id}]\r\n"
                       f"Message-ID: <seed-{n}-{uuid.uuid4().hex}@customer.bench.test>\r\n\r\n"
                       "Toner checked, still blank.\r\n").encode()
            smtp.session().sendmail(t.email, [t.address], message)
    finally:
        smtp.quit()
    web = Http(gw.api_port)
    waiting = list(targets)
    deadline = time.monotonic() + 60
    try:
        while waiting and time.monotonic() < deadline:
            status, content = web.request("GET", f"/v1/tickets/{waiting[0].id}/thread", KEY)
            if status == 200 and b'"customer_reply"' in content:
                waiting.pop(0)
            else:
                time.sleep(0.1)
    finally:
        web.close()
    if waiting:
        raise SystemExit(f"seeding: {len(waiting)} emailed replies not on their threads after 60 s")


def wait_outbox_sent(gw: Gateway | SplitGateway, count: int) -> None:
    """Wait (up to 60 s) until the worker has handed every seeded email to the local outbox."""
    web = Http(gw.api_port)
    deadline = time.monotonic() + 60
    try:
        while True:
            status, content = web.request("GET", f"/v1/outbox?limit={min(1000, count)}", KEY)
            left = [e["id"] for e in json.loads(content)["emails"] if e["status"] != "sent"] if status == 200 else [0]
            if not left:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"seeding: {len(left)} seeded emails not sent after 60 s (outbox answered {status})")
            time.sleep(0.5)
    finally:
        web.close()


# --- phases and report ---------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    reads: Tally
    writes: Tally
    seconds: float
    cpu: float  # gateway CPU seconds within the window
    load: tuple[float, float, float]


def run_phase(ctx: SpawnContext, gw: Gateway | SplitGateway, args: argparse.Namespace, name: str, *,
              tickets: list[Ticket], tokens: dict[str, str], targets: list[Ticket], rcpt_pool: list[Ticket],
              load: bool) -> Phase:
    go, stop = ctx.Event(), ctx.Event()
    out: Queue[Any] = ctx.Queue()
    base = Plan(api_port=gw.api_port, smtp_port=gw.smtp_port, seconds=args.seconds,
                warmup=WARMUP_SECONDS if load else 0.0, interval=args.interval / 1000, writers=args.writers,
                phase=name, tickets=tuple(tickets), tokens=tokens, targets=tuple(targets))
    procs: list[SpawnProcess] = []
    readers: set[int] = set()
    reads, writes = Tally(), Tally()
    try:
        for i in range(args.readers):
            plan = dataclasses.replace(base, readers=args.readers, rcpt_pool=tuple(rcpt_pool[i::args.readers]))
            procs.append(ctx.Process(target=reader_main, args=(i, plan, go, stop, out), daemon=True))
        if load:
            procs.append(ctx.Process(target=event_writer_main, args=(base, go, stop, out), daemon=True))
            procs.append(ctx.Process(target=inbound_writer_main, args=(base, go, stop, out), daemon=True))
        for proc in procs:
            proc.start()
        readers = {p.pid for p in procs[:args.readers] if p.pid is not None}
        deadline = time.monotonic() + START_TIMEOUT
        for _ in procs:
            out.get(timeout=max(0.1, deadline - time.monotonic()))  # ("ready", pid)
        go.set()
        time.sleep(base.warmup)
        cpu0, t0 = gw.cpu_seconds(), time.monotonic()
        time.sleep(args.seconds)
        cpu1, t1 = gw.cpu_seconds(), time.monotonic()
        average = os.getloadavg()
        deadline = time.monotonic() + REQUEST_TIMEOUT + 15
        for _ in procs:
            _, pid, tally = out.get(timeout=max(0.1, deadline - time.monotonic()))
            (reads if pid in readers else writes).add(tally)
        return Phase(name, reads, writes, t1 - t0, cpu1 - cpu0, average)
    finally:
        stop.set()
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        out.close()
        out.cancel_join_thread()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def report(idle: Phase, loaded: Phase) -> None:
    print()
    for phase in (idle, loaded):
        rate = phase.cpu / phase.seconds * 100
        n = sum(len(v) for k, v in phase.reads.latencies.items() if k in KINDS)
        line = (f"{phase.name:<5} {phase.seconds:5.1f} s: {n} reads ({n / phase.seconds:.0f}/s), "
                f"gateway CPU {rate:.0f}% of one core, load average {phase.load[0]:.2f}")
        if phase is loaded:
            events, inbound = phase.writes.done["events"], phase.writes.done["inbound"]
            post = phase.writes.latencies.get("event POST", [])
            mail = phase.writes.latencies.get("inbound message", [])
            line += (f"\n      writes: {events} events ({events / phase.seconds:.0f}/s, POST p50 "
                     f"{percentile(post, 0.5):.1f} ms, p99 {percentile(post, 0.99):.1f} ms), {inbound} inbound "
                     f"accepted ({inbound / phase.seconds:.0f}/s, MAIL..DATA p50 {percentile(mail, 0.5):.1f} ms, "
                     f"p99 {percentile(mail, 0.99):.1f} ms)")
        print(line)
    print()
    print(f"{'ms':<28}{'idle n':>7}{'p50':>8}{'p99':>8}{'max':>8} |{'load n':>7}{'p50':>8}{'p99':>8}{'max':>8} |"
          f"{'p99 load/idle':>14}  target p99 <= {TARGET_RATIO:g}x idle and < {TARGET_MS:g} ms")
    for kind in ROWS:
        a, b = idle.reads.latencies.get(kind, []), loaded.reads.latencies.get(kind, [])
        pa, pb = percentile(a, 0.99), percentile(b, 0.99)
        ratio = pb / pa if a and b and pa > 0 else float("nan")
        verdict = ("met" if ratio <= TARGET_RATIO and pb < TARGET_MS else
                   f"missed ({'ratio' if ratio > TARGET_RATIO else ''}"
                   f"{' and ' if ratio > TARGET_RATIO and pb >= TARGET_MS else ''}"
                   f"{'over 50 ms' if pb >= TARGET_MS else ''})") if a and b else "n/a"
        print(f"{kind:<28}{len(a):>7}{percentile(a, 0.5):>8.1f}{pa:>8.1f}{max(a, default=float('nan')):>8.1f} |"
              f"{len(b):>7}{percentile(b, 0.5):>8.1f}{pb:>8.1f}{max(b, default=float('nan')):>8.1f} |"
              f"{ratio:>13.2f}x  {verdict}")
    errors = [(phase.name, what, count) for phase in (idle, loaded)
              for what, count in sorted((phase.reads.errors + phase.writes.errors).items())]
    print()
    if errors:
        print("errors (not in the figures above):")
        for name, what, count in errors:
            print(f"  {name:<5} {what}: {count}")
    else:
        print("errors: none (every read answered 200 / 250, every write 202 / 250)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase (default 15)")
    parser.add_argument("--readers", type=int, default=4, help="reader processes (default 4)")
    parser.add_argument("--writers", type=int, default=3,
                        help="event-posting threads, and as many SMTP clients (default 3 each)")
    parser.add_argument("--interval", type=float, default=20.0, help="ms between one reader's reads (default 20)")
    parser.add_argument("--tickets", type=int, default=600, help="seeded tickets, at most 1000 (default 600)")
    parser.add_argument("--customers", type=int, default=40, help="seeded customers (default 40)")
    parser.add_argument("--split", action="store_true",
                        help="measure the split topology (api, smtp, two workers on PostgreSQL and Redis) "
                             "instead of serve")
    args = parser.parse_args()
    if not (4 <= args.tickets <= 1000 and 1 <= args.customers <= args.tickets and args.readers >= 1
            and args.writers >= 1 and 0 < args.seconds <= 600 and args.interval > 0):
        parser.error("need 4 <= --tickets <= 1000, 1 <= --customers <= --tickets, --readers/--writers >= 1, "
                     "0 < --seconds <= 600, --interval > 0")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below on SIGTERM too
    with tempfile.TemporaryDirectory(prefix="bench-reads-") as folder:
        if args.split and (why := reachable(SPLIT_REDIS_DB)):
            raise SystemExit(f"--split: {why}")
        gw: Gateway | SplitGateway = SplitGateway(Path(folder)) if args.split else Gateway(Path(folder))
        try:
            measure(gw, args)
        finally:
            gw.stop()  # on errors and Ctrl-C too (the helper processes are stopped by run_phase)
            if gw.stopped_in is not None:
                print(f"gateway stopped {gw.stopped_in:.1f} s after SIGTERM", flush=True)
            if gw.log_path.exists():
                problems = gw.log_problems()
                print(f"gateway log: {len(problems)} warning/error lines" + (":" if problems else ""), flush=True)
                for line in problems[:8]:
                    print("  " + line[:200], flush=True)


def measure(gw: Gateway | SplitGateway, args: argparse.Namespace) -> None:
    """Start the gateway, seed it, run both phases and print the report."""
    ctx = mp.get_context("spawn")
    what = ("split topology (api, smtp, 2 workers; PostgreSQL, Redis)" if isinstance(gw, SplitGateway)
            else "web2chat-gateway serve (SQLite, in-process broker)")
    print(f"{what} on 127.0.0.1:{gw.api_port} / :{gw.smtp_port}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    gw.start()
    began = time.monotonic()
    tickets, tokens = seed(gw, tickets=args.tickets, customers=args.customers)
    written = args.tickets // 4  # the writers' targets; the rest: first RCPT checks, idle's then load's
    middle = written + (args.tickets - written) // 2
    seed_customer_replies(gw, tickets[:written])
    wait_outbox_sent(gw, args.tickets)
    print(f"seeded {args.tickets} tickets over {args.customers} customers (2 teammate replies each, "
          f"{written} with an emailed customer reply) in {time.monotonic() - began:.1f} s", flush=True)
    print(f"{args.readers} readers x one read per {args.interval:g} ms; load: {args.writers} event threads + "
          f"{args.writers} SMTP clients at full speed; {args.seconds:g} s per phase", flush=True)
    time.sleep(1.0)  # a quiet second before the idle phase
    idle = run_phase(ctx, gw, args, "idle", tickets=tickets, tokens=tokens, targets=tickets[:written],
                     rcpt_pool=tickets[written:middle], load=False)
    print(f"idle phase done: {sum(len(idle.reads.latencies.get(k, [])) for k in KINDS)} reads", flush=True)
    loaded = run_phase(ctx, gw, args, "load", tickets=tickets, tokens=tokens, targets=tickets[:written],
                       rcpt_pool=tickets[middle:], load=True)
    report(idle, loaded)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted: the gateway and every helper process were stopped", file=sys.stderr)
        sys.exit(130)
