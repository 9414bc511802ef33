"""R2's unseen check: pending teammate replies, decided (pure, ``outbound.unseen``), claimed into
one email per burst, and the check scheduled again; with its store queries.

A teammate reply is due for a check when its event commits (hand-on
:data:`~outbound.event_store.UNSEEN_CHECKS_DUE`, a delayed broker message); a check that finds
replies still inside their window notes the same topic for when they will be due.
"""

from __future__ import annotations

import heapq
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, bindparam, literal, or_, select, update

from gateway.logs import event
from gateway.metrics import UNSEEN_CHECKS, UNSEEN_LATENESS, child
from gateway.models import EntryKind, TeammateReply, Ticket
from gateway.store.db import Database
from gateway.store.records import ticket_from_row
from gateway.store.tables import entries, tickets
from gateway.store.tickets import ticket_query
from gateway.store.uow import note
from outbound.event_store import UNSEEN_CHECKS_DUE, recent_entries_of
from outbound.history import History, HistoryLimits
from outbound.outbox import OutboxDraft, insert_drafts
from outbound.unseen import PendingReply, UnseenDecision, decide, next_due

__all__ = ["CheckOutcome", "CheckRound", "PendingRow", "UnseenChecker", "UnseenStore", "as_teammate_replies"]

log = logging.getLogger(__name__)

#: No conversation history (the default when none is configured).
NO_LIMITS = HistoryLimits(max_entries=0, max_chars=0)
#: Other overdue tickets one check takes along in its transaction (a backlog drains in batches).
CHECK_BATCH = 100
#: Transactions one check job runs at most while more checks are due (a backlog drains in one job).
DRAIN_ROUNDS = 20
#: Checks falling due within the same slot of this many seconds share one delayed broker message
#: (per scheduling process): a thousand replies due a second are ten messages, not a thousand.
SCHEDULE_SLOT_SECONDS = 0.1
#: Seconds after its slot's end a slot's message is due (the broker counts whole milliseconds).
SLOT_MARGIN_SECONDS = 0.02

@dataclass(frozen=True, kw_only=True)
class PendingRow:
    """A teammate reply that has not been claimed for an email yet."""

    key: int
    ticket_key: int
    reply_id: str | None
    author_name: str | None
    text: str
    html: str | None
    sent_at: datetime
    due_at: datetime | None
    seen_at: datetime | None


#: A teammate reply not yet claimed for an email.
_PENDING = (entries.c.kind == EntryKind.TEAMMATE_REPLY.value, entries.c.claimed_at.is_(None))
#: Claims one reply for one email (executed with many parameter sets at once).
_CLAIM = (
    update(entries)
    .where(entries.c.pk == bindparam("entry"))
    .values(emailed_outbox_pk=bindparam("email"))
)


#: Moves a waiting reply's next check to when its ticket's email is due (executed with many parameter sets).
_CHECK_AGAIN = (
    update(entries)
    .where(entries.c.pk == bindparam("entry"), entries.c.due_at < bindparam("again"))
    .values(due_at=bindparam("again"))
)


#: Tickets of teammate replies whose unseen check is due, oldest due first: the terms of the partial index
#: ``ix_entries_unseen_due`` (``gateway.store.tables.UNSEEN_WAITING``), the kind inline so SQLite can use it.
#: A reply seen in time is never emailed and stays unclaimed: it is not waiting any more.
_DUE = (
    select(entries.c.ticket_pk)
    .where(
        entries.c.kind == literal(EntryKind.TEAMMATE_REPLY.value, literal_execute=True),
        entries.c.claimed_at.is_(None),
        entries.c.seen_at.is_(None),
        entries.c.due_at <= bindparam("now"),
    )
    .order_by(entries.c.due_at)
    .limit(bindparam("rows"))
    .with_for_update(of=entries, skip_locked=True)
)


def _pending_query() -> Select[Any]:
    return select(entries).where(*_PENDING)


@dataclass(frozen=True)
class CheckOutcome:
    """What one ticket's check did: the email it stored (if any) and its decision."""

    ticket_key: int
    outbox_pk: int | None
    decision: UnseenDecision
    late_by: float | None = None  # seconds between the email falling due and being stored


@dataclass(frozen=True)
class CheckRound:
    """One transaction's checks, and whether more were due than it took along."""

    outcomes: list[CheckOutcome]
    more: bool


