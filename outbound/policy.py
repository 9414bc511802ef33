"""The notification policy (pure): what a help-desk event does to a ticket and who hears of it.

:func:`decide` takes an event and the ticket's history and returns actions; it reads no clock
and touches no store. The rules (docs/architecture.md, DESIGN R1-R3):

- ``ticket.created`` (R1), by a teammate or by the customer alike: a "ticket created" thread
  entry and the ``ticket_created`` email.
- ``ticket.reply`` (R2): a ``teammate_reply`` thread entry due for the unseen check at
  ``occurred_at + unseen_delay``, and that check scheduled. No email here: only the unseen
  check emails a reply, and only if the customer has not seen it in the Messenger by then.
- ``ticket.state_changed`` (R3): the new state, a ``state_changed`` entry and the
  ``state_changed`` email. Exception: ``closed`` on a ticket that was never ``resolved``
  notifies nobody: the state changes, and there is no entry and no email.

An *impossible* state change raises (and so changes nothing):

- :class:`UnknownState` when ``from`` or ``to`` is not one of :class:`TicketState`;
- :class:`StateMismatch` when ``from`` is not the ticket's current state (a stale or
  out-of-order event; the message names both states);
- :class:`InvalidTransition` when ``from`` equals ``to`` (nothing would change).

Any other move between two different states is allowed, reopening a closed ticket included:
the help desk owns the workflow; the gateway only refuses events that contradict what it knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.errors import InvalidTransition, StateMismatch, UnknownState
from gateway.models import (
    EntryKind,
    TicketCreated,
    TicketHistory,
    TicketReplied,
    TicketState,
    TicketStateChanged,
)

__all__ = [
    "Action",
    "AddToThread",
    "Event",
    "ScheduleUnseenCheck",
    "SendEmail",
    "SetState",
    "decide",
    "labels",
    "parse_state",
]

Event = TicketCreated | TicketReplied | TicketStateChanged


@dataclass(frozen=True)
class SendEmail:
    """Email the ticket's customer a notification of ``kind`` (a template folder)."""

    kind: str


@dataclass(frozen=True)
class AddToThread:
    """Add an entry of ``kind`` to the ticket's thread (``due_at``: when its unseen check is due)."""

    kind: EntryKind
    due_at: datetime | None = None


@dataclass(frozen=True)
class SetState:
    """Move the ticket to ``state``."""

    state: TicketState


@dataclass(frozen=True)
class ScheduleUnseenCheck:
    """Check at ``due_at`` whether the customer has seen the reply; email it if not (R2)."""

    due_at: datetime


Action = SendEmail | AddToThread | SetState | ScheduleUnseenCheck


def parse_state(value: str, *, field: str) -> TicketState:
    """``value`` as a :class:`TicketState`; :class:`UnknownState` naming ``field`` otherwise."""
    try:
        return TicketState(value)
    except ValueError:
        known = ", ".join(s.value for s in TicketState)
        raise UnknownState(f"unknown state {value!r} in {field!r}; expected one of: {known}") from None


def decide(event: Event, history: TicketHistory | None, *, unseen_delay: timedelta) -> list[Action]:
    """The actions ``event`` causes on a ticket with ``history`` (None: the ticket is new)."""
    if isinstance(event, TicketCreated):
        # R1: the same whether a teammate or the customer created the ticket.
        return [AddToThread(EntryKind.TICKET_CREATED), SendEmail("ticket_created")]
    if history is None:
        raise ValueError(f"{type(event).__name__} needs the ticket's history")
    if isinstance(event, TicketReplied):
        due = event.occurred_at + unseen_delay
        return [AddToThread(EntryKind.TEAMMATE_REPLY, due_at=due), ScheduleUnseenCheck(due)]
    return _state_change(event, history)


def _state_change(event: TicketStateChanged, history: TicketHistory) -> list[Action]:
    old, new = parse_state(event.state_from, field="from"), parse_state(event.state_to, field="to")
    if old != history.state:
        raise StateMismatch(
            f"ticket {event.ticket_id!r} is {history.state.value!r}, not {old.value!r} as 'from' says"
        )
    if old == new:
        raise InvalidTransition(f"'from' and 'to' are both {old.value!r}: nothing changes")
    if new == TicketState.CLOSED and TicketState.RESOLVED not in history.states_seen:
        return [SetState(new)]  # closed without being resolved: nobody is notified
    return [SetState(new), AddToThread(EntryKind.STATE_CHANGED), SendEmail("state_changed")]


def labels(actions: list[Action]) -> list[str]:
    """Short names of ``actions`` for the API's answer: ``thread:ticket_created``, ``email:...``."""
    names: list[str] = []
    for action in actions:
        if isinstance(action, SendEmail):
            names.append(f"email:{action.kind}")
        elif isinstance(action, AddToThread):
            names.append(f"thread:{action.kind.value}")
        elif isinstance(action, SetState):
            names.append(f"state:{action.state.value}")
        else:
            names.append(f"unseen_check:{action.due_at.isoformat()}")
    return names
