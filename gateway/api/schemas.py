"""Request and response bodies of the HTTP API (pydantic), converted to plain records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from gateway.addresses import normalise_address
from gateway.models import Customer, TicketCreated, TicketState

__all__ = ["CustomerIn", "TicketCreatedIn", "TicketIn"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TicketIn(_Strict):
    """The ticket in a ``ticket.created`` event."""

    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=100_000)
    state: TicketState = TicketState.SUBMITTED
    created_by: Literal["teammate", "customer"]


class CustomerIn(_Strict):
    """The customer in a ``ticket.created`` event."""

    id: str = Field(min_length=1, max_length=200)
    email: Annotated[str, Field(max_length=254), AfterValidator(normalise_address)]
    name: str = Field(default="", max_length=200)
    locale: str = Field(default="en", max_length=35, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")


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
            ),
        )


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC."""
    return value.astimezone(UTC)