def _row(row: Row[Any]) -> PendingRow:
    m = row._mapping
    return PendingRow(
        key=m["pk"],
        ticket_key=m["ticket_pk"],
        reply_id=m["external_id"],
        author_name=m["author_name"],
        text=m["text"],
        html=m["html"],
        sent_at=m["created_at"],
        due_at=m["due_at"],
        seen_at=m["seen_at"],
    )


class UnseenStore:
    """Reads pending teammate replies; runs one ticket's check in one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def pending(self, ticket_key: int) -> list[PendingRow]:
        """The ticket's teammate replies not yet claimed for an email, oldest first."""
        query = _pending_query().where(entries.c.ticket_pk == ticket_key).order_by(entries.c.pk)
        with self._db.read() as conn:
            return [_row(r) for r in conn.execute(query)]

    def overdue(self, *, before: datetime, limit: int = 5000) -> list[PendingRow]:
        """Unclaimed, unseen replies whose own window ended before ``before`` (what the sweeper looks at)."""
        query = (
            _pending_query()
            .where(entries.c.due_at <= before, or_(entries.c.seen_at.is_(None), entries.c.seen_at > before))
            .order_by(entries.c.due_at)
            .limit(limit)
        )
        with self._db.read() as conn:
            return [_row(r) for r in conn.execute(query)]

    def check(
        self,
        ticket_keys: Sequence[int],
        *,
        now: datetime,
        batch: int,
        decide: Callable[[list[PendingRow]], UnseenDecision],
        draft: Callable[[Ticket, list[PendingRow], History], OutboxDraft],
        history: HistoryLimits = NO_LIMITS,
    ) -> CheckRound:
        """Check ``ticket_keys`` and up to ``batch`` other overdue tickets in one transaction.

        Each ticket is locked first (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises
        writers anyway), so a ticket is checked by one worker at a time and a ticket another
        worker holds is left to it. For each ticket: ``decide`` on its pending replies, and if
        some are to go, claim them and store their one email (built by ``draft``, newest first, with
        the conversation so far read in the same transaction, without the replies it emails).
        Batching turns a backlog of due checks into a few transactions instead of one each. A
        ticket whose email is not due yet (a burst still sliding) has its replies' next check moved
        to when it is (``due_at``), so other checks do not take it along again before then, and a
        check of whatever is due finds it then.
        """

        def work(conn: Connection) -> CheckRound:
            # The asked tickets, and other tickets with a reply whose check is due (oldest due first, from the
            # partial index). On PostgreSQL those entry rows are locked SKIP LOCKED, so concurrent checks take
            # different tickets: measured, without it they all read the same rows and a drain of 1,000 due/s took
            # twice the CPU and 5x the lateness (docs/benchmarks.md). Its price: a check may lock an entry of a
            # ticket another check holds, and each may then wait for the other's entry in its claim; PostgreSQL
            # breaks such a deadlock and the unit of work runs the loser again (gateway.store.uow, Conflicts).
            along: list[int] = []
            due = list(conn.execute(_DUE, {"now": now, "rows": 2 * batch}).scalars())
            for key in due:
                if key not in along:
                    along.append(key)
            more = len(along) > batch or len(due) == 2 * batch  # the rows read may not have reached them all
            candidates = sorted(set(ticket_keys) | set(along[:batch]))
            if not candidates:
                return CheckRound([], more=False)
            locked = conn.execute(
                ticket_query()
                .where(tickets.c.pk.in_(candidates))
                .order_by(tickets.c.pk)
                # NO KEY UPDATE: a ticket whose row an insert of its entries, emails or changes only
                # KEY SHARE-locks is still checked, not skipped; checks still exclude each other.
                .with_for_update(of=tickets, skip_locked=True, key_share=True)
            ).all()
            held = {row._mapping["pk"]: ticket_from_row(row) for row in locked}
            pending: dict[int, list[PendingRow]] = {key: [] for key in held}
            query = select(entries).where(*_PENDING, entries.c.ticket_pk.in_(list(held))).order_by(entries.c.pk)
            for row in conn.execute(query):
                pending[row._mapping["ticket_pk"]].append(_row(row))
            pending = {key: rows for key, rows in pending.items() if rows}  # an asked ticket may have none left
            outcomes: list[CheckOutcome] = []
            emailing: dict[int, list[PendingRow]] = {}  # by ticket: the replies its email shows, newest first
            late: dict[int, float | None] = {}
            for key, rows in pending.items():
                decision = decide(rows)
                outcomes.append(CheckOutcome(key, None, decision))
                if decision.send:
                    chosen = set(decision.send)
                    replies = [r for r in rows if r.key in chosen]
                    replies.sort(key=lambda r: (r.sent_at, r.key), reverse=True)
                    emailing[key] = replies
                    due = [r.due_at for r in replies if r.due_at is not None]
                    late[key] = (now - max(due)).total_seconds() if due else None
            # The conversation so far of every ticket emailed, read together, without the replies emailed.
            shown = frozenset(r.key for replies in emailing.values() for r in replies)
            so_far = recent_entries_of(conn, list(emailing), limits=history, exclude=shown)
            drafts = [draft(held[key], replies, so_far[key]) for key, replies in emailing.items()]
            outbox_pks = iter(insert_drafts(conn, drafts, now=now))
            claimed: list[dict[str, int | None]] = []
            for i, outcome in enumerate(outcomes):
                if outcome.decision.send:
                    outcomes[i] = CheckOutcome(outcome.ticket_key, next(outbox_pks), outcome.decision,
                                               late.get(outcome.ticket_key))
                    claimed += [{"entry": k, "email": outcomes[i].outbox_pk} for k in outcome.decision.send]
            if claimed:
                conn.execute(_CLAIM.values(claimed_at=now), claimed)
            sent = {key for outcome in outcomes for key in outcome.decision.send}
            again = [{"entry": row.key, "again": outcome.decision.check_again_at}
                     for outcome in outcomes if outcome.decision.check_again_at is not None
                     for row in pending[outcome.ticket_key] if row.key not in sent]
            if again:
                conn.execute(_CHECK_AGAIN, again)
            for outcome in outcomes:
                if outcome.decision.check_again_at is not None:
                    note(conn, UNSEEN_CHECKS_DUE, (outcome.ticket_key, outcome.decision.check_again_at))
            return CheckRound(outcomes, more=more)

        return self._db.write(work)


