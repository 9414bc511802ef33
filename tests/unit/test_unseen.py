"""R2's unseen check decision, table-driven: what gets emailed and when the check looks again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outbound.unseen import PendingReply, UnseenDecision, decide

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
DELAY = timedelta(seconds=180)
MAX_WAIT = timedelta(seconds=600)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


CASES = [
    pytest.param([PendingReply(1, s(0), seen_at=s(60))], s(180), UnseenDecision((), None), id="seen before the delay"),
    pytest.param(
        [PendingReply(1, s(0), seen_at=s(200))], s(210), UnseenDecision((), None),
        id="seen after the delay but before the check ran",
    ),
    pytest.param([PendingReply(1, s(0))], s(180), UnseenDecision((1,), None), id="never seen: emailed at its due time"),
    pytest.param([PendingReply(1, s(0))], s(179), UnseenDecision((), s(180)), id="never seen: not before its window"),
    pytest.param(
        [PendingReply(1, s(0)), PendingReply(2, s(30)), PendingReply(3, s(60))], s(240),
        UnseenDecision((3, 2, 1), None), id="a burst of three replies gives one email, newest first",
    ),
    pytest.param(
        [PendingReply(1, s(0)), PendingReply(2, s(30)), PendingReply(3, s(60))], s(200),
        UnseenDecision((), s(240)), id="the window slides while the teammate keeps replying",
    ),
    pytest.param(
        [PendingReply(1, s(0)), PendingReply(2, s(30), seen_at=s(40))], s(180),
        UnseenDecision((1,), None), id="receipt covering only the later reply (out of order) still sends the earlier",
    ),
    pytest.param(
        [PendingReply(1, s(0), seen_at=s(50)), PendingReply(2, s(30))], s(210),
        UnseenDecision((2,), None), id="a seen earlier reply is left out of the email",
    ),
    pytest.param(
        [PendingReply(1, s(0), seen_at=s(900))], s(180), UnseenDecision((1,), None),
        id="a receipt stamped in the future does not count yet",
    ),
    pytest.param(
        [PendingReply(k, s(100 * k)) for k in range(0, 7)], s(600),
        UnseenDecision((4, 3, 2, 1, 0), s(780)),
        id="max wait: the oldest goes at 600 s with every reply past its window",
    ),
    pytest.param([], s(1000), UnseenDecision((), None), id="nothing pending"),
]


@pytest.mark.parametrize(("replies", "now", "expected"), CASES)
def test_decision(replies: list[PendingReply], now: datetime, expected: UnseenDecision) -> None:
    """Each case of the unseen rule gives exactly the expected emails and next check."""
    assert expected == decide(replies, now=now, delay=DELAY, max_wait=MAX_WAIT)


def test_no_reply_is_emailed_before_its_own_window() -> None:
    """Whatever the burst, every reply in an email was sent at least the delay before now."""
    replies = [PendingReply(k, s(37 * k)) for k in range(30)]
    now = s(0)
    emailed: set[int] = set()
    while now < s(3000):
        decision = decide([r for r in replies if r.key not in emailed], now=now, delay=DELAY, max_wait=MAX_WAIT)
        for key in decision.send:
            assert now - replies[key].sent_at >= DELAY
            assert now - replies[key].sent_at <= MAX_WAIT
            assert key not in emailed
            emailed.add(key)
        if decision.check_again_at is None:
            break
        now = decision.check_again_at
    assert set(range(30)) == emailed
