"""The notification policy, case by case (R1, R2, R3 and impossible state changes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.errors import InvalidTransition, StateMismatch, UnknownState
from gateway.models import (
    Customer,
    EntryKind,
    TeammateReply,
    TicketCreated,
    TicketHistory,
    TicketReplied,
    TicketState,
    TicketStateChanged,
)
from outbound.policy import Action, AddToThread, ScheduleUnseenCheck, SendEmail, SetState, decide, labels

S = TicketState
AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
DELAY = timedelta(seconds=180)


def created(by: str) -> TicketCreated:
    customer = Customer(id="c-1", email="ada@example.test", name="Ada")
    return TicketCreated(
        event_id="e", occurred_at=AT, ticket_id="T-1", title="t", description="d",
        state=S.SUBMITTED, created_by=by, customer=customer,
    )


def replied() -> TicketReplied:
    reply = TeammateReply(id="r-1", author_name="Grace", text="Try this.", html=None, created_at=AT)
    return TicketReplied(event_id="e", occurred_at=AT, ticket_id="T-1", reply=reply)


def changed(old: str, new: str) -> TicketStateChanged:
    return TicketStateChanged(event_id="e", occurred_at=AT, ticket_id="T-1", state_from=old, state_to=new)


def history(state: TicketState, *seen: TicketState) -> TicketHistory:
    return TicketHistory(state=state, states_seen=frozenset({state, *seen}))


NOTIFY = [AddToThread(EntryKind.STATE_CHANGED), SendEmail("state_changed")]
CREATED = [AddToThread(EntryKind.TICKET_CREATED), SendEmail("ticket_created")]
DUE = AT + DELAY

CASES: list[tuple[str, object, TicketHistory | None, list[Action]]] = [
    ("created by a teammate", created("teammate"), None, CREATED),
    ("created by the customer", created("customer"), None, CREATED),
    ("teammate reply: no email, unseen check due after the delay", replied(), history(S.IN_PROGRESS),
     [AddToThread(EntryKind.TEAMMATE_REPLY, due_at=DUE), ScheduleUnseenCheck(DUE)]),
    ("submitted -> in_progress", changed("submitted", "in_progress"), history(S.SUBMITTED),
     [SetState(S.IN_PROGRESS), *NOTIFY]),
    ("in_progress -> waiting_on_customer", changed("in_progress", "waiting_on_customer"), history(S.IN_PROGRESS),
     [SetState(S.WAITING_ON_CUSTOMER), *NOTIFY]),
    ("waiting_on_customer -> in_progress", changed("waiting_on_customer", "in_progress"),
     history(S.WAITING_ON_CUSTOMER), [SetState(S.IN_PROGRESS), *NOTIFY]),
    ("in_progress -> resolved", changed("in_progress", "resolved"), history(S.IN_PROGRESS),
     [SetState(S.RESOLVED), *NOTIFY]),
    ("resolved -> closed", changed("resolved", "closed"), history(S.RESOLVED), [SetState(S.CLOSED), *NOTIFY]),
    ("resolved, reopened, then closed: was resolved once", changed("in_progress", "closed"),
     history(S.IN_PROGRESS, S.RESOLVED), [SetState(S.CLOSED), *NOTIFY]),
    ("closed without being resolved: nothing at all", changed("in_progress", "closed"), history(S.IN_PROGRESS),
     [SetState(S.CLOSED)]),
    ("submitted -> closed: nothing at all", changed("submitted", "closed"), history(S.SUBMITTED),
     [SetState(S.CLOSED)]),
    ("closed -> in_progress (reopened)", changed("closed", "in_progress"), history(S.CLOSED),
     [SetState(S.IN_PROGRESS), *NOTIFY]),
]


@pytest.mark.parametrize(("event", "past", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_policy_case(event: object, past: TicketHistory | None, expected: list[Action]) -> None:
    """Each event and history gives exactly the actions the rules call for."""
    assert expected == decide(event, past, unseen_delay=DELAY)  # type: ignore[arg-type]


IMPOSSIBLE = [
    ("unknown 'to'", changed("in_progress", "done"), UnknownState, "'done' in 'to'"),
    ("unknown 'from'", changed("started", "resolved"), UnknownState, "'started' in 'from'"),
    ("'from' is not the ticket's state", changed("submitted", "resolved"), StateMismatch,
     "is 'in_progress', not 'submitted'"),
    ("'from' equals 'to'", changed("in_progress", "in_progress"), InvalidTransition, "both 'in_progress'"),
]


@pytest.mark.parametrize(("event", "error", "says"), [c[1:] for c in IMPOSSIBLE], ids=[c[0] for c in IMPOSSIBLE])
def test_impossible_state_change_is_refused(event: TicketStateChanged, error: type[Exception], says: str) -> None:
    """An impossible state change raises an error naming what is wrong."""
    with pytest.raises(error) as raised:
        decide(event, history(S.IN_PROGRESS), unseen_delay=DELAY)
    assert says in str(raised.value)


def test_labels_name_every_action() -> None:
    """The API's answer lists each action by a short name."""
    actions = decide(replied(), history(S.SUBMITTED), unseen_delay=DELAY)
    assert ["thread:teammate_reply", "unseen_check:2026-11-26T10:03:00+00:00"] == labels(actions)
