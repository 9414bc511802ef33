"""The teammate-reply email the unseen check sends: one email for a burst, newest reply first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes

from gateway.models import Customer, TeammateReply, Ticket, TicketState
from gateway.tokens import Keyring
from outbound.drafts import Drafter
from outbound.render import Branding, Renderer, find_templates

AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def ticket(locale: str = "en") -> Ticket:
    return Ticket(
        key=7, id="T-7", title="Printer prints blank pages", description="Blank.", state=TicketState.IN_PROGRESS,
        created_by="customer", created_at=AT, last_activity_at=AT, root_message_id="<root@reply.example.test>",
        customer=Customer(id="c-1", email="ada@customer.example.test", name="Ada", locale=locale),
    )


def drafter() -> Drafter:
    renderer = Renderer(find_templates(), branding=Branding(), markers={"en": "##- reply above -##"}, messenger_url="http://m/")
    keyring = Keyring(((1, b"a-secret-of-sixteen-chars"),), "reply.example.test")
    return Drafter(renderer=renderer, keyring=keyring, from_address="Support <support@example.test>")


def reply(n: int, minutes: int) -> TeammateReply:
    return TeammateReply(id=f"r-{n}", author_name="Grace", text=f"Reply number {n}.", html=None,
                         created_at=AT + timedelta(minutes=minutes))


def test_burst_of_replies_is_one_email_newest_first_in_the_ticket_thread() -> None:
    """Two replies make one email listing the newer first, answering the ticket's first email."""
    draft = drafter().reply_email(ticket(), [reply(1, 1), reply(2, 2)], now=AT)
    message = message_from_bytes(draft.raw)
    text = message.get_payload()[0].get_payload(decode=True).decode()
    assert ("teammate_reply", "ada@customer.example.test") == (draft.kind, draft.to)
    assert text.index("Reply number 2.") < text.index("Reply number 1.")
    assert "<root@reply.example.test>" == message["In-Reply-To"] == message["References"]
    assert "[#T-7] Printer prints blank pages" == draft.subject
