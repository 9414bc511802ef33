"""Refused commands per peer address, across its sessions: what slows down a client that keeps failing.

A count kept per session is reset by reconnecting, so the score is kept per address and decays
instead: each refusal adds one, the score halves every :data:`HALF_LIFE` seconds, and each message
the peer delivers halves it at once (a busy MTA whose some recipients are stale is a good peer;
a client guessing reply addresses delivers nothing). Pure: the caller gives the time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["HALF_LIFE", "MAX_PEERS", "PeerFailures"]

#: Seconds in which a peer's score halves.
HALF_LIFE = 300.0
#: Peers remembered at most; past it the lowest scores are forgotten first.
MAX_PEERS = 10_000


@dataclass
class _Score:
    value: float
    at: float

    def now(self, at: float, half_life: float) -> float:
        return float(self.value * 0.5 ** (max(0.0, at - self.at) / half_life))


class PeerFailures:
    """Decaying refusal scores by peer address (``None``: a peer without an address, counted as one)."""

    def __init__(self, *, half_life: float = HALF_LIFE, max_peers: int = MAX_PEERS) -> None:
        self.half_life = half_life
        self.max_peers = max_peers
        self._scores: dict[str | None, _Score] = {}

    def score(self, peer: str | None, now: float) -> float:
        """The peer's score at ``now`` (0 for one never refused)."""
        found = self._scores.get(peer)
        return found.now(now, self.half_life) if found is not None else 0.0

    def refused(self, peer: str | None, now: float) -> float:
        """Count one refusal of ``peer`` at ``now``; its score with it."""
        value = self.score(peer, now) + 1.0
        self._scores[peer] = _Score(value, now)
        if len(self._scores) > self.max_peers:
            self._forget(now)
        return value

    def delivered(self, peer: str | None, now: float) -> None:
        """The peer delivered a message: its score halves."""
        found = self._scores.get(peer)
        if found is not None:
            self._scores[peer] = _Score(found.now(now, self.half_life) / 2, now)

    def _forget(self, now: float) -> None:
        """Drop the lower half of the scores (amortised: runs once per ``max_peers / 2`` new peers)."""
        ranked = sorted(self._scores.items(), key=lambda item: item[1].now(now, self.half_life))
        for peer, _ in ranked[: len(ranked) - self.max_peers // 2]:
            del self._scores[peer]

    def __len__(self) -> int:
        return len(self._scores)
