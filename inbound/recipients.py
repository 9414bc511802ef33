"""Who may be written to: a reply address is valid if it decodes, names a ticket and verifies; a
bounce address (an email's envelope sender) if it decodes and verifies."""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.errors import ForgedToken, MalformedToken, UnknownRecipient
from gateway.models import Ticket
from gateway.tokens import BOUNCE_PREFIX, Keyring

__all__ = ["RecipientCheck"]

#: Seconds a ticket looked up for a RCPT check is reused (its customer's address rarely changes,
#: and a stale entry can only refuse, never accept, a token minted for a new address).
TICKET_CACHE_SECONDS = 30.0
#: Tickets kept in the RCPT cache at most.
TICKET_CACHE_SIZE = 10_000


class RecipientCheck:
    """Answers, for one RCPT address, None (accept) or the reason to refuse it."""

    def __init__(
        self,
        *,
        keyring: Keyring,
        ticket_by_key: Callable[[int], Ticket | None],
        monotonic: Callable[[], float] = time.monotonic,
        cache_seconds: float = TICKET_CACHE_SECONDS,
    ) -> None:
        self._keyring = keyring
        self._ticket_by_key = ticket_by_key
        self._monotonic = monotonic
        self._cache_seconds = cache_seconds
        self._cache: dict[int, tuple[float, Ticket]] = {}
        # Addresses that verified (decoded, named a ticket, HMAC matched), by when: a repeated RCPT
        # for one of them is a dict look-up. Nothing else ever enters, so it cannot accept a forgery.
        self._accepted: dict[str, float] = {}

    def ticket_for(self, address: str) -> Ticket:
        """The ticket ``address`` replies to; raises :class:`MalformedToken` or :class:`ForgedToken`."""
        token = self._keyring.open(address)
        ticket = self._ticket(token.ticket_key)
        if ticket is None:
            raise ForgedToken(f"no ticket for reply address {address!r}")
        self._keyring.verify(token, ticket.customer.email)
        return ticket

    def _ticket(self, key: int) -> Ticket | None:
        now = self._monotonic()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        ticket = self._ticket_by_key(key)
        if ticket is not None:
            if len(self._cache) >= TICKET_CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = (now, ticket)
        return ticket

    def email_for_bounce(self, address: str) -> int | None:
        """The outbox email whose bounce address ``address`` is; None if it is no (valid) bounce address."""
        if not _is_bounce_address(address):
            return None
        try:
            return self._keyring.email_for_bounce(address)
        except (MalformedToken, ForgedToken):
            return None

    def is_cached(self, address: str) -> bool:
        """Whether checking ``address`` needs no store read (malformed, a bounce address, or its ticket is
        cached): then it is cheap enough (a decode and one HMAC) to run on the event loop."""
        if self._recently_accepted(address) or _is_bounce_address(address):
            return True
        try:
            key = self._keyring.open(address).ticket_key
        except MalformedToken:
            return True
        cached = self._cache.get(key)
        return cached is not None and self._monotonic() - cached[0] < self._cache_seconds

    def refusal(self, address: str) -> UnknownRecipient | None:
        """None if ``address`` is a valid reply address, else why not, in words a human understands."""
        if self._recently_accepted(address):
            return None
        if _is_bounce_address(address):
            if self.email_for_bounce(address) is None:
                return UnknownRecipient(f"<{address}> is not a valid bounce address (unknown or altered token)")
            return None
        try:
            self.ticket_for(address)
        except MalformedToken:
            return UnknownRecipient(f"<{address}> is not a reply address of this gateway")
        except ForgedToken:
            return UnknownRecipient(f"<{address}> is not a valid reply address (unknown or altered token)")
        if len(self._accepted) >= TICKET_CACHE_SIZE:
            self._accepted.clear()
        self._accepted[address] = self._monotonic()
        return None

    def _recently_accepted(self, address: str) -> bool:
        verified_at = self._accepted.get(address)
        return verified_at is not None and self._monotonic() - verified_at < self._cache_seconds


def _is_bounce_address(address: str) -> bool:
    return address.strip().strip("<>").lower().startswith(BOUNCE_PREFIX)
