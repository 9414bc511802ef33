"""Refusal scores per peer address: they add up across sessions, decay with time, and forgive delivery."""

from __future__ import annotations

import pytest

from inbound.peer_failures import PeerFailures


def test_refusals_add_up_per_address_and_other_addresses_are_untouched() -> None:
    scores = PeerFailures(half_life=300)
    for n in range(1, 6):
        assert n == pytest.approx(scores.refused("192.0.2.1", now=10.0))
    assert 0 == scores.score("192.0.2.2", now=10.0)


def test_a_score_halves_every_half_life() -> None:
    scores = PeerFailures(half_life=300)
    for _ in range(8):
        scores.refused("192.0.2.1", now=0.0)
    assert 4 == pytest.approx(scores.score("192.0.2.1", now=300.0))
    assert 1 == pytest.approx(scores.score("192.0.2.1", now=900.0))
    assert 3 == pytest.approx(scores.refused("192.0.2.1", now=600.0))  # 8 halved twice, plus this one


def test_a_delivered_message_halves_the_score() -> None:
    scores = PeerFailures(half_life=300)
    for _ in range(10):
        scores.refused("192.0.2.1", now=0.0)
    scores.delivered("192.0.2.1", now=0.0)
    assert 5 == pytest.approx(scores.score("192.0.2.1", now=0.0))
    scores.delivered("192.0.2.9", now=0.0)  # never refused: nothing to forgive, nothing remembered
    assert 1 == len(scores)


def test_memory_is_bounded_and_the_worst_peers_are_kept() -> None:
    scores = PeerFailures(half_life=300, max_peers=100)
    for _ in range(50):
        scores.refused("203.0.113.66", now=0.0)
    for n in range(1000):
        scores.refused(f"10.0.{n // 250}.{n % 250}", now=1.0)
    assert len(scores) <= 100
    assert scores.score("203.0.113.66", now=1.0) > 49
