"""Request and response bodies of the HTTP API (pydantic), converted to plain records."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from gateway.addresses import normalise_address
from gateway.models import Customer, TeammateReply, TicketCreated, TicketReplied, TicketState, TicketStateChanged
from gateway.store.records import storable

__all__ = [
    "EARLIEST",
    "EVENT_TYPES",
    "LATEST",
    "MAX_ADDRESS_LENGTH",
    "MAX_ID_LENGTH",
    "MAX_ROW_ID",
    "AuthorIn",
    "CustomerIn",
    "EventIn",
    "Identifier",
    "InstantIn",
    "ReplyIn",
    "TicketCreatedIn",
    "TicketIn",
    "TicketReplyIn",
    "TicketStateChangedIn",
    "Words",
    "identifier",
    "instant",
    "well_formed",
]

#: The largest id a row may have on every backend (the ``pk`` columns are PostgreSQL ``integer``, 32 bits).
MAX_ROW_ID = 2**31 - 1

#: The longest id the help desk may give (``tickets.external_id`` and the like are ``varchar(200)``).
MAX_ID_LENGTH = 200

#: The longest address the store holds (``varchar(320)``: 64 for the local part, @, 255 for the domain).
MAX_ADDRESS_LENGTH = 320

#: The earliest instant an event or receipt may carry (older ones are a mistake, and leave room
#: for the arithmetic done on them without leaving ``datetime``'s range).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
#: The latest instant an event or receipt may carry.
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def identifier(value: str) -> str:
    """``value`` if it is fit to be an id: no control characters (NUL, CR, LF, TAB ...), which
    PostgreSQL cannot hold (NUL) or which would end up in headers and logs; a ``ValueError`` otherwise."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise ValueError(f"control character {char!r} not allowed in an id")
    return value


def well_formed(value: str) -> bool:
    """Whether ``value`` could be an id the help desk gave (a path parameter that is not one names nothing)."""
    try:
        identifier(value)
    except ValueError:
        return False
    return 0 < len(value) <= MAX_ID_LENGTH


def instant(value: datetime) -> datetime:
    """``value`` in UTC if it lies between :data:`EARLIEST` and :data:`LATEST`; a ``ValueError`` otherwise.

    ``0001-01-01T00:00:00+01:00`` is a valid ISO 8601 instant that ``datetime`` cannot even
    convert to UTC (``OverflowError``).
    """
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"instant out of range: {value.isoformat()} (give one from {EARLIEST.year} "
                         f"to {LATEST.year - 1})")
    return utc


#: An id from the help desk (ticket, event, reply, customer): no control characters.
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH), AfterValidator(identifier)]
#: An aware instant within :data:`EARLIEST` .. :data:`LATEST`, in UTC.
InstantIn = Annotated[AwareDatetime, AfterValidator(instant)]
#: Free text (titles, names, reply bodies): every backend must hold it, so NUL becomes U+FFFD.
Words = AfterValidator(storable)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TicketIn(_Strict):
    """The ticket in a ``ticket.created`` event."""

    id: Identifier
    title: Annotated[str, Field(min_length=1, max_length=500), Words]
    description: Annotated[str, Field(max_length=100_000), Words] = ""
    state: TicketState = TicketState.SUBMITTED
    created_by: Literal["teammate", "customer"]


def _known_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class CustomerIn(_Strict):
    """The customer in a ``ticket.created`` event."""

    id: Identifier
    email: Annotated[str, Field(max_length=254), AfterValidator(identifier), AfterValidator(normalise_address)]
    name: Annotated[str, Field(max_length=200), Words] = ""
    locale: str = Field(default="en", max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    time_zone: Annotated[str | None, Field(max_length=64, description="IANA zone, e.g. Europe/Berlin: times in "
                                           "the customer's emails are shown in it (UTC when absent)"),
                         AfterValidator(_known_zone)] = None


class TicketCreatedIn(_Strict):
    """``ticket.created``: a teammate or the customer created a ticket."""

    type: Literal["ticket.created"]
    id: Identifier
    occurred_at: InstantIn
    ticket: TicketIn
    customer: CustomerIn

    def record(self) -> TicketCreated:
        """As the plain record the core works on."""
        return TicketCreated(
            event_id=self.id,
            occurred_at=self.occurred_at,
            ticket_id=self.ticket.id,
            title=self.ticket.title,
            description=self.ticket.description,
            state=self.ticket.state,
            created_by=self.ticket.created_by,
            customer=Customer(
                id=self.customer.id,
                email=self.customer.email,
                name=self.customer.name,
                locale=self.customer.locale,
                time_zone=self.customer.time_zone,
            ),
        )


def _storable_or_none(value: str | None) -> str | None:
    return None if value is None else storable(value)


class AuthorIn(_Strict):
    """The teammate who wrote a reply."""

    name: Annotated[str, Field(min_length=1, max_length=200), Words]


class ReplyIn(_Strict):
    """The reply in a ``ticket.reply`` event; ``html`` is optional."""

    id: Identifier
    author: AuthorIn
    text: Annotated[str, Field(min_length=1, max_length=100_000), Words]
    html: Annotated[str | None, Field(max_length=500_000), AfterValidator(_storable_or_none)] = None


class TicketReplyIn(_Strict):
    """``ticket.reply``: a teammate answered on the ticket."""

    type: Literal["ticket.reply"]
    id: Identifier
    occurred_at: InstantIn
    ticket_id: Identifier
    reply: ReplyIn

    def record(self) -> TicketReplied:
        """As the plain record the core works on."""
        occurred = self.occurred_at
        return TicketReplied(
            event_id=self.id,
            occurred_at=occurred,
            ticket_id=self.ticket_id,
            reply=TeammateReply(
                id=self.reply.id,
                author_name=self.reply.author.name,
                text=self.reply.text,
                html=self.reply.html,
                created_at=occurred,
            ),
        )


class TicketStateChangedIn(_Strict):
    """``ticket.state_changed``: the ticket moved from one state to another.

    The state names are plain strings here: the policy checks them, so an unknown name gets
    the same ``{"error", "code"}`` answer as any other impossible state change.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    type: Literal["ticket.state_changed"]
    id: Identifier
    occurred_at: InstantIn
    ticket_id: Identifier
    state_from: Annotated[str, Field(alias="from", min_length=1, max_length=32), AfterValidator(identifier)]
    state_to: Annotated[str, Field(alias="to", min_length=1, max_length=32), AfterValidator(identifier)]

    def record(self) -> TicketStateChanged:
        """As the plain record the core works on."""
        return TicketStateChanged(
            event_id=self.id,
            occurred_at=self.occurred_at,
            ticket_id=self.ticket_id,
            state_from=self.state_from,
            state_to=self.state_to,
        )


#: The ``type`` of each help-desk event (pydantic names the one sent in the location of its errors).
EVENT_TYPES = frozenset({"ticket.created", "ticket.reply", "ticket.state_changed"})

#: Any help-desk event, told apart by its ``type``: an invalid one is reported against its own type only.
EventIn = Annotated[TicketCreatedIn | TicketReplyIn | TicketStateChangedIn, Field(discriminator="type")]

