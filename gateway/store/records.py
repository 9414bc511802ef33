"""Row -> record conversions shared by the store's query modules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.models import Customer, Entry, EntryKind, OutboxEmail, OutboxStatus, Ticket, TicketState

__all__ = ["entry_from_row", "inserted_pk", "outbox_from_mapping", "outbox_from_row", "storable", "ticket_from_row"]


def storable(text: str) -> str:
    """``text`` as every backend can hold it: PostgreSQL refuses NUL in text columns, so each NUL
    becomes U+FFFD (the replacement character a reader sees where something could not be kept)."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def inserted_pk(result: Any) -> int:
    """The primary key an ``INSERT`` just generated."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the insert generated no primary key")
    return int(key[0])


def ticket_from_row(row: Any) -> Ticket:
    """A :class:`Ticket` from a row of ``tickets`` joined with ``customers``."""
    m = row._mapping
    return Ticket(
        key=m["pk"],
        id=m["external_id"],
        title=m["title"],
        description=m["description"],
        state=TicketState(m["state"]),
        created_by=m["created_by"],
        created_at=m["created_at"],
        last_activity_at=m["last_activity_at"],
        root_message_id=m["root_message_id"],
        customer=Customer(id=m["customer_id"], email=m["email"], name=m["name"], locale=m["locale"],
                          time_zone=m["time_zone"]),
    )


def entry_from_row(row: Any) -> Entry:
    """An :class:`Entry` from a row of ``entries``."""
    m = row._mapping
    return Entry(
        kind=EntryKind(m["kind"]),
        text=m["text"],
        created_at=m["created_at"],
        author_name=m["author_name"],
        channel=m["channel"],
        external_id=m["external_id"],
        state_from=m["state_from"],
        state_to=m["state_to"],
    )


def outbox_from_row(row: Any) -> OutboxEmail:
    """An :class:`OutboxEmail` from a row of ``outbox``."""
    return outbox_from_mapping(row._mapping)


def outbox_from_mapping(m: Mapping[str, Any]) -> OutboxEmail:
    """An :class:`OutboxEmail` from the values of an ``outbox`` row, by column name."""
    return OutboxEmail(
        pk=m["pk"],
        ticket_key=m["ticket_pk"],
        kind=m["kind"],
        to=m["to_addr"],
        subject=m["subject"],
        message_id=m["message_id"],
        raw=bytes(m["raw"]),
        status=OutboxStatus(m["status"]),
        attempts=m["attempts"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        last_error=m["last_error"],
        next_attempt_at=m["next_attempt_at"],
    )
