"""The changes log: every change to a customer's Messenger view, in commit order per customer.

Writers call :func:`record_change` inside the transaction that makes the change (a thread
entry, a quiet state change, a seen receipt). It locks the customer's row first (PostgreSQL
``SELECT ... FOR UPDATE``; SQLite writers are serial anyway), so within one customer change ids
commit in increasing order: a reader resuming "after id N" never skips a change that commits
late. That is what makes ``Last-Event-ID`` resume exact, from any API process.

Each change notes :data:`CUSTOMERS_CHANGED` (the customer's id); once the transaction commits,
the unit of work hands the ids to :func:`publisher` (the live-update wake-up signal).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, bindparam, func, insert, select

from gateway.store.db import Database
from gateway.store.sqlite import Prebuilt
from gateway.store.tables import changes, customers, tickets
from gateway.store.uow import note

__all__ = [
    "CUSTOMERS_CHANGED", "Change", "ChangeKind", "ChangeLog", "append_change", "publisher", "record_change",
    "record_changes",
]

log = logging.getLogger(__name__)

#: The hand-on topic of the customers a transaction changed (their ids).
CUSTOMERS_CHANGED = "customers_changed"


class ChangeKind(StrEnum):
    """What changed (values of ``changes.kind``)."""

    ENTRY = "entry"
    STATE = "state"
    SEEN = "seen"


@dataclass(frozen=True)
class Change:
    """One row of the log: ``pk`` is the event id the Messenger resumes from."""

    pk: int
    ticket_key: int
    kind: ChangeKind
    entry_key: int | None


_CUSTOMER_OF = (
    select(tickets.c.customer_pk, customers.c.external_id)
    .join(customers, customers.c.pk == tickets.c.customer_pk)
    .where(tickets.c.pk == bindparam("ticket_key"))
)
_LOCK_CUSTOMER = select(customers.c.pk).where(customers.c.pk == bindparam("customer_pk")).with_for_update()
_APPEND = Prebuilt(insert(changes))
#: The customers of several tickets, and the lock on their rows, in key order (two writers lock alike).
_CUSTOMERS_OF = (
    select(tickets.c.pk, tickets.c.customer_pk, customers.c.external_id)
    .join(customers, customers.c.pk == tickets.c.customer_pk)
    .where(tickets.c.pk.in_(bindparam("ticket_keys", expanding=True)))
)
_LOCK_CUSTOMERS = (
    select(customers.c.pk).where(customers.c.pk.in_(bindparam("customer_pks", expanding=True)))
    .order_by(customers.c.pk).with_for_update()
)


def record_change(
    conn: Connection, *, ticket_key: int, kind: ChangeKind, now: datetime, entry_key: int | None = None
) -> int:
    """Log a change to ticket ``ticket_key`` inside the caller's transaction; return its id."""
    customer_pk, customer_id = conn.execute(_CUSTOMER_OF, {"ticket_key": ticket_key}).one()
    conn.execute(_LOCK_CUSTOMER, {"customer_pk": customer_pk})
    return append_change(conn, customer_pk=customer_pk, customer_id=customer_id, ticket_key=ticket_key, kind=kind,
                         now=now, entry_key=entry_key)


def record_changes(conn: Connection, made: Sequence[tuple[int, int | None, datetime]], *, kind: ChangeKind) -> None:
    """Log several changes of ``kind`` (``(ticket key, entry key, when)`` each, in that order) inside the
    caller's transaction: what :func:`record_change` does for each, in three statements however many."""
    if len(made) < 2:
        for ticket_key, entry_key, now in made:
            record_change(conn, ticket_key=ticket_key, kind=kind, entry_key=entry_key, now=now)
        return
    owners = {row.pk: (row.customer_pk, row.external_id)
              for row in conn.execute(_CUSTOMERS_OF, {"ticket_keys": sorted({t for t, _, _ in made})})}
    conn.execute(_LOCK_CUSTOMERS, {"customer_pks": sorted({pk for pk, _ in owners.values()})}).all()
    _APPEND.run_many(conn, [
        {"customer_pk": owners[ticket_key][0], "ticket_pk": ticket_key, "kind": kind.value, "entry_pk": entry_key,
         "created_at": now}
        for ticket_key, entry_key, now in made
    ])
    for ticket_key, _, _ in made:
        note(conn, CUSTOMERS_CHANGED, owners[ticket_key][1])


def append_change(
    conn: Connection, *, customer_pk: int, customer_id: str, ticket_key: int, kind: ChangeKind, now: datetime,
    entry_key: int | None = None,
) -> int:
    """Log a change for a customer whose row the caller's transaction already holds (written or
    locked ``FOR UPDATE``): what :func:`record_change` does once it has the lock."""
    pk = _APPEND.insert(conn, {
        "customer_pk": customer_pk, "ticket_pk": ticket_key, "kind": kind.value, "entry_pk": entry_key,
        "created_at": now,
    })
    note(conn, CUSTOMERS_CHANGED, customer_id)
    return pk


def publisher(publish_many: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    """The hand-on of :data:`CUSTOMERS_CHANGED`: ``publish_many`` once per commit, with each customer
    it changed once (one Redis round trip for a group commit's customers, not one per customer)."""

    def _publish(customer_ids: list[str]) -> None:
        changed = sorted(set(customer_ids))
        try:
            publish_many(changed)
        except Exception:  # Redis is down: logged; the streams find the changes at the fallback poll
            log.warning("could not publish the changes of %d customers (%s)", len(changed),
                        ", ".join(map(repr, changed[:5])) + (", ..." if len(changed) > 5 else ""), exc_info=True)

    return _publish


#: The newest change of a customer (built once: every Recent tickets read asks it).
_LATEST = (
    select(func.max(changes.c.pk))
    .join(customers, customers.c.pk == changes.c.customer_pk)
    .where(customers.c.external_id == bindparam("customer_id"))
)


class ChangeLog:
    """Reads the log."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def latest(self, customer_id: str) -> int:
        """The id of the customer's newest change; 0 when there is none."""
        with self._db.read() as conn:
            return int(conn.execute(_LATEST, {"customer_id": customer_id}).scalar() or 0)

    def since(self, customer_id: str, *, after: int, limit: int) -> list[Change]:
        """The customer's changes with an id above ``after``, oldest first, at most ``limit``."""
        query = (
            select(changes.c.pk, changes.c.ticket_pk, changes.c.kind, changes.c.entry_pk)
            .join(customers, customers.c.pk == changes.c.customer_pk)
            .where(customers.c.external_id == customer_id, changes.c.pk > after)
            .order_by(changes.c.pk)
            .limit(limit)
        )
        with self._db.read() as conn:
            return [Change(r.pk, r.ticket_pk, ChangeKind(r.kind), r.entry_pk) for r in conn.execute(query)]

    def tail(self, *, after: int, limit: int = 1000) -> tuple[int, set[str]]:
        """Every customer with a change above ``after`` and the newest id seen (the fallback poll)."""
        query = (
            select(changes.c.pk, customers.c.external_id)
            .join(customers, customers.c.pk == changes.c.customer_pk)
            .where(changes.c.pk > after)
            .order_by(changes.c.pk)
            .limit(limit)
        )
        with self._db.read() as conn:
            rows = conn.execute(query).all()
        return (rows[-1].pk if rows else after), {r.external_id for r in rows}
