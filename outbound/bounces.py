"""The delivery loop: bounces and complaints that come back for one email, believed only when
genuine, suppressing by evidence, told to the help desk and shown on the ticket; with its store.

Every outbound email leaves with its own signed envelope sender (``bounces+<token>@<reply
domain>``, ``gateway.tokens``). A message arriving at such an address names that email; its
report (``inbound.bounce_report``) counts against an address only when it reports **that
email's recipient** (a complaint that names nobody counts for the email's recipient: feedback
loops often redact it). Nothing else may suppress an address the gateway did not send that email
to: a bounce-shaped message at a reply address, or naming anybody else, is recorded and believed
by nobody.

Evidence adds up per address (:class:`BouncePolicy`): a hard bounce or a complaint suppresses at
once; soft bounces add a point each and suppress at a threshold, and are forgotten after a
while. Every suppression keeps its evidence (the email, the bounce, the code and the text) and can
be lifted, which also forgets the score. Each email's ledger (:data:`tables.delivery_events`)
records what happened to it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from gateway.logs import event
from gateway.models import EntryKind, OutboxStatus
from gateway.store.changes import ChangeKind, record_change
from gateway.store.db import Database
from gateway.store.records import inserted_pk
from gateway.store.tables import (
    bounce_scores,
    delivery_events,
    entries,
    inbound_messages,
    outbox,
    suppressions,
    tickets,
)
from inbound.bounce_report import BounceKind, BounceReport, FailedRecipient
from inbound.webhook import WebhookDraft, insert_webhook
from outbound.outbox import DeliveryEvent, LedgerKind, Outcome, ledger_rows, suppress_address

__all__ = [
    "BouncePolicy",
    "DeliveryLoop",
    "Suppression",
    "believe",
]

log = logging.getLogger(__name__)

#: Days after which soft-bounce points are forgotten.
FORGET_AFTER_DAYS = 30


@dataclass(frozen=True)
class BouncePolicy:
    """How evidence adds up: points per soft and hard bounce, the threshold, and how long points last."""

    soft_points: int = 1
    hard_points: int = 4
    suppress_at: int = 4
    forget_after: timedelta = timedelta(days=FORGET_AFTER_DAYS)


@dataclass(frozen=True)
class Suppression:
    """An address that is not emailed, and why."""

    address: str
    reason: str
    since: datetime
    kind: str | None
    outbox_pk: int | None
    inbound_pk: int | None
    status_code: str | None
    diagnostic: str | None


def believe(report: BounceReport, *, recipient: str) -> tuple[FailedRecipient | None, str]:
    """What ``report`` (received at the bounce address of an email sent to ``recipient``) says of
    that recipient, and why it is or is not believed (pure)."""
    if report.kind in (BounceKind.NOT_A_BOUNCE, BounceKind.DELAYED):
        return None, f"no failure reported ({report.kind.value})"
    named = report.for_address(recipient)
    if named is not None:
        return named, f"{report.kind.value} bounce for the email's recipient ({report.how})"
    if report.kind is BounceKind.COMPLAINT and not report.recipients:
        return FailedRecipient(recipient, BounceKind.COMPLAINT), "complaint about this email (recipient redacted)"
    others = ", ".join(r.address for r in report.recipients) or "nobody"
    return None, f"reports {others}, not this email's recipient {recipient}: not believed"


def _key(address: str) -> str:
    return address.strip().lower()


class DeliveryLoop:
    """Records bounces and complaints for the emails they name, suppresses by evidence, lists and lifts."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Callable[[], datetime],
        policy: BouncePolicy = BouncePolicy(),
        webhook_url: str | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._policy = policy
        self._webhook_url = webhook_url

    def received(self, inbound_pk: int, email_key: int, report: BounceReport, message_id: str | None = None) -> str:
        """Record what message ``inbound_pk``, received at email ``email_key``'s bounce address,
        reports; return one line saying what was done. Once: the same message processed again, or
        delivered again (the same ``message_id``: an MTA retrying), does nothing more."""
        now = self._clock()

        def work(conn: Connection) -> str:
            same = delivery_events.c.inbound_pk == inbound_pk
            if message_id:
                again = select(inbound_messages.c.pk).where(inbound_messages.c.message_id == message_id[:250])
                same = or_(same, and_(delivery_events.c.outbox_pk == email_key,
                                      delivery_events.c.inbound_pk.in_(again)))
            if conn.execute(select(delivery_events.c.pk).where(same).limit(1)).first() is not None:
                return f"already recorded for email {email_key}"
            email = conn.execute(
                select(outbox.c.pk, outbox.c.to_addr, outbox.c.ticket_pk, outbox.c.message_id)
                .where(outbox.c.pk == email_key)
            ).first()
            if email is None:
                return f"names email {email_key}, which does not exist: not believed"
            failed, why = believe(report, recipient=email.to_addr)
            if failed is None:
                return f"email {email_key}: {why}"
            return self._record(conn, email, failed, report, inbound_pk=inbound_pk, why=why, now=now)

        decided = self._db.write(work)
        event(log, "bounce.received", inbound_id=inbound_pk, email_id=email_key, kind=report.kind.value,
              recognised_by=report.how or None, decision=decided)
        return decided

    def _record(self, conn: Connection, email: Any, failed: FailedRecipient, report: BounceReport, *,
                inbound_pk: int, why: str, now: datetime) -> str:
        kind = LedgerKind.COMPLAINED if failed.kind is BounceKind.COMPLAINT else LedgerKind.BOUNCED
        detail = f"{failed.kind.value}: {failed.diagnostic}".strip().rstrip(":")
        events = [DeliveryEvent(kind, now, failed.status or None, detail, inbound_pk)]
        suppressed = self._add_evidence(conn, email, failed, inbound_pk=inbound_pk, now=now)
        if suppressed:
            events.append(DeliveryEvent(LedgerKind.SUPPRESSED, now, failed.status or None,
                                        f"{email.to_addr} suppressed: {suppressed}", inbound_pk))
        conn.execute(insert(delivery_events), ledger_rows(email.pk, events))
        entry_pk = None
        if email.ticket_pk is not None and (failed.kind is BounceKind.HARD or suppressed):
            entry_pk = inserted_pk(conn.execute(insert(entries).values(
                ticket_pk=email.ticket_pk, kind=EntryKind.EMAIL_UNDELIVERABLE.value, created_at=now,
                text=f"An email to {email.to_addr} could not be delivered.",
            )))
            record_change(conn, ticket_key=email.ticket_pk, kind=ChangeKind.ENTRY, entry_key=entry_pk, now=now)
        if self._webhook_url:
            payload = self._payload(conn, email, failed, report, suppressed=bool(suppressed), now=now)
            insert_webhook(conn, WebhookDraft(self._webhook_url, payload), entry_pk=entry_pk, now=now)
        return f"email {email.pk}: {why}" + (f"; {email.to_addr} suppressed" if suppressed else "")

    def _add_evidence(self, conn: Connection, email: Any, failed: FailedRecipient, *, inbound_pk: int | None,
                      now: datetime) -> str:
        """Add the failure to the address's score; the reason it is now suppressed, or "" if not."""
        key = _key(email.to_addr)
        if conn.execute(select(suppressions.c.address).where(suppressions.c.address == key)).first():
            return ""
        if failed.kind is BounceKind.COMPLAINT:
            reason = "complaint"
        else:
            points = self._policy.hard_points if failed.kind is BounceKind.HARD else self._policy.soft_points
            row = conn.execute(
                select(bounce_scores.c.score, bounce_scores.c.updated_at).where(bounce_scores.c.address == key)
            ).first()
            kept = row.score if row is not None and now - row.updated_at < self._policy.forget_after else 0
            score = kept + points
            if row is None:
                conn.execute(insert(bounce_scores).values(address=key, score=score, updated_at=now))
            else:
                conn.execute(update(bounce_scores).where(bounce_scores.c.address == key)
                             .values(score=score, updated_at=now))
            if score < self._policy.suppress_at:
                return ""
            reason = f"{failed.kind.value} bounce" + (f"s (score {score})" if failed.kind is BounceKind.SOFT else "")
        event(log, "address.suppressed", level=logging.WARNING, address=key, reason=reason, email_id=email.pk,
              inbound_id=inbound_pk, status=failed.status or None)
        suppress_address(conn, key, reason=reason, now=now, kind=failed.kind.value, outbox_pk=email.pk,
                         inbound_pk=inbound_pk, status_code=failed.status or None, diagnostic=failed.diagnostic)
        return reason

    def _payload(self, conn: Connection, email: Any, failed: FailedRecipient, report: BounceReport, *,
                 suppressed: bool, now: datetime) -> str:
        ticket_id = self._ticket_id(conn, email.ticket_pk)
        kind = "ticket.email_complained" if failed.kind is BounceKind.COMPLAINT else "ticket.email_bounced"
        return json.dumps({
            "type": kind,
            "ticket": {"id": ticket_id},
            "email": {"id": email.pk, "message_id": email.message_id, "to": email.to_addr},
            "bounce": {"kind": failed.kind.value, "status": failed.status or None,
                       "diagnostic": failed.diagnostic or None, "recognised_by": report.how},
            "suppressed": suppressed,
            "at": now.isoformat(),
        }, sort_keys=True, ensure_ascii=False)

    def announce(self, conn: Connection, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Tell the help desk, in the transaction recording them, of the relay refusing an address for
        good (``ticket.email_bounced``, kind ``relay``) and of emails held for a suppressed address
        (``ticket.email_suppressed``)."""
        if not self._webhook_url:
            return
        telling = [o for o in outcomes if o.suppress or o.status is OutboxStatus.SUPPRESSED]
        if not telling:
            return
        emails = {r.pk: r for r in conn.execute(
            select(outbox.c.pk, outbox.c.to_addr, outbox.c.ticket_pk, outbox.c.message_id)
            .where(outbox.c.pk.in_([o.pk for o in telling]))
        )}
        for o in telling:
            email = emails.get(o.pk)
            if email is None:
                continue
            if o.suppress:
                failed = FailedRecipient(email.to_addr, BounceKind.HARD, "", o.error or "")
                payload = self._payload(conn, email, failed, BounceReport(BounceKind.HARD, (failed,), "relay"),
                                        suppressed=True, now=now)
            else:
                payload = self._held(conn, email, now=now)
            insert_webhook(conn, WebhookDraft(self._webhook_url, payload), entry_pk=None, now=now)

    def _held(self, conn: Connection, email: Any, *, now: datetime) -> str:
        reason = conn.execute(
            select(suppressions.c.reason).where(suppressions.c.address == _key(email.to_addr))
        ).scalar()
        return json.dumps({
            "type": "ticket.email_suppressed",
            "ticket": {"id": self._ticket_id(conn, email.ticket_pk)},
            "email": {"id": email.pk, "message_id": email.message_id, "to": email.to_addr},
            "suppression": {"address": _key(email.to_addr), "reason": reason},
            "at": now.isoformat(),
        }, sort_keys=True, ensure_ascii=False)

    @staticmethod
    def _ticket_id(conn: Connection, ticket_pk: int | None) -> str | None:
        if ticket_pk is None:
            return None
        value = conn.execute(select(tickets.c.external_id).where(tickets.c.pk == ticket_pk)).scalar()
        return str(value) if value is not None else None

    # -- reads and lifting -------------------------------------------------------------------

    def suppressions(self, *, limit: int = 100) -> list[Suppression]:
        """Suppressed addresses, newest first."""
        with self._db.read() as conn:
            rows = conn.execute(select(suppressions).order_by(suppressions.c.created_at.desc()).limit(limit)).all()
        return [_suppression(r) for r in rows]

    def suppression(self, address: str) -> Suppression | None:
        """Why ``address`` is suppressed, or None if it is not."""
        with self._db.read() as conn:
            row = conn.execute(select(suppressions).where(suppressions.c.address == _key(address))).first()
        return _suppression(row) if row is not None else None

    def lift(self, address: str) -> bool:
        """Email ``address`` again (and forget its bounce score); False if it was not suppressed."""

        def work(conn: Connection) -> bool:
            conn.execute(delete(bounce_scores).where(bounce_scores.c.address == _key(address)))
            return conn.execute(delete(suppressions).where(suppressions.c.address == _key(address))).rowcount == 1

        return self._db.write(work)


def _suppression(row: Any) -> Suppression:
    return Suppression(address=row.address, reason=row.reason, since=row.created_at, kind=row.kind,
                       outbox_pk=row.outbox_pk, inbound_pk=row.inbound_pk, status_code=row.status_code,
                       diagnostic=row.diagnostic)
