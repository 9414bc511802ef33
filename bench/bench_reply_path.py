"""The reply path end to end: from the customer's ``250`` to the help desk's webhook.

Run: ``.venv/bin/python bench/bench_reply_path.py`` (options: ``--tickets``, ``--clients``, ``--rate``,
``--seconds``, ``--full``, ``--accept``, ``--idle``, ``--drain``, ``--split``/``--no-split``,
``--workers``).

Starts ``web2chat-gateway serve`` as its own process, as a user would (SQLite in a temporary folder,
free loopback ports, ``GATEWAY_HELPDESK_WEBHOOK_URL`` pointing at a webhook receiver this bench runs
in a process of its own, with a webhook secret; every setting through ``GATEWAY_*`` variables),
seeds ``--tickets`` tickets through the API and reads their reply addresses from the outbox. Then:

- **idle**: the CPU the seeded, idle ``serve`` process uses over ``--idle`` seconds (and, for the split
  topology, each of its processes);
- **accept alone**: ``web2chat-gateway smtp`` (the SMTP server, no worker) on a copy of the seeded
  store takes ``--accept`` replies at full speed: the SMTP accept rate the reply path is compared with;
- **offered**: ``serve`` gets ``--rate`` replies a second for ``--seconds`` seconds;
- **full speed**: ``serve`` gets ``--full`` replies as fast as the clients can send them;
- **split topology** (unless ``--no-split``; skipped with the reason when PostgreSQL or Redis does
  not answer on loopback): the same two phases on ``api``, ``smtp`` and ``--workers`` worker processes
  on a fresh PostgreSQL schema and Redis database 6 (``bench/split_topology.py``), with the CPU per
  reply of each process.

The replies are Gmail-shaped (multipart/alternative, the text and HTML parts each quoting the
gateway's email under "On ... wrote:", ``In-Reply-To``/``References`` naming it), sent from the
ticket's customer over ``--clients`` kept-open SMTP sessions in a client process. For each reply
the bench records when its ``250`` came and when the webhook announcing it arrived (matched by the
reply's Message-ID, ``reply.message_id`` in the webhook's JSON; the signature is checked). Each
phase prints accepted/s, landed-and-told/s (webhooks over the time from the first send to the
last webhook), ``250`` -> webhook p50/p99/max, the CPU per reply of the ``serve`` process and the processes it started
(``/proc/<pid>/stat`` utime+stime over the phase) and landed-and-told/s over the accept rate alone.

Only loopback traffic. Bounded: each phase waits at most ``--drain`` seconds for its webhooks;
everything started (gateways, client and receiver processes) is stopped on the way out, Ctrl-C
and errors included. About two and a half minutes with the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from split_topology import Split, cpu_of_family, die_with_parent, free_ports, reachable, request, stop_process

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-helpdesk-key-0123456789"
SECRET_KEYS = "1:bench-reply-secret-0123456789"
WEBHOOK_SECRET = "bench-webhook-secret-0123456789"
DOMAIN = "reply.bench.test"
#: Seconds a gateway or helper process has to get ready.
START_TIMEOUT = 60.0
#: Seconds one SMTP command may take before it counts as an error.
SMTP_TIMEOUT = 30.0
#: Targets from the issue (embedded defaults).
TARGET_RATE, TARGET_SHARE, TARGET_P99_S, TARGET_CPU_MS = 300.0, 1 / 3, 1.0, 5.0
#: Target of the split topology (api, smtp, two workers on PostgreSQL and Redis), full speed.
TARGET_SPLIT_RATE = 200.0
#: An idle worker's CPU, as a share of one core.
TARGET_IDLE = 0.01
#: Redis database the split topology uses (flushed before and after).
SPLIT_REDIS_DB = 6


@dataclass(frozen=True)
class Ticket:
    id: str
    email: str
    address: str  # the Reply-To of its ticket_created email
    root: str  # that email's Message-ID
    subject: str


# --- the replies ---------------------------------------------------------------------------------


def gmail_reply(ticket: Ticket, n: int, tag: str) -> tuple[str, bytes]:
    """A reply as Gmail writes one (its Message-ID, its bytes)."""
    message_id = f"<CA{tag}{n:06d}{uuid.uuid4().hex[:20]}@mail.gmail.com>"
    boundary = f"000000000000{uuid.uuid4().hex[:12]}"
    date = formatdate()
    wrote = f"On {date} Web2Chat Support &lt;{ticket.address}&gt; wrote:"
    text = (f"Tried again with the new driver, message {n}: the pages still come out blank.\r\n"
            f"The status light blinks orange twice.\r\n\r\nThanks,\r\nCustomer\r\n\r\n"
            f"On {date} Web2Chat Support <{ticket.address}> wrote:\r\n\r\n"
            f"> Could you try again with the new driver?\r\n>\r\n> Grace, Web2Chat Support\r\n")
    html = (f'<div dir="ltr">Tried again with the new driver, message {n}: the pages still come out blank.'
            f'<div>The status light blinks orange twice.</div><div><br></div><div>Thanks,</div><div>Customer</div>'
            f'</div><br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">{wrote}<br></div>'
            f'<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
            f'rgb(204,204,204);padding-left:1ex">Could you try again with the new driver?<br><br>'
            f'Grace, Web2Chat Support</blockquote></div>\r\n')
    raw = (
        f"Received: by mail-lf1-f41.google.com with SMTP id 2adb3069b0e04-{n}\r\n"
        f"        for <{ticket.address}>; {date}\r\n"
        f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=gmail.com; s=20230601; t={int(time.time())};\r\n"
        f"        h=to:subject:message-id:date:from:in-reply-to:references:mime-version;\r\n"
        f"        bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=bench{uuid.uuid4().hex}\r\n"
        f"MIME-Version: 1.0\r\nReferences: {ticket.root}\r\nIn-Reply-To: {ticket.root}\r\n"
        f"From: Customer <{ticket.email}>\r\nDate: {date}\r\nMessage-ID: {message_id}\r\n"
        f"Subject: Re: {ticket.subject}\r\nTo: Web2Chat Support <{ticket.address}>\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
        f'--{boundary}\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\n{text}\r\n'
        f'--{boundary}\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n{html}\r\n--{boundary}--\r\n'
    )
    return message_id, raw.encode()


# --- helper processes ----------------------------------------------------------------------------


def receiver_main(port: int, secret: str, ready: Event, stop: Event, out: Queue[Any]) -> None:
    """The help desk: answers every webhook 200 (HTTP/1.1 keep-alive); sends (message_id, arrival) back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    class Hook(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrived = time.monotonic()
            stamp = self.headers.get("X-Web2Chat-Timestamp", "")
            mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            good = hmac.compare_digest("sha256=" + mac, self.headers.get("X-Web2Chat-Signature", ""))
            try:
                sent = json.loads(body)
                events = [d["event"] for d in sent["deliveries"]] if "deliveries" in sent else [sent]
                message_ids = [e["reply"]["message_id"] for e in events]
            except (ValueError, KeyError, TypeError):
                message_ids = [None]
            for message_id in message_ids:  # GATEWAY_WEBHOOK_BATCH above 1: several replies a call
                out.put(("hook", message_id, arrived, good))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
    ready.set()
    stop.wait()
    server.shutdown()
    out.put(("cpu", _own_cpu()))


def client_main(port: int, jobs: list[tuple[str, str, str, bytes]], clients: int, rate: float | None,
                go: Event, out: Queue[Any]) -> None:
    """Sends ``jobs`` (message id, from, to, bytes) over ``clients`` kept-open SMTP sessions, at ``rate``
    a second (None: full speed); sends back, per reply, (message id, sent at, 250 at, answer code)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sessions = []
    for i in range(clients):
        smtp = smtplib.SMTP("127.0.0.1", port, timeout=SMTP_TIMEOUT)
        smtp.ehlo(f"client{i}.bench.test")
        sessions.append(smtp)
    out.put(("ready", None))
    go.wait(START_TIMEOUT)
    start = time.monotonic()
    results: list[list[tuple[str, float, float, int]]] = [[] for _ in range(clients)]

    def work(i: int) -> None:
        smtp = sessions[i]
        for n in range(i, len(jobs), clients):
            message_id, sender, rcpt, raw = jobs[n]
            if rate is not None:
                time.sleep(max(0.0, start + n / rate - time.monotonic()))
            sent = time.monotonic()
            try:
                code = 0 if smtp.sendmail(sender, [rcpt], raw) else 250  # refused recipients: 0
            except smtplib.SMTPResponseException as exc:
                code = exc.smtp_code
            except (OSError, smtplib.SMTPException):
                code = -1
                with contextlib.suppress(OSError, smtplib.SMTPException):
                    smtp.close()
                smtp = smtplib.SMTP("127.0.0.1", port, timeout=SMTP_TIMEOUT)
                smtp.ehlo(f"client{i}.bench.test")
            results[i].append((message_id, sent, time.monotonic(), code))
        with contextlib.suppress(OSError, smtplib.SMTPException):
            smtp.quit()

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(("sent", [r for rs in results for r in rs], _own_cpu()))


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


# --- the gateway ---------------------------------------------------------------------------------


def shared_settings(webhook_port: int) -> dict[str, str]:
    """The ``GATEWAY_*`` settings of every gateway this bench starts, embedded or split."""
    return {
        "GATEWAY_API_KEYS": KEY, "GATEWAY_SECRET_KEYS": SECRET_KEYS, "GATEWAY_REPLY_DOMAIN": DOMAIN,
        "GATEWAY_HELPDESK_WEBHOOK_URL": f"http://127.0.0.1:{webhook_port}/hooks/web2chat",
        "GATEWAY_HELPDESK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GATEWAY_UNSEEN_DELAY_SECONDS": "3600", "GATEWAY_UNSEEN_MAX_WAIT_SECONDS": "3600",
    }


class Gateway:
    """``web2chat-gateway <command>`` in its own process, configured through the environment."""

    def __init__(self, folder: Path, database: Path, *, webhook_port: int, command: str = "serve",
                 extra: dict[str, str] | None = None) -> None:
        self.command = command
        self.api_port, self.smtp_port = free_ports(2)
        self.log_path = folder / f"gateway-{command}-{self.smtp_port}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.env.update(shared_settings(webhook_port))
        self.env.update({
            "GATEWAY_DATABASE_URL": f"sqlite:///{database}",
            "GATEWAY_API_PORT": str(self.api_port), "GATEWAY_SMTP_PORT": str(self.smtp_port),
        })
        self.env.update(extra or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        found = shutil.which("web2chat-gateway", path=str(Path(sys.executable).parent))
        command = [found, self.command] if found else [sys.executable, "-m", "gateway.cli", self.command]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=die_with_parent)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self.command != "smtp":
                    status, _ = self.request("GET", "/healthz")
                    if status != 200:
                        raise OSError(status)
                with socket.create_connection(("127.0.0.1", self.smtp_port), timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit(f"the gateway did not answer within {START_TIMEOUT:.0f} s:\n{self.log_tail()}")

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        return request(self.api_port, method, path, body, KEY)

    def stop(self) -> None:
        stop_process(self.proc, "the gateway")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the gateway process and its own processes (the preparing processes):
        all threads, user and system; a process that ended meanwhile counts in its parent's cutime."""
        assert self.proc is not None
        return cpu_of_family(self.proc.pid)

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_problems(self) -> list[str]:
        return [line for line in self.log_path.read_text(errors="replace").splitlines()
                if re.search(r"WARNING|ERROR|CRITICAL|Traceback", line)]


def seed(gw: Gateway | Split, count: int) -> list[Ticket]:
    """``count`` tickets, one customer each; their reply addresses and first emails from the outbox."""
    for i in range(count):
        status, content = gw.request("POST", "/v1/events", {
            "type": "ticket.created", "id": f"seed-{i}", "occurred_at": datetime.now(UTC).isoformat(),
            "ticket": {"id": f"S-{i}", "title": f"Printer {i} prints blank pages",
                       "description": "Every page comes out blank.", "state": "submitted", "created_by": "customer"},
            "customer": {"id": f"c-{i}", "email": f"c{i}@customer.bench.test", "name": f"Customer {i}"},
        })
        if status != 202:
            raise SystemExit(f"seeding: ticket.created answered {status}: {content[:300]!r}")
    status, content = gw.request("GET", f"/v1/outbox?limit={count}")
    if status != 200:
        raise SystemExit(f"seeding: the outbox answered {status}")
    found: dict[str, Ticket] = {}
    for email in json.loads(content)["emails"]:
        ticket = re.match(r"\[#(S-\d+)\]", email["subject"])
        reply_to = re.search(r"^Reply-To: (\S+)\r?$", email["raw"], re.MULTILINE)
        if ticket and reply_to:
            found[ticket.group(1)] = Ticket(ticket.group(1), email["to"], reply_to.group(1).strip("<>"),
                                            email["message_id"], email["subject"])
    if len(found) != count:
        raise SystemExit(f"seeding: found the reply address of {len(found)} of {count} tickets in the outbox")
    return [found[f"S-{i}"] for i in range(count)]


# --- phases --------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    offered: float | None
    sent: int
    accepted: int
    refused: int
    send_seconds: float  # first send to last 250
    told: int  # distinct replies whose webhook arrived
    duplicates: int
    bad_signatures: int
    path_seconds: float  # first send to last webhook
    latencies: list[float]  # 250 -> webhook, seconds
    cpu: float  # gateway CPU seconds over the phase
    client_cpu: float
    load: float
    cpu_parts: dict[str, float] | None = None  # split topology: CPU seconds per process over the phase


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def run_phase(ctx: SpawnContext, gw: Gateway | Split, hooks: Queue[Any] | None, tickets: list[Ticket], *, name: str,
              count: int, clients: int, rate: float | None, drain: float) -> Phase:
    """Send ``count`` replies to ``gw``; with ``hooks``, wait (up to ``drain`` s) for their webhooks."""
    jobs = []
    for n in range(count):
        ticket = tickets[n % len(tickets)]
        message_id, raw = gmail_reply(ticket, n, name[:2])
        jobs.append((message_id, ticket.email, ticket.address, raw))
    go = ctx.Event()
    out: Queue[Any] = ctx.Queue()
    proc: SpawnProcess = ctx.Process(target=client_main, args=(gw.smtp_port, jobs, clients, rate, go, out),
                                     daemon=True)
    proc.start()
    try:
        out.get(timeout=START_TIMEOUT)  # ("ready", None)
        parts0 = gw.cpu_by_part() if isinstance(gw, Split) else None
        cpu0, t0 = gw.cpu_seconds(), time.monotonic()
        go.set()
        arrivals: dict[str, float] = {}
        duplicates = bad = 0
        sent: list[tuple[str, float, float, int]] | None = None
        client_cpu = 0.0
        wanted = {j[0] for j in jobs}
        deadline = None
        while True:
            if sent is None:
                with contextlib.suppress(queue.Empty):
                    _, sent, client_cpu = out.get(timeout=0.01 if hooks is not None else 1.0)
                    accepted_ids = {r[0] for r in sent if r[3] == 250}
                    wanted &= accepted_ids
                    deadline = time.monotonic() + drain
                if sent is None and time.monotonic() - t0 > count / (rate or 20) + drain + 60:
                    raise SystemExit(f"{name}: the clients did not finish")
            if hooks is not None:
                try:
                    while True:
                        _, message_id, arrived, good = hooks.get(timeout=0.05)
                        bad += not good
                        if message_id in arrivals:
                            duplicates += 1
                        else:
                            arrivals[message_id] = arrived
                except queue.Empty:
                    pass
            if sent is not None and (hooks is None or wanted <= arrivals.keys()
                                     or (deadline is not None and time.monotonic() > deadline)):
                break
        cpu1 = gw.cpu_seconds()
        parts1 = gw.cpu_by_part() if isinstance(gw, Split) else None
        proc.join(10)
    finally:
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
    assert sent is not None
    ok = [r for r in sent if r[3] == 250]
    first = min((r[1] for r in sent), default=t0)
    last_250 = max((r[2] for r in ok), default=first)
    told = [mid for mid in wanted if mid in arrivals]
    last_hook = max((arrivals[m] for m in told), default=first)
    by_id = {r[0]: r[2] for r in ok}
    return Phase(
        name=name, offered=rate, sent=len(sent), accepted=len(ok), refused=len(sent) - len(ok),
        send_seconds=max(1e-9, last_250 - first), told=len(told), duplicates=duplicates, bad_signatures=bad,
        path_seconds=max(1e-9, last_hook - first), latencies=[arrivals[m] - by_id[m] for m in told],
        cpu=cpu1 - cpu0, client_cpu=client_cpu, load=os.getloadavg()[0],
        cpu_parts=None if parts0 is None or parts1 is None else {k: parts1[k] - parts0.get(k, 0.0) for k in parts1},
    )


def print_phases(phases: list[Phase], accept_rate: float) -> None:
    header = (f"{'phase':<22}{'accepted/s':>11}{'told/s':>8}{'told/accept':>12}{'p50 s':>8}{'p99 s':>8}"
              f"{'max s':>8}{'CPU ms/reply':>13}{'told':>7}{'dup':>5}  load")
    print(header)
    for p in phases:
        told_rate = p.told / p.path_seconds
        label = f"{p.name} ({p.offered:g}/s)" if p.offered else p.name
        print(f"{label:<22}{p.accepted / p.send_seconds:>11.0f}{told_rate:>8.0f}{told_rate / accept_rate:>11.0%} "
              f"{percentile(p.latencies, 0.5):>8.3f}{percentile(p.latencies, 0.99):>8.3f}"
              f"{max(p.latencies, default=float('nan')):>8.3f}{p.cpu / max(1, p.told) * 1000:>13.2f}"
              f"{p.told:>7}{p.duplicates:>5}  {p.load:.2f}")
        if p.cpu_parts:
            print("    CPU ms/reply by process: " + ", ".join(
                f"{name} {cpu / max(1, p.told) * 1000:.2f}" for name, cpu in p.cpu_parts.items()))
        problems = []
        if p.refused:
            problems.append(f"{p.refused} not accepted")
        if p.told < p.accepted:
            problems.append(f"{p.accepted - p.told} accepted replies never told within the drain time")
        if p.bad_signatures:
            problems.append(f"{p.bad_signatures} webhooks with a bad signature")
        if problems:
            print("    " + "; ".join(problems))


@dataclass
class SplitRun:
    """The split topology's phases, and each part's idle CPU (a share of one core) over ``--idle`` seconds."""

    phases: list[Phase]
    idle: dict[str, float]


def report(accept: Phase, phases: list[Phase], idle: tuple[float, float] | None, split: SplitRun | str,
           workers: int) -> None:
    accept_rate = accept.accepted / accept.send_seconds
    print()
    if idle is not None:
        print(f"idle serve: {idle[0] / idle[1] * 100:.2f}% of one core over {idle[1]:.0f} s")
    print(f"accept alone (smtp, no worker): {accept.accepted} of {accept.sent} accepted at {accept_rate:.0f}/s, "
          f"{accept.cpu / max(1, accept.accepted) * 1000:.2f} ms CPU per reply (smtp process), "
          f"load average {accept.load:.2f}")
    print()
    print("serve (embedded defaults: SQLite, in-process broker)")
    print_phases(phases, accept_rate)
    print()
    full = phases[-1]
    offered = next((p for p in phases if p.offered), None)
    told_rate = full.told / full.path_seconds
    verdicts = [
        (f"landed-and-told >= {TARGET_RATE:g}/s or >= 1/3 of the accept rate (full speed)",
         told_rate >= TARGET_RATE or told_rate >= TARGET_SHARE * accept_rate),
        (f"CPU per reply < {TARGET_CPU_MS:g} ms (full speed)", full.cpu / max(1, full.told) * 1000 < TARGET_CPU_MS),
    ]
    if offered is not None:
        verdicts.insert(1, (f"p99 250 -> webhook < {TARGET_P99_S:g} s at {offered.offered:g}/s offered",
                            offered.told == offered.accepted
                            and percentile(offered.latencies, 0.99) < TARGET_P99_S))
    if idle is not None:
        verdicts.append((f"idle serve < {TARGET_IDLE:.0%} of a core", idle[0] / idle[1] < TARGET_IDLE))
    if isinstance(split, str):
        print(f"split topology: not measured ({split})")
    else:
        print(f"split topology (api, smtp, {workers} workers on PostgreSQL and Redis)")
        if split.idle:
            shares = ", ".join(f"{name} {share:.2%}" for name, share in split.idle.items())
            print(f"    idle, share of one core: {shares}")
        print_phases(split.phases, accept_rate)
        split_rate = split.phases[-1].told / split.phases[-1].path_seconds
        verdicts.append((f"split topology: landed-and-told >= {TARGET_SPLIT_RATE:g}/s with {workers} workers "
                         "(full speed)", split_rate >= TARGET_SPLIT_RATE))
        idle_workers = [share for name, share in split.idle.items() if name.startswith("worker")]
        if idle_workers:
            verdicts.append((f"split topology: each idle worker < {TARGET_IDLE:.0%} of a core",
                             max(idle_workers) < TARGET_IDLE))
    print()
    for what, met in verdicts:
        print(f"  {'met   ' if met else 'missed'}  {what}")


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite store (the backup API)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for serve, e.g. --set WORKER_THREADS=8 (GATEWAY_ is added; repeatable)")
    parser.add_argument("--tickets", type=int, default=50, help="seeded tickets, one customer each (default 50)")
    parser.add_argument("--clients", type=int, default=4, help="SMTP client sessions (default 4)")
    parser.add_argument("--rate", type=float, default=200.0, help="offered replies a second (default 200)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the offered phase (default 10)")
    parser.add_argument("--full", type=int, default=2000, help="replies sent at full speed (default 2000)")
    parser.add_argument("--accept", type=int, default=2000, help="replies for the accept-alone phase (default 2000)")
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of idle CPU measured (default 10; 0: off)")
    parser.add_argument("--split", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the split topology when PostgreSQL and Redis answer (default on)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of the split topology (default 2)")
    parser.add_argument("--drain", type=float, default=40.0, help="seconds each phase waits for its webhooks "
                        "after its last 250 (default 40)")
    args = parser.parse_args()
    args.extra = {}
    for setting in args.settings:
        name, sep, value = setting.partition("=")
        if not sep or not name:
            parser.error(f"--set wants NAME=VALUE, not {setting!r}")
        args.extra["GATEWAY_" + name.removeprefix("GATEWAY_").upper()] = value
    if not (1 <= args.tickets <= 1000 and 1 <= args.clients <= 64 and args.rate > 0 and 0 < args.seconds <= 120
            and 1 <= args.full <= 20000 and 1 <= args.accept <= 20000 and 0 <= args.idle <= 120
            and 0 < args.drain <= 600 and 1 <= args.workers <= 8):
        parser.error("need 1 <= --tickets <= 1000, 1 <= --clients <= 64, --rate > 0, 0 < --seconds <= 120, "
                     "1 <= --full/--accept <= 20000, 0 <= --idle <= 120, 0 < --drain <= 600, 1 <= --workers <= 8")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-up below on SIGTERM too
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bench-reply-path-") as folder:
        started: list[Gateway | Split] = []
        ready, stop = ctx.Event(), ctx.Event()
        hooks: Queue[Any] = ctx.Queue()
        webhook_port = free_ports(1)[0]
        receiver = ctx.Process(target=receiver_main, args=(webhook_port, WEBHOOK_SECRET, ready, stop, hooks),
                               daemon=True)
        try:
            receiver.start()
            if not ready.wait(START_TIMEOUT):
                raise SystemExit("the webhook receiver did not start")
            measure(ctx, Path(folder), args, webhook_port, hooks, started)
        finally:
            for gw in started:
                gw.stop()
                if isinstance(gw, Split):
                    problems, what = gw.log_problems(), "split topology"
                else:
                    problems, what = gw.log_problems() if gw.log_path.exists() else [], gw.command
                if problems:
                    print(f"{what} log: {len(problems)} warning/error lines:", flush=True)
                    for line in problems[:5]:
                        print("  " + line[:200], flush=True)
            stop.set()
            receiver.join(5)
            if receiver.is_alive():
                receiver.terminate()
                receiver.join(5)
            hooks.close()
            hooks.cancel_join_thread()


def measure(ctx: SpawnContext, folder: Path, args: argparse.Namespace, webhook_port: int, hooks: Queue[Any],
            started: list[Gateway | Split]) -> None:
    """Seed, measure idle, accept alone, then the offered and full-speed phases; print the report."""
    print(f"web2chat-gateway serve (SQLite, in-process broker, embedded defaults); load average "
          f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {args.clients} SMTP clients, "
          f"{args.tickets} tickets", flush=True)
    database = folder / "gateway.sqlite3"
    gw = Gateway(folder, database, webhook_port=webhook_port, extra=args.extra)
    started.append(gw)
    gw.start()
    tickets = seed(gw, args.tickets)
    time.sleep(2.0)  # the seeded emails go to the local outbox
    idle = None
    if args.idle:
        cpu0, t0 = gw.cpu_seconds(), time.monotonic()
        time.sleep(args.idle)
        idle = (gw.cpu_seconds() - cpu0, time.monotonic() - t0)
        print(f"idle serve: {idle[0] / idle[1] * 100:.2f}% of one core", flush=True)
    copy_database(database, folder / "accept.sqlite3")

    alone = Gateway(folder, folder / "accept.sqlite3", webhook_port=webhook_port, command="smtp")
    started.append(alone)
    alone.start()
    accept = run_phase(ctx, alone, None, tickets, name="accept", count=args.accept, clients=args.clients,
                       rate=None, drain=args.drain)
    alone.stop()
    print(f"accept alone: {accept.accepted / accept.send_seconds:.0f}/s", flush=True)

    phases = offered_and_full(ctx, gw, hooks, tickets, args, prefix="")
    gw.stop()  # the split topology gets the machine to itself
    split: SplitRun | str = "--no-split"
    if args.split:
        split = reachable(SPLIT_REDIS_DB) or measure_split(ctx, folder, args, webhook_port, hooks, started)
    report(accept, phases, idle, split, args.workers)


def measure_split(ctx: SpawnContext, folder: Path, args: argparse.Namespace, webhook_port: int, hooks: Queue[Any],
                  started: list[Gateway | Split]) -> SplitRun:
    """Idle CPU (``--idle`` seconds, after seeding), then the offered and full-speed phases on api, smtp and
    ``--workers`` workers on PostgreSQL and Redis."""
    (folder / "split").mkdir()
    split = Split(folder / "split", {**shared_settings(webhook_port), **args.extra}, key=KEY, workers=args.workers,
                  redis_db=SPLIT_REDIS_DB, prefix="bench_reply")
    started.append(split)
    split.start()
    print(f"split topology up: api, smtp, {args.workers} workers; PostgreSQL schema {split.schema}, "
          f"{split.redis_url}", flush=True)
    tickets = seed(split, args.tickets)
    idle: dict[str, float] = {}
    if args.idle:
        time.sleep(2.0)  # the seeded emails go to the local outbox
        cpu0, t0 = split.cpu_by_part(), time.monotonic()
        time.sleep(args.idle)
        cpu1, seconds = split.cpu_by_part(), time.monotonic() - t0
        idle = {name: (cpu1[name] - cpu0[name]) / seconds for name in cpu1}
        print("split idle: " + ", ".join(f"{name} {share:.2%}" for name, share in idle.items()), flush=True)
    phases = offered_and_full(ctx, split, hooks, tickets, args, prefix="split ")
    split.stop()
    return SplitRun(phases, idle)


def offered_and_full(ctx: SpawnContext, gw: Gateway | Split, hooks: Queue[Any], tickets: list[Ticket],
                     args: argparse.Namespace, *, prefix: str) -> list[Phase]:
    """The offered phase (``--rate`` for ``--seconds``), then ``--full`` replies at full speed."""
    phases = []
    for name, count, rate in ((f"{prefix}offered", int(args.rate * args.seconds), args.rate),
                              (f"{prefix}full speed", args.full, None)):
        phase = run_phase(ctx, gw, hooks, tickets, name=name, count=count, clients=args.clients, rate=rate,
                          drain=args.drain)
        print(f"{name}: {phase.told} of {phase.accepted} told in {phase.path_seconds:.1f} s", flush=True)
        phases.append(phase)
    return phases


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted: the gateways and every helper process were stopped", file=sys.stderr)
        sys.exit(130)
