"""The notification policy (pure): which emails a help-desk event causes."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.models import TicketCreated

__all__ = ["Action", "SendEmail", "actions_for_created"]


@dataclass(frozen=True)
class SendEmail:
    """Email the ticket's customer a notification of ``kind`` (a template folder)."""

    kind: str


Action = SendEmail


def actions_for_created(event: TicketCreated) -> list[Action]:
    """R1: a new ticket is emailed to the customer, whoever created it."""
    del event  # the same email whether a teammate or the customer created the ticket
    return [SendEmail("ticket_created")]
