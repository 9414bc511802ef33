"""Fixtures for integration tests: a built gateway with one ticket, and its SMTP server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest

from gateway.app import build_gateway
from gateway.settings import Settings
from tests.helpers import Listening, open_ticket, settings_for, start_listener


@pytest.fixture
def make_listening(tmp_path: Path, stub_broker: dramatiq.Broker) -> Iterator[object]:
    """Factory: ``make_listening(**settings)`` -> a :class:`Listening`; everything stops afterwards."""
    started: list[Listening] = []

    def make(
        settings: Settings | None = None, limits: dict[str, float] | None = None, **overrides: object
    ) -> Listening:
        gw = build_gateway(settings or settings_for(tmp_path, **overrides), broker=stub_broker)
        listening = start_listener(gw, open_ticket(gw), **(limits or {}))
        started.append(listening)
        return listening

    yield make
    for listening in started:
        listening.stop()
