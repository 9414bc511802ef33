"""Which ticket an inbound message belongs to (pure): the reply token first, then headers.

The reply token (verified by the caller) is the strongest signal. Without a usable one (HTTP
inbound, a client that replied to From), ``In-Reply-To`` and then ``References`` (newest
first) are matched against the Message-IDs the gateway sent. The signal that threaded a
message is recorded with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["ThreadMatch", "ThreadSignal", "choose_thread"]


class ThreadSignal(StrEnum):
    """What threaded a message."""

    TOKEN = "token"
    IN_REPLY_TO = "in_reply_to"
    REFERENCES = "references"


@dataclass(frozen=True)
class ThreadMatch:
    """The ticket a message belongs to and the signal that said so."""

    ticket_key: int
    signal: ThreadSignal


def choose_thread(
    *,
    token_tickets: Sequence[int],
    in_reply_to: Sequence[str],
    references: Sequence[str],
    sent_ids: Mapping[str, int],
) -> ThreadMatch | None:
    """The ticket of the first verified token, else of In-Reply-To, else of the newest known References id.

    ``sent_ids`` maps the Message-IDs of emails the gateway sent to their ticket.
    """
    if token_tickets:
        return ThreadMatch(token_tickets[0], ThreadSignal.TOKEN)
    for message_id in in_reply_to:
        if message_id in sent_ids:
            return ThreadMatch(sent_ids[message_id], ThreadSignal.IN_REPLY_TO)
    for message_id in reversed(references):
        if message_id in sent_ids:
            return ThreadMatch(sent_ids[message_id], ThreadSignal.REFERENCES)
    return None
