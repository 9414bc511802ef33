"""Fault injection on the split topology: api, smtp, two workers on PostgreSQL and Redis.

Run: ``.venv/bin/python bench/faults/run_faults.py`` (options: ``--tickets``, ``--seconds``, ``--settle``).

Starts ``web2chat-gateway api``, ``smtp`` and two ``worker`` processes (every setting through
``GATEWAY_*``) on a fresh PostgreSQL schema of ``postgresql://postgres@127.0.0.1:5432/test`` (dropped
at the end) and Redis database 5 (``redis://127.0.0.1:6379/5``; only that database is flushed), plus
a webhook receiver thread. Seeds tickets through the API, then for each fault drives, for
``--seconds`` s, SMTP replies at ~50/s from 2 clients and ticket.reply / ticket.state_changed events
at ~20/s, injecting the fault a few seconds in:

1. ``kill -9`` one worker, then start a new one;
2. ``redis-cli -n 5 FLUSHDB`` (the shared redis-server is not restarted);
3. ``kill -9`` the smtp process, then start it again (clients retry on connection errors, a reply
   counts as acknowledged only on ``250``);
4. stop the machine's PostgreSQL cluster (``pg_ctlcluster ... stop``, fast mode: every connection is
   terminated) for ``--outage`` seconds (5; 0 skips it), then start it again. It is started again on
   the way out whatever happens.

Clients retry as real ones would: an SMTP client sends the same reply again after a ``4xx`` or a
connection error, the event driver posts the same event again after a ``5xx`` or a connection
error (for up to 90 s). After each fault it waits (at most
``--settle`` s) until the store's and the receiver's counts stop changing, then prints the figures.
Loopback only; everything started is stopped on the way out, errors included.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_reply_path import (
    DOMAIN,
    KEY,
    ROOT,
    SECRET_KEYS,
    WEBHOOK_SECRET,
    Ticket,
    gmail_reply,
    seed,
)
from split_topology import PG_ADMIN, Part, free_ports, request

#: Seconds a client keeps sending the same reply or event again after a temporary failure.
RETRY_SECONDS = 90.0
REDIS_DB = 5
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


def pg_cluster(action: str) -> None:
    """``pg_ctlcluster <version> main <action>`` on this machine's one PostgreSQL cluster (``stop`` is fast mode:
    open connections are terminated)."""
    version = max(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".") if p.isdigit()])
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action], check=True,
                   capture_output=True, timeout=120)


def pg_running() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "2"], capture_output=True,
                          timeout=10).returncode == 0


def redis_cli(*args: str) -> str:
    return subprocess.run(["redis-cli", "-n", str(REDIS_DB), *args], capture_output=True, text=True,
                          timeout=10, check=True).stdout.strip()


def api(port: int, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    return request(port, method, path, body, KEY)


class Receiver:
    def __init__(self) -> None:
        self.ids: list[str | None] = []
        self.lock = threading.Lock()
        outer = self

        class Hook(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    mid = json.loads(body)["reply"]["message_id"]
                except (ValueError, KeyError, TypeError):
                    mid = None
                with outer.lock:
                    outer.ids.append(mid)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_ports(1)[0]
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Hook)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def snapshot(self) -> list[str | None]:
        with self.lock:
            return list(self.ids)


class Shim:
    """Enough of bench_reply_path.Gateway for its ``seed``."""

    def __init__(self, port: int) -> None:
        self.port = port

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        return api(self.port, method, path, body)


def smtp_client(i: int, port: int, jobs: list[tuple[str, str, str, bytes]], rate: float, end_by: float,
                acked: list[str], stats: Counter[str]) -> None:
    """Send jobs at ``rate``/s; on a connection error reconnect and send the same reply again."""
    smtp: smtplib.SMTP | None = None
    start = time.monotonic()
    for n, (mid, sender, rcpt, raw) in enumerate(jobs):
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        while time.monotonic() < end_by:
            try:
                if smtp is None:
                    smtp = smtplib.SMTP("127.0.0.1", port, timeout=15)
                    smtp.ehlo(f"client{i}.faults.test")
                refused = smtp.sendmail(sender, [rcpt], raw)
                if not refused:
                    acked.append(mid)
                else:
                    stats["refused"] += 1
                break
            except smtplib.SMTPResponseException as exc:
                stats[f"answered {exc.smtp_code}"] += 1
                if 400 <= exc.smtp_code < 500:
                    time.sleep(0.5)
                    continue  # temporary failure: retry like an MTA
                break
            except (OSError, smtplib.SMTPException):
                stats["connection errors (retried)"] += 1
                with contextlib.suppress(Exception):
                    smtp.close()  # type: ignore[union-attr]
                smtp = None
                time.sleep(0.2)
        else:
            stats["gave up"] += 1
    if smtp is not None:
        with contextlib.suppress(Exception):
            smtp.quit()


def event_driver(port: int, tickets: list[Ticket], states: dict[str, str], tag: str, rate: float, seconds: float,
                 out: dict[str, Any]) -> None:
    sent: list[str] = []
    acked: list[str] = []
    codes: Counter[int] = Counter()
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        t = tickets[n % len(tickets)]
        eid = f"{tag}-e{n}"
        now = datetime.now(UTC).isoformat()
        if n % 2:
            cur = states[t.id]
            nxt = "waiting_on_customer" if cur != "waiting_on_customer" else "in_progress"
            body = {"type": "ticket.state_changed", "id": eid, "occurred_at": now, "ticket_id": t.id,
                    "from": cur, "to": nxt}
        else:
            nxt = None
            body = {"type": "ticket.reply", "id": eid, "occurred_at": now, "ticket_id": t.id,
                    "reply": {"id": f"{tag}-r{n}", "author": {"name": "Grace"}, "text": f"Try the driver ({n})"}}
        sent.append(eid)
        retry_until = time.monotonic() + RETRY_SECONDS
        while True:  # as a help desk would: the same event again after a 5xx or a connection error
            try:
                status, _ = api(port, "POST", "/v1/events", body)
            except OSError:
                status = -1
            codes[status] += 1
            if (status == -1 or status >= 500) and time.monotonic() < retry_until:
                time.sleep(0.5)
                continue
            break
        if status == 202:
            acked.append(eid)
            if nxt:
                states[t.id] = nxt
        n += 1
    out.update(sent=sent, acked=acked, codes=codes)


def store_counts(engine: Any, event_prefix: str, mids: set[str]) -> tuple[int, int, int]:
    """(landed of mids, duplicated landings of mids, events applied with the prefix)."""
    from sqlalchemy import text
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT dedup_key FROM entries WHERE kind = 'customer_reply'")).scalars().all()
        applied = conn.execute(text("SELECT count(*) FROM events WHERE id LIKE :p"),
                               {"p": event_prefix + "%"}).scalar_one()
    seen = Counter((k or "").strip("<>") for k in rows)
    mine = {m.strip("<>") for m in mids}
    landed = sum(1 for m in mine if seen[m])
    dups = sum(seen[m] - 1 for m in mine if seen[m] > 1)
    return landed, dups, int(applied)


def run_fault(name: str, inject: Any, *, smtp_port: int, api_port: int, tickets: list[Ticket],
              states: dict[str, str], receiver: Receiver, engine: Any, seconds: float, settle: float,
              tag: str) -> dict[str, Any]:
    rate_each, clients = 25.0, 2
    per_client = int(rate_each * seconds)
    jobs_by_client = []
    all_mids: set[str] = set()
    for c in range(clients):
        jobs = []
        for n in range(per_client):
            t = tickets[(c * per_client + n) % len(tickets)]
            mid, raw = gmail_reply(t, n, f"{tag}{c}")
            jobs.append((mid, t.email, t.address, raw))
            all_mids.add(mid)
        jobs_by_client.append(jobs)
    acked: list[str] = []
    stats: Counter[str] = Counter()
    ev: dict[str, Any] = {}
    end_by = time.monotonic() + seconds + 90
    threads = [threading.Thread(target=smtp_client, args=(c, smtp_port, jobs_by_client[c], rate_each, end_by,
                                                         acked, stats), daemon=True) for c in range(clients)]
    threads.append(threading.Thread(target=event_driver, args=(api_port, tickets, states, tag, 20.0, seconds, ev),
                                    daemon=True))
    for th in threads:
        th.start()
    time.sleep(min(3.0, seconds / 3))
    t_inject = time.monotonic()
    inject()
    print(f"  [{name}] injected and recovered in {time.monotonic() - t_inject:.1f} s", flush=True)
    for th in threads:
        th.join(seconds + 120)
    # settle: until the store and the receiver stop changing (bounded)
    deadline = time.monotonic() + settle
    last = None
    stable_since = time.monotonic()
    acked_set = set(acked)
    while time.monotonic() < deadline:
        landed, dups, applied = store_counts(engine, tag + "-", all_mids)
        hooks = sum(1 for m in receiver.snapshot() if m in all_mids)
        now_state = (landed, dups, applied, hooks)
        if now_state != last:
            last, stable_since = now_state, time.monotonic()
        elif time.monotonic() - stable_since >= 8 and landed >= len(acked_set) and hooks >= landed:
            break
        elif time.monotonic() - stable_since >= 20:
            break
        time.sleep(1.0)
    landed, dups, applied = store_counts(engine, tag + "-", all_mids)
    # lost: acknowledged but not landed
    from sqlalchemy import text
    with engine.connect() as conn:
        keys = {(k or "").strip("<>") for k in conn.execute(
            text("SELECT dedup_key FROM entries WHERE kind = 'customer_reply'")).scalars()}
    lost = sum(1 for m in acked_set if m.strip("<>") not in keys)
    hook_ids = [m for m in receiver.snapshot() if m in all_mids]
    return {
        "fault": name, "sent": len(all_mids), "acked": len(acked_set), "landed": landed, "dup_landings": dups,
        "lost": lost, "hooks": len(hook_ids), "hooks_unique": len(set(hook_ids)),
        "hooks_missing": sum(1 for m in acked_set if m not in set(hook_ids)),
        "events_sent": len(ev.get("sent", [])), "events_acked": len(ev.get("acked", [])), "events_applied": applied,
        "event_codes": dict(ev.get("codes", {})), "smtp_stats": dict(stats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=60.0)
    parser.add_argument("--outage", type=float, default=5.0,
                        help="seconds PostgreSQL is stopped in the fourth fault (0: no outage)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import tempfile

    from sqlalchemy import create_engine, text

    folder = Path(tempfile.mkdtemp(prefix="faults-"))
    schema = "faults_" + uuid.uuid4().hex[:10]
    admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    db_url = f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"), pool_pre_ping=True)
    redis_cli("FLUSHDB")
    receiver = Receiver()
    api_port, smtp_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({
        "GATEWAY_DATABASE_URL": db_url, "GATEWAY_REDIS_URL": REDIS_URL,
        "GATEWAY_API_PORT": str(api_port), "GATEWAY_SMTP_PORT": str(smtp_port),
        "GATEWAY_API_KEYS": KEY, "GATEWAY_SECRET_KEYS": SECRET_KEYS, "GATEWAY_REPLY_DOMAIN": DOMAIN,
        "GATEWAY_HELPDESK_WEBHOOK_URL": f"http://127.0.0.1:{receiver.port}/hooks/web2chat",
        "GATEWAY_HELPDESK_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "GATEWAY_UNSEEN_DELAY_SECONDS": "3600", "GATEWAY_UNSEEN_MAX_WAIT_SECONDS": "3600",
    })
    parts: dict[str, Part] = {}
    results = []
    try:
        subprocess.run([str(Path(sys.executable).parent / "web2chat-gateway"), "migrate"], cwd=ROOT, env=env,
                       check=True, capture_output=True, timeout=120)
        for name, command in (("api", "api"), ("smtp", "smtp"), ("worker-a", "worker"), ("worker-b", "worker")):
            parts[name] = Part(name, command, env, folder, api_port, smtp_port)
            parts[name].start()
        print(f"split topology up: api :{api_port}, smtp :{smtp_port}, 2 workers; PostgreSQL schema {schema}, "
              f"{REDIS_URL}; logs in {folder}", flush=True)
        tickets = seed(Shim(api_port), args.tickets)  # type: ignore[arg-type]
        states = {t.id: "submitted" for t in tickets}

        def kill_worker() -> None:
            parts["worker-a"].kill9()
            parts["worker-a"].start()

        def flush_redis() -> None:
            redis_cli("FLUSHDB")

        def kill_smtp() -> None:
            parts["smtp"].kill9()
            time.sleep(1.0)
            parts["smtp"].start()

        def stop_postgres() -> None:
            pg_cluster("stop")
            time.sleep(args.outage)
            pg_cluster("start")

        faults = [("kill -9 worker", kill_worker), ("redis FLUSHDB", flush_redis), ("kill -9 smtp", kill_smtp)]
        if args.outage > 0:
            faults.append((f"postgres {args.outage:.0f} s", stop_postgres))
        for i, (name, inject) in enumerate(faults):
            print(f"fault {i + 1}: {name}", flush=True)
            r = run_fault(name, inject, smtp_port=smtp_port, api_port=api_port, tickets=tickets, states=states,
                          receiver=receiver, engine=engine, seconds=args.seconds, settle=args.settle, tag=f"f{i + 1}")
            results.append(r)
            print("  " + json.dumps(r), flush=True)
        print()
        print(f"{'fault':<16}{'sent':>6}{'250':>6}{'landed':>8}{'dup':>5}{'lost':>6}{'hooks':>7}{'uniq':>6}"
              f"{'ev sent':>9}{'ev 202':>8}{'applied':>9}")
        for r in results:
            print(f"{r['fault']:<16}{r['sent']:>6}{r['acked']:>6}{r['landed']:>8}{r['dup_landings']:>5}{r['lost']:>6}"
                  f"{r['hooks']:>7}{r['hooks_unique']:>6}{r['events_sent']:>9}{r['events_acked']:>8}"
                  f"{r['events_applied']:>9}")
        if args.outage <= 0:
            print("PostgreSQL outage: not injected (--outage 0).")
    finally:
        if not pg_running():  # an outage interrupted: the machine's PostgreSQL is started again first
            with contextlib.suppress(Exception):
                pg_cluster("start")
        for p in parts.values():
            with contextlib.suppress(Exception):
                p.stop()
        receiver.server.shutdown()
        engine.dispose()
        with contextlib.suppress(Exception), admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        with contextlib.suppress(Exception):
            redis_cli("FLUSHDB")
        problems = []
        for log in sorted(folder.glob("*.log")):
            lines = [ln for ln in log.read_text(errors="replace").splitlines() if "ERROR" in ln or "Traceback" in ln]
            if lines:
                problems.append(f"{log.name}: {len(lines)} ERROR/Traceback lines, first: {lines[0][:200]}")
        for p in problems:
            print(p)


if __name__ == "__main__":
    main()
