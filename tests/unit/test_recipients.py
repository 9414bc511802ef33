"""The RCPT check: verified addresses are remembered for a while; forged or unknown ones never are."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from gateway.models import Customer, Ticket, TicketState
from gateway.tokens import Keyring
from inbound.recipients import RecipientCheck

ring = Keyring(((1, b"secret-0123456789abcdef"),), "reply.example.test")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TICKET = Ticket(key=42, id="T-42", title="Printer", description="", state=TicketState.SUBMITTED, created_by="customer",
                created_at=NOW, last_activity_at=NOW, customer=Customer(id="c", email="ada@example.com", name="Ada"))


class Store:
    """Tickets by key, counting reads."""

    def __init__(self, *tickets: Ticket) -> None:
        self.tickets = {t.key: t for t in tickets}
        self.reads = 0

    def get(self, key: int) -> Ticket | None:
        self.reads += 1
        return self.tickets.get(key)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def check(store: Store, clock: Clock) -> RecipientCheck:
    return RecipientCheck(keyring=ring, ticket_by_key=store.get, monotonic=clock, cache_seconds=30.0)


def forge(address: str) -> str:
    """The same address with one character of its token's MAC changed (still a well-formed token)."""
    local, domain = address.split("@")
    swapped = "a" if local[-6] != "a" else "b"
    return f"{local[:-6]}{swapped}{local[-5:]}@{domain}"


def test_a_repeated_valid_address_is_accepted_without_reading_the_store() -> None:
    """A second RCPT for an address that verified is accepted on the event loop, with no store read."""
    store, clock = Store(TICKET), Clock()
    rcpt = check(store, clock)
    address = ring.address_for(TICKET.key, "ada@example.com")
    assert rcpt.refusal(address) is None
    reads = store.reads
    assert rcpt.is_cached(address)
    assert rcpt.refusal(address) is None
    assert reads == store.reads


def test_a_forged_token_is_refused_even_after_the_genuine_one_was_accepted() -> None:
    """Altering the token of an accepted address, or minting it for another sender, is refused every time."""
    store, clock = Store(TICKET), Clock()
    rcpt = check(store, clock)
    address = ring.address_for(TICKET.key, "ada@example.com")
    assert rcpt.refusal(address) is None
    assert ring.open(forge(address)).ticket_key == TICKET.key
    for _ in range(2):
        assert rcpt.refusal(forge(address)) is not None
        assert rcpt.refusal(ring.address_for(TICKET.key, "eve@example.com")) is not None
        assert rcpt.refusal(Keyring(((1, b"another-secret-0123456789"),), ring.domain).address_for(
            TICKET.key, "ada@example.com")) is not None


def test_an_unknown_ticket_is_refused_and_asked_again_each_time() -> None:
    """An address naming no ticket is refused, never remembered: once the ticket exists it is accepted."""
    store, clock = Store(), Clock()
    rcpt = check(store, clock)
    address = ring.address_for(TICKET.key, "ada@example.com")
    assert rcpt.refusal(address) is not None
    assert not rcpt.is_cached(address)
    store.tickets[TICKET.key] = TICKET
    assert rcpt.refusal(address) is None


def test_a_remembered_address_is_verified_again_once_the_window_passed() -> None:
    """After the cache window the ticket is read again: a customer's changed address no longer verifies."""
    store, clock = Store(TICKET), Clock()
    rcpt = check(store, clock)
    address = ring.address_for(TICKET.key, "ada@example.com")
    assert rcpt.refusal(address) is None
    store.tickets[TICKET.key] = replace(TICKET, customer=replace(TICKET.customer, email="ada@new.example.com"))
    clock.now = 29.0
    assert rcpt.refusal(address) is None
    clock.now = 31.0
    assert not rcpt.is_cached(address)
    assert rcpt.refusal(address) is not None
