"""Retry timing for outbound delivery (pure)."""

from __future__ import annotations

__all__ = ["MAX_ATTEMPTS", "backoff_seconds"]

#: Attempts (the first included) before an email that keeps failing temporarily is marked failed.
MAX_ATTEMPTS = 8
#: Seconds before the first retry; each later retry waits twice as long.
BASE_DELAY = 30.0
#: Longest wait between two attempts.
MAX_DELAY = 3600.0


def backoff_seconds(attempt: int, *, jitter: float, base: float = BASE_DELAY, cap: float = MAX_DELAY) -> float:
    """Wait after failed attempt number ``attempt`` (1-based): exponential, capped, with "full
    jitter" (``jitter`` in [0, 1) picks a point in the upper half of the window)."""
    window = min(cap, base * 2.0 ** max(0, attempt - 1))
    return window / 2 + window / 2 * jitter
