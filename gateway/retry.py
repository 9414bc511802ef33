"""The one retry policy (pure): the store decides when work is tried again, never the broker.

Every retried thing (an email the relay refused for now, a webhook the help desk did not take)
records its attempts and its next attempt time in the store; a delayed broker message and, if
that is lost, the sweeper bring it back when due. Dramatiq's own retries are off for every actor
(``gateway.jobs``), so a failure is retried on one schedule, survives a Redis restart, and ends
in a recorded ``failed`` state instead of going on forever.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EMAIL_RETRIES", "MAX_ATTEMPTS", "WEBHOOK_RETRIES", "RetryPolicy", "backoff_seconds"]

#: Attempts (the first included) before an email that keeps failing temporarily is marked failed.
MAX_ATTEMPTS = 8
#: Seconds before the first retry; each later retry waits twice as long.
BASE_DELAY = 30.0
#: Longest wait between two attempts.
MAX_DELAY = 3600.0
#: Attempts before a help-desk webhook call is marked failed (about 6 hours of trying).
WEBHOOK_MAX_ATTEMPTS = 12


def backoff_seconds(attempt: int, *, jitter: float, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Wait after failed attempt number ``attempt`` (1-based): exponential, capped, with "full
    jitter" (``jitter`` in [0, 1) picks a point in the upper half of the window)."""
    window = min(cap, base * 2.0 ** max(0, attempt - 1))
    return window / 2 + window / 2 * jitter


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one kind of work is retried."""

    max_attempts: int
    base: float = BASE_DELAY
    cap: float = MAX_DELAY

    def gives_up(self, attempts: int) -> bool:
        """Whether ``attempts`` failed attempts (the first included) are the last."""
        return attempts >= self.max_attempts

    def delay(self, attempts: int, *, jitter: float) -> float:
        """Seconds to wait after failed attempt number ``attempts``."""
        return backoff_seconds(attempts, jitter=jitter, base=self.base, cap=self.cap)


#: Outbound emails: 8 attempts over about an hour.
EMAIL_RETRIES = RetryPolicy(MAX_ATTEMPTS)
#: Help-desk webhook calls: 12 attempts over about 6 hours, then ``failed`` (replayable).
WEBHOOK_RETRIES = RetryPolicy(WEBHOOK_MAX_ATTEMPTS)