#: Builds a burst's email: the ticket, its replies (newest first), the conversation so far, now.
DraftEmail = Callable[[Ticket, list[PendingRow], History, datetime], OutboxDraft]


def as_teammate_replies(rows: list[PendingRow]) -> list[TeammateReply]:
    """The claimed rows as the replies the ``teammate_reply`` email shows (order kept)."""
    return [
        TeammateReply(
            id=r.reply_id or "", author_name=r.author_name or "", text=r.text, html=r.html, created_at=r.sent_at
        )
        for r in rows
    ]


def _pending(rows: list[PendingRow]) -> list[PendingReply]:
    return [PendingReply(r.key, r.sent_at, r.seen_at) for r in rows]


class UnseenChecker:
    """Emails a ticket's teammate replies that stayed unseen, once, in one email per burst.

    Checks are scheduled as delayed broker messages, one per slot of ``SCHEDULE_SLOT_SECONDS`` in
    which some fall due: the first scheduling of a slot in this process sends the slot's message
    with the tickets it knows, later ones in the same slot send nothing, because the slot's check
    also takes along whatever is due by then (the ``due_at`` of the tickets' replies says so).
    A reply the Messenger stamped seen at a time still ahead of the checker's clock is not found
    that way (unless its ticket is named in the message); by the time the sweeper looks it counts
    as seen, so it is not emailed (the customer saw it). Each message is sent ``SLOT_MARGIN_SECONDS``
    after its slot ends, and a slot ending that soon is not shared any more, so a check that runs
    a little early (whole milliseconds, another host's clock) does not leave later tickets behind."""

    def __init__(
        self,
        *,
        store: UnseenStore,
        draft_email: DraftEmail,
        schedule: Callable[[list[int], float], None],
        clock: Callable[[], datetime],
        delay: timedelta,
        max_wait: timedelta,
        batch: int = CHECK_BATCH,
        history: HistoryLimits = NO_LIMITS,
    ) -> None:
        self._store = store
        self._history = history
        self._draft_email = draft_email
        self._schedule = schedule
        self._clock = clock
        self._delay = delay
        self._max_wait = max_wait
        self._batch = batch
        self._lock = threading.Lock()
        self._slots: set[int] = set()  # slots whose message this process sent
        self._ends: list[int] = []  # the same slots, a heap: the soonest to end first

    def schedule_for(self, ticket_key: int, due_at: datetime) -> None:
        """Ask for a check of ``ticket_key`` at ``due_at`` (a delayed broker message, shared by its slot)."""
        self.schedule_due([(ticket_key, due_at)])

    def schedule_due(self, due: Iterable[tuple[int, datetime]]) -> None:
        """The hand-on of :data:`UNSEEN_CHECKS_DUE`: schedule each committed ``(ticket key, due at)``, one
        message per slot not already scheduled by this process."""
        by_slot: dict[int, list[int]] = {}
        for ticket_key, due_at in due:
            by_slot.setdefault(math.ceil(due_at.timestamp() / SCHEDULE_SLOT_SECONDS), []).append(ticket_key)
        now = self._clock().timestamp()
        with self._lock:
            while self._ends and self._ends[0] * SCHEDULE_SLOT_SECONDS <= now + SCHEDULE_SLOT_SECONDS:
                self._slots.discard(heapq.heappop(self._ends))
            new = {slot: keys for slot, keys in by_slot.items() if slot not in self._slots}
            for slot in new:
                self._slots.add(slot)
                heapq.heappush(self._ends, slot)
        unsent = sorted(new)
        try:
            while unsent:
                slot = unsent[0]
                delay = slot * SCHEDULE_SLOT_SECONDS - now + SLOT_MARGIN_SECONDS
                self._schedule(sorted(set(new[slot])), max(0.0, delay))
                unsent.pop(0)
        finally:
            with self._lock:  # not sent (the broker is down): the next scheduling of these slots sends them
                for slot in unsent:
                    self._slots.discard(slot)  # its heap entry goes when it ends

    def check(self, ticket_keys: int | list[int]) -> list[int]:
        """The job: check ``ticket_keys`` (one key from a job queued by an older version) and whatever else
        is due now, in transactions of up to ``batch`` other tickets until none is left (at most
        ``DRAIN_ROUNDS``); return the outbox ids stored."""
        keys = [ticket_keys] if isinstance(ticket_keys, int) else list(ticket_keys)
        stored: list[int] = []
        for _ in range(DRAIN_ROUNDS):
            checked = self._check_once(keys)
            stored += [o.outbox_pk for o in checked.outcomes if o.outbox_pk is not None]
            if not checked.more:
                break
            keys = []
        else:
            self._schedule([], 0.0)  # still more due: another job goes on now
        return stored  # handed on after each commit

    def _check_once(self, ticket_keys: list[int]) -> CheckRound:
        now = self._clock()
        checked = self._store.check(
            ticket_keys,
            now=now,
            batch=self._batch,
            decide=lambda rows: decide(_pending(rows), now=now, delay=self._delay, max_wait=self._max_wait),
            draft=lambda ticket, rows, so_far: self._draft_email(ticket, rows, so_far, now),
            history=self._history,
        )
        for o in checked.outcomes:
            again = o.decision.check_again_at
            child(UNSEEN_CHECKS, "emailed" if o.outbox_pk else "wait" if again else "nothing").inc()
            if o.late_by is not None:
                UNSEEN_LATENESS.observe(o.late_by)
            event(log, "unseen.checked", ticket_key=o.ticket_key, emailed_outbox_id=o.outbox_pk,
                  replies_emailed=len(o.decision.send) or None, check_again_at=again.isoformat() if again else None)
        return checked

    def next_due(self, ticket_key: int) -> datetime | None:
        """When the ticket's unseen replies are next due to be emailed (None: nothing pending)."""
        pending = _pending(self._store.pending(ticket_key))
        return next_due(pending, delay=self._delay, max_wait=self._max_wait, now=self._clock())

    def overdue_tickets(self, *, grace: timedelta) -> set[int]:
        """Tickets whose check is overdue by more than ``grace`` (lost broker message, dead worker)."""
        now = self._clock()
        before = now - grace
        by_ticket: dict[int, list[PendingRow]] = {}
        for row in self._store.overdue(before=before):
            by_ticket.setdefault(row.ticket_key, []).append(row)
        overdue = set()
        for ticket_key in by_ticket:
            pending = _pending(self._store.pending(ticket_key))
            due = next_due(pending, delay=self._delay, max_wait=self._max_wait, now=now)
            if due is not None and due <= before:
                overdue.add(ticket_key)
        return overdue
