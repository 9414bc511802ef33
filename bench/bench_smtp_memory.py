"""Memory of ``web2chat-gateway serve`` while it receives large messages, and the time a small reply takes meanwhile.

    .venv/bin/python bench/bench_smtp_memory.py [--concurrent 1,6] [--attachment-mb 15]

Starts ``web2chat-gateway serve`` as a subprocess (SQLite in a temporary folder, free loopback ports, the
default limits), creates one ticket, then for each figure of ``--concurrent`` sends that many messages at
once, each about 20 MB (a 15 MB attachment, base64), to the ticket's reply address, and a small reply
half a second later. While the round runs (until every message of it has left ``received``: the
worker in the same process parsed and landed it) a thread samples the serve process's RSS from
``/proc/<pid>/status`` every 10 ms. It prints, per round: the RSS before, the peak until every large message
was answered (``to 250s``: the SMTP edge and the commit, the worker may have begun), the peak, what the round added
(in all and per large message), the RSS once the round is over, and how long the small reply took to its
``250`` and to land; then the process's VmHWM and the target from issue 14 (six at once add at most
300 MB). Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from email.utils import make_msgid
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["main"]

DOMAIN = "reply.bench.test"
SENDER = "ada@customer.bench.test"
SECRET = "1:bench-secret-key-0123456789"
#: Seconds any one wait of the bench may take before it gives up.
PATIENCE = 300.0
#: The target of issue 14: what six concurrent 20 MB messages may add to the serve process's RSS.
TARGET_SIX_MB = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _status(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure (``VmRSS``, ``VmHWM``) in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


class Sampler:
    """Samples a process's RSS on a thread; ``peak`` is the highest seen since the last ``reset``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            try:
                self.peak = max(self.peak, _status(self.pid, "VmRSS"))
            except (OSError, KeyError):
                return

    def reset(self) -> None:
        self.peak = _status(self.pid, "VmRSS")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def prepare(database_url: str) -> str:
    """Create the store and one open ticket; return its reply address."""
    from datetime import UTC, datetime

    from dramatiq.brokers.stub import StubBroker

    from gateway.app import build_gateway
    from gateway.models import Customer, TicketCreated, TicketState
    from gateway.settings import Settings, parse_secret_keys

    settings = Settings(database_url=database_url, reply_domain=DOMAIN, secret_keys=parse_secret_keys(SECRET),
                        api_keys=("bench-api-key-0123456789",))
    gw = build_gateway(settings, broker=StubBroker())
    now = datetime.now(UTC)
    gw.events.ticket_created(TicketCreated(
        event_id="bench-memory", occurred_at=now, ticket_id="M-1", title="Large attachments", description="",
        state=TicketState.SUBMITTED, created_by="customer", customer=Customer(id="c", email=SENDER, name="Ada")),
        now=now)
    ticket = gw.tickets.get("M-1")
    assert ticket is not None
    address = gw.keyring.address_for(ticket.key, SENDER)
    gw.db.dispose()
    return address


def large_message(to: str, attachment: bytes) -> bytes:
    """A reply with ``attachment`` as a base64 application/octet-stream part (one per call: its own Message-ID)."""
    head = (
        f"From: Ada <{SENDER}>\r\nTo: {to}\r\nSubject: Re: Large attachments\r\nMessage-ID: {make_msgid()}\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHere is the log you asked for.\r\n\r\n--b1\r\n"
        "Content-Type: application/octet-stream; name=\"log.bin\"\r\nContent-Transfer-Encoding: base64\r\n"
        "Content-Disposition: attachment; filename=\"log.bin\"\r\n\r\n"
    ).encode()
    return head + attachment + b"\r\n--b1--\r\n"


def small_message(to: str) -> bytes:
    return (f"From: Ada <{SENDER}>\r\nTo: {to}\r\nSubject: Re: Large attachments\r\nMessage-ID: {make_msgid()}\r\n"
            "\r\nA short reply while the large ones arrive.\r\n").encode()


def send(port: int, to: str, raw: bytes) -> tuple[int, int, float]:
    """Send ``raw`` on a new connection, declaring its SIZE as MTAs do: (code, stored id or 0, seconds to the
    DATA answer)."""
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port, timeout=PATIENCE) as smtp:
        smtp.ehlo()
        smtp.mail(SENDER, options=[f"SIZE={len(raw)}"])
        smtp.rcpt(to)
        try:
            code, text = smtp.data(raw)
        except smtplib.SMTPDataError as refused:  # 452 4.3.1 at DATA: the budget is spent, nothing more is sent
            code, text = refused.smtp_code, refused.smtp_error
    pk = int(text.rsplit(b" ", 1)[-1]) if code == 250 else 0
    return code, pk, time.monotonic() - started


def settled(db_file: Path, pks: list[int]) -> dict[int, str]:
    """The status of each stored message of ``pks``."""
    with sqlite3.connect(db_file, timeout=30) as conn:
        marks = ",".join("?" * len(pks))
        return dict(conn.execute(f"SELECT pk, status FROM inbound_messages WHERE pk IN ({marks})", pks).fetchall())


def done(db_file: Path, pks: list[int], *, worker: bool = True) -> bool:
    """True once every message of ``pks`` left ``received`` (the worker took it to its end); without a worker,
    once each is stored."""
    statuses = settled(db_file, pks)
    if not worker:
        return len(statuses) == len(pks)
    return len(statuses) == len(pks) and all(status != "received" for status in statuses.values())


