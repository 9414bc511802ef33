"""Who may be written to: a reply address is valid if it decodes, names a ticket and verifies."""

from __future__ import annotations

from collections.abc import Callable

from gateway.errors import ForgedToken, MalformedToken
from gateway.models import Ticket
from gateway.tokens import Keyring

__all__ = ["RecipientCheck"]


class RecipientCheck:
    """Answers, for one RCPT address, None (accept) or the reason to refuse it."""

    def __init__(self, *, keyring: Keyring, ticket_by_key: Callable[[int], Ticket | None]) -> None:
        self._keyring = keyring
        self._ticket_by_key = ticket_by_key

    def ticket_for(self, address: str) -> Ticket:
        """The ticket ``address`` replies to; raises :class:`MalformedToken` or :class:`ForgedToken`."""
        token = self._keyring.open(address)
        ticket = self._ticket_by_key(token.ticket_key)
        if ticket is None:
            raise ForgedToken(f"no ticket for reply address {address!r}")
        self._keyring.verify(token, ticket.customer.email)
        return ticket

    def refusal(self, address: str) -> str | None:
        """None if ``address`` is a valid reply address, else a human-readable reason."""
        try:
            self.ticket_for(address)
        except MalformedToken:
            return f"{address} is not a reply address of this gateway"
        except ForgedToken:
            return f"{address} is not a valid reply address (unknown or forged token)"
        return None
