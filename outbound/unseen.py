"""R2's unseen check (pure): which teammate replies to email now, and when to look again.

A teammate reply is emailed only if the customer has not seen it in the Messenger within the
unseen delay of it being sent. Replies that are seen by the time the check runs are never
emailed. Unseen replies go out together, newest first, in one email once the *newest* has been
unseen for the full delay (a sliding window: a burst of replies gives one email), but no reply
waits longer than the max wait, and none is emailed before its own window has passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["PendingReply", "UnseenDecision", "decide", "next_due"]


@dataclass(frozen=True)
class PendingReply:
    """A teammate reply not yet emailed: when it was sent and when (if ever) it was seen."""

    key: int
    sent_at: datetime
    seen_at: datetime | None = None


@dataclass(frozen=True)
class UnseenDecision:
    """Email ``send`` (reply keys, newest first) now; look again at ``check_again_at`` (None: never)."""

    send: tuple[int, ...]
    check_again_at: datetime | None


def _unseen(replies: Sequence[PendingReply], now: datetime) -> list[PendingReply]:
    # A receipt stamped in the future (a Messenger clock ahead of ours) counts once it is due.
    return [r for r in replies if r.seen_at is None or r.seen_at > now]


def next_due(
    replies: Sequence[PendingReply], *, delay: timedelta, max_wait: timedelta, now: datetime
) -> datetime | None:
    """When the unseen replies among ``replies`` are next due to be emailed (None: nothing to email)."""
    unseen = _unseen(replies, now)
    if not unseen:
        return None
    newest = max(r.sent_at for r in unseen)
    oldest = min(r.sent_at for r in unseen)
    return min(newest + delay, oldest + max(max_wait, delay))


def decide(replies: Sequence[PendingReply], *, now: datetime, delay: timedelta, max_wait: timedelta) -> UnseenDecision:
    """The decision for one ticket's not-yet-emailed teammate replies at ``now``."""
    due = next_due(replies, delay=delay, max_wait=max_wait, now=now)
    if due is None:
        return UnseenDecision(send=(), check_again_at=None)
    unseen = _unseen(replies, now)
    if now < due:
        return UnseenDecision(send=(), check_again_at=due)
    ready = sorted((r for r in unseen if r.sent_at + delay <= now), key=lambda r: (r.sent_at, r.key), reverse=True)
    later = [r for r in unseen if r.sent_at + delay > now]
    again = next_due(later, delay=delay, max_wait=max_wait, now=now) if later else None
    return UnseenDecision(send=tuple(r.key for r in ready), check_again_at=again)
