"""Request and response bodies of the HTTP API (pydantic), converted to plain records."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from gateway.addresses import normalise_address
from gateway.models import Customer, TeammateReply, TicketCreated, TicketReplied, TicketState, TicketStateChanged

__all__ = [
    "AuthorIn",
    "CustomerIn",
    "EventIn",
    "ReplyIn",
    "TicketCreatedIn",
    "TicketIn",
    "TicketReplyIn",
    "TicketStateChangedIn",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TicketIn(_Strict):
    """The ticket in a ``ticket.created`` event."""

    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=100_000)
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

    id: str = Field(min_length=1, max_length=200)
    email: Annotated[str, Field(max_length=254), AfterValidator(normalise_address)]
    name: str = Field(default="", max_length=200)
    locale: str = Field(default="en", max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")
    time_zone: Annotated[str | None, Field(max_length=64, description="IANA zone, e.g. Europe/Berlin: times in "
                                           "the customer's emails are shown in it (UTC when absent)"),
                         AfterValidator(_known_zone)] = None


class TicketCreatedIn(_Strict):
    """``ticket.created``: a teammate or the customer created a ticket."""

    type: Literal["ticket.created"]
    id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    ticket: TicketIn
    customer: CustomerIn

    def record(self) -> TicketCreated:
        """As the plain record the core works on."""
        return TicketCreated(
            event_id=self.id,
            occurred_at=self.occurred_at.astimezone(UTC),
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


class AuthorIn(_Strict):
    """The teammate who wrote a reply."""

    name: str = Field(min_length=1, max_length=200)


class ReplyIn(_Strict):
    """The reply in a ``ticket.reply`` event; ``html`` is optional."""

    id: str = Field(min_length=1, max_length=200)
    author: AuthorIn
    text: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=500_000)


class TicketReplyIn(_Strict):
    """``ticket.reply``: a teammate answered on the ticket."""

    type: Literal["ticket.reply"]
    id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    ticket_id: str = Field(min_length=1, max_length=200)
    reply: ReplyIn

    def record(self) -> TicketReplied:
        """As the plain record the core works on."""
        occurred = self.occurred_at.astimezone(UTC)
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
    id: str = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    ticket_id: str = Field(min_length=1, max_length=200)
    state_from: str = Field(alias="from", min_length=1, max_length=32)
    state_to: str = Field(alias="to", min_length=1, max_length=32)

    def record(self) -> TicketStateChanged:
        """As the plain record the core works on."""
        return TicketStateChanged(
            event_id=self.id,
            occurred_at=self.occurred_at.astimezone(UTC),
            ticket_id=self.ticket_id,
            state_from=self.state_from,
            state_to=self.state_to,
        )


#: Any help-desk event, told apart by its ``type``.
EventIn = Annotated[TicketCreatedIn | TicketReplyIn | TicketStateChangedIn, Field(discriminator="type")]

