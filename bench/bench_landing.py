"""The landing of replies: CPU per reply when a job lands its replies together, against one at a time.

Run: ``.venv/bin/python bench/bench_landing.py [--rounds 40]``

Lands customer replies (entry, Messenger change, ticket touch, webhook call: ``InboundStore.finish``)
on one ticket, on SQLite (a temporary file) and on PostgreSQL (127.0.0.1:5432, database ``test``, a
fresh schema dropped at the end; skipped with the reason when it does not answer), in batches of 16
and 4 (a job's replies, landed in one transaction) and, as the baseline in the same run, one reply
per call. Prints the process's CPU and the wall time per reply, and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import text  # noqa: E402

from gateway.store import Database, TicketStore, make_engine, migrate  # noqa: E402
from inbound.inbox import InboundStore, Landing  # noqa: E402
from inbound.webhook import WebhookDraft  # noqa: E402
from outbound.event_store import apply_ticket_created  # noqa: E402
from tests.helpers import NOW, ONE_EMAIL, created  # noqa: E402

POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
BATCHES = (16, 4, 1)


def measure(url: str, batch: int, rounds: int) -> tuple[float, float]:
    """(CPU us, wall us) per reply landed ``batch`` at a time, over ``rounds`` batches."""
    db = Database.from_url(url)
    inbound = InboundStore(db)
    ticket = TicketStore(db).get("T-1")
    assert ticket is not None
    run = uuid.uuid4().hex[:8]

    def landings(n: int) -> list[Landing]:
        made = []
        for i in range(batch):
            pk = inbound.save_raw(mail_from="ada@example.com", rcpt_to=["r@x"], raw=b"Reply", now=NOW)
            made.append(Landing(pk=pk, ticket_key=ticket.key, text=f"Reply {n}.{i}", dedup_key=f"<{run}.{n}.{i}@x>",
                                threaded_by="token", now=NOW,
                                webhook=WebhookDraft(url="http://desk.test/hook", payload='{"reply": 1}')))
        return made

    for n in range(3):  # warm-up
        inbound.finish(landings(-n - 1))
    work = [landings(n) for n in range(rounds)]
    cpu, wall = time.process_time(), time.perf_counter()
    for batch_of in work:
        inbound.finish(batch_of)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    db.dispose()
    return cpu / rounds / batch * 1e6, wall / rounds / batch * 1e6


def report(name: str, url: str, rounds: int) -> None:
    db = Database.from_url(url)
    apply_ticket_created(db, created(), now=NOW, response={}, **ONE_EMAIL)
    db.dispose()
    figures = {batch: measure(url, batch, rounds * (16 // batch if batch > 1 else 4)) for batch in BATCHES}
    base_cpu = figures[1][0]
    for batch, (cpu, wall) in figures.items():
        label = "one at a time (baseline)" if batch == 1 else f"{batch} per job"
        print(f"{name:10} {label:26} {cpu:7.0f} us CPU {wall:7.0f} us wall per reply  "
              f"CPU ratio {cpu / base_cpu:4.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=40, help="batches of 16 landed (others: as many replies)")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-landing-")
    sqlite = f"sqlite:///{os.path.join(folder, 'gateway.sqlite3')}"
    migrate(make_engine(sqlite))
    report("sqlite", sqlite, args.rounds)
    schema = "bench_landing_" + uuid.uuid4().hex[:8]
    try:
        admin = make_engine(POSTGRES)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            conn.commit()
    except Exception as exc:  # noqa: BLE001 - said and skipped
        print(f"postgresql: not measured ({type(exc).__name__}: {str(exc).splitlines()[0]})")
        return
    try:
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
        migrate(make_engine(url))
        report("postgresql", url, args.rounds)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            conn.commit()
        admin.dispose()


if __name__ == "__main__":
    main()