def wait_until(probe: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not probe():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrent", default="1,6", help="comma-separated numbers of large messages sent at once")
    parser.add_argument("--attachment-mb", type=float, default=15.0, help="attachment size before base64")
    parser.add_argument("--mmap-threshold", type=int, default=None,
                        help="run serve with MALLOC_MMAP_THRESHOLD_ set to this many bytes (glibc)")
    parser.add_argument("--command", default="serve", choices=("serve", "smtp"),
                        help="smtp: the SMTP server alone (no worker: rounds end at the 250s, nothing lands)")
    args = parser.parse_args()
    rounds = [int(n) for n in args.concurrent.split(",")]
    worker = args.command == "serve"
    command = shutil.which("web2chat-gateway", path=str(Path(sys.executable).parent)) or "web2chat-gateway"

    folder = Path(tempfile.mkdtemp(prefix="bench-smtp-memory-"))
    db_file = folder / "gateway.sqlite3"
    to = prepare(f"sqlite:///{db_file}")
    smtp_port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", ""), "GATEWAY_DATABASE_URL": f"sqlite:///{db_file}",
        "GATEWAY_SMTP_PORT": str(smtp_port), "GATEWAY_API_PORT": str(_free_port()),
        "GATEWAY_API_KEYS": "bench-api-key-0123456789", "GATEWAY_SECRET_KEYS": SECRET,
        "GATEWAY_REPLY_DOMAIN": DOMAIN, "TMPDIR": str(folder),
    }
    if "PYTHONPATH" in os.environ:  # e.g. an older checkout's code, to measure before and after
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    if args.mmap_threshold is not None:
        env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
    log = (folder / "serve.log").open("w")
    serve = subprocess.Popen([command, args.command], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _greets(smtp_port) or serve.poll() is not None, "the SMTP server")
        if serve.poll() is not None:
            raise SystemExit(f"serve exited with {serve.returncode}; see {folder / 'serve.log'}")
        encoded = base64.encodebytes(os.urandom(int(args.attachment_mb * 1024 * 1024))).replace(b"\n", b"\r\n")
        size = len(large_message(to, encoded))
        _, pk, _ = send(smtp_port, to, small_message(to))  # warm up: imports, first parse, first landing
        wait_until(partial(done, db_file, [pk], worker=worker), "the warm-up reply to land")
        sampler = Sampler(serve.pid)
        print(f"serve pid {serve.pid}; large message {size / 1e6:.1f} MB (attachment {args.attachment_mb:g} MB "
              f"before base64); RSS at rest {_status(serve.pid, 'VmRSS') / 2**20:.0f} MiB")
        print(f"{'at once':>7} {'accepted':>8} {'RSS before':>10} {'to 250s':>8} {'peak':>8} {'added':>8} "
              f"{'per msg':>8} {'after':>8} {'small 250':>9} {'small landed':>12}")
        results: dict[int, int] = {}
        for n in rounds:
            time.sleep(1.0)  # let the allocator hand back what the last round freed
            before = _status(serve.pid, "VmRSS")
            sampler.reset()
            outcomes: list[tuple[int, int, float]] = []
            threads = [threading.Thread(target=_send_into, args=(outcomes, smtp_port, to, large_message(to, encoded)))
                       for _ in range(n)]
            for thread in threads:
                thread.start()
            time.sleep(0.5)
            small_sent = time.monotonic()
            small_code, small_pk, small_answer = send(smtp_port, to, small_message(to))
            wait_until(partial(done, db_file, [small_pk], worker=worker), "the small reply")
            small_landed = time.monotonic() - small_sent
            for thread in threads:
                thread.join(PATIENCE)
            at_answers = sampler.peak  # the SMTP edge and the commit; the worker may have begun
            pks = [pk for code, pk, _ in outcomes if code == 250]
            wait_until(partial(done, db_file, pks, worker=worker), "the large messages")
            time.sleep(0.5)
            peak, after = sampler.peak, _status(serve.pid, "VmRSS")
            added = peak - before
            results[n] = added
            figures = (before, at_answers, peak, added, added / max(n, 1), after)
            mib = [f"{figure / 2**20:>4.0f} MiB" for figure in figures]
            print(f"{n:>7} {len(pks):>8} {mib[0]:>10} {' '.join(mib[1:])} {small_answer:>8.2f}s {small_landed:>11.2f}s"
                  + ("" if small_code == 250 else f" (small reply got {small_code})"))
        sampler.stop()
        print(f"VmHWM of serve: {_status(serve.pid, 'VmHWM') / 2**20:.0f} MiB")
        if 6 in results:
            verdict = "met" if results[6] <= TARGET_SIX_MB * 2**20 else "NOT met"
            print(f"target (issue 14): six concurrent 20 MB messages add at most {TARGET_SIX_MB} MB: "
                  f"{results[6] / 2**20:.0f} MiB added, {verdict}")
    finally:
        serve.terminate()
        try:
            serve.wait(30)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _send_into(outcomes: list[tuple[int, int, float]], port: int, to: str, raw: bytes) -> None:
    outcomes.append(send(port, to, raw))


def _greets(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            return sock.recv(64).startswith(b"220")
    except OSError:
        return False


if __name__ == "__main__":
    main()
