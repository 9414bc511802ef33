"""The emails say what is true: who opened the ticket, how many replies, what each state asks of the customer."""

from __future__ import annotations

import dataclasses
import re
from types import SimpleNamespace

import pytest

from gateway.models import TicketState
from outbound.drafts import ticket_context
from outbound.render import Branding, Renderer, find_templates
from outbound.samples import sample_context, sample_ticket

RENDERER = Renderer(find_templates(), branding=Branding(), markers={"en": "##- m -##"}, messenger_url="https://m/")
LOCALES = sorted(RENDERER.locales)
STATES = [s.value for s in TicketState]


def created(locale: str, created_by: str) -> tuple[str, str]:
    email = RENDERER.render("ticket_created", locale, ticket_context(sample_ticket(locale, created_by=created_by)))
    return email.text, email.html


def changed(locale: str, to: str) -> str:
    context = sample_context("state_changed", locale)
    context["change"] = SimpleNamespace(**{"from": "in_progress" if to != "in_progress" else "submitted", "to": to})
    return RENDERER.render("state_changed", locale, context).text


def content(text: str) -> str:
    """The email's own words: between the greeting and the Messenger link (history and footer follow it)."""
    after_greeting = text.split("\n\n", 3)[3]
    return after_greeting[: after_greeting.index("https://m/")].rsplit("\n\n", 1)[0]


def test_a_teammate_opened_ticket_does_not_claim_the_customer_asked() -> None:
    """"We have received your request" only when the customer opened the ticket; otherwise the team says it did."""
    by_customer, by_customer_html = created("en", "customer")
    by_teammate, by_teammate_html = created("en", "teammate")
    assert "We have received your request" in by_customer and "Your request:" in by_customer
    assert "We have received your request" in by_customer_html  # preheader and body
    for body in (by_teammate, by_teammate_html):
        assert "received your request" not in body and "Your request" not in body
        assert "Our support team has opened ticket #T-1042 for you." in body
    assert "We have opened a ticket for you: Printer prints blank pages" in by_teammate_html


@pytest.mark.parametrize("locale", LOCALES)
def test_teammate_and_customer_opened_tickets_read_differently_in_every_language(locale: str) -> None:
    """In every locale the two openings are different sentences (text and HTML)."""
    by_customer, by_customer_html = created(locale, "customer")
    by_teammate, by_teammate_html = created(locale, "teammate")
    assert content(by_customer) != content(by_teammate)
    assert by_customer_html != by_teammate_html


@pytest.mark.parametrize("locale", LOCALES)
def test_each_state_has_its_own_next_step(locale: str) -> None:
    """Every state says something of its own after the change line, in every locale."""
    next_steps = {state: content(changed(locale, state)).split("\n\n")[-1] for state in STATES}
    assert len(STATES) == len(set(next_steps.values())), next_steps
    assert all(next_steps.values())


@pytest.mark.parametrize("state", STATES)
def test_every_state_invites_a_reply(state: str) -> None:
    """Each state tells the customer to answer by email; resolved and closed say so for when the problem is back."""
    words = content(changed("en", state))
    assert re.search(r"reply to this email", words, re.IGNORECASE), words
    if state in ("resolved", "closed"):
        assert "If the problem is back" in words


def test_an_empty_description_leaves_no_dangling_label() -> None:
    """A ticket without a description has no "Your request:" heading over nothing."""
    ticket = dataclasses.replace(sample_ticket("en"), description="")
    email = RENDERER.render("ticket_created", "en", ticket_context(ticket))
    assert "Your request" not in email.text and "Your request" not in email.html
    assert "<blockquote" not in email.html
