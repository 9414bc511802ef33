"""Gathering stored messages into fewer pipeline jobs: at once when quiet, held for the window under load."""

from __future__ import annotations

import threading

import pytest

from gateway.gather import Gather
from tests.helpers import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def gather(clock: Clock, sent: list[list[int]], *, window: float = 0.05, most: int = 16) -> Gather:
    return Gather(sent.append, window=window, most=most, clock=clock)


def test_a_lone_message_is_sent_at_once(clock: Clock) -> None:
    sent: list[list[int]] = []
    gather(clock, sent).add([1])
    assert [[1]] == sent


def test_messages_right_after_a_send_wait_for_the_window_and_go_together(clock: Clock) -> None:
    sent: list[list[int]] = []
    g = gather(clock, sent)
    g.add([1])
    clock.now += 0.01
    g.add([2, 3])
    clock.now += 0.01
    g.add([4])
    assert [[1]] == sent, "held while the window since the last send runs"
    assert g.due(clock.now) is None
    assert [2, 3, 4] == g.due(100.06)
    assert g.due(100.2) is None, "nothing is sent twice"
    g.close()
    assert [[1]] == sent


def test_a_full_job_goes_without_waiting(clock: Clock) -> None:
    sent: list[list[int]] = []
    g = gather(clock, sent, most=3)
    g.add([1])
    g.add([2, 3])
    g.add([4])
    assert [[1], [2, 3, 4]] == sent
    g.close()


def test_after_a_quiet_window_a_message_goes_at_once_again(clock: Clock) -> None:
    sent: list[list[int]] = []
    g = gather(clock, sent)
    g.add([1])
    clock.now += 0.06
    g.add([2])
    assert [[1], [2]] == sent


def test_closing_sends_what_is_held_and_later_messages_go_at_once(clock: Clock) -> None:
    sent: list[list[int]] = []
    g = gather(clock, sent)
    g.add([1])
    g.add([2])
    g.close()
    assert [[1], [2]] == sent
    g.add([3])
    assert [[1], [2], [3]] == sent


def test_the_held_messages_are_sent_when_their_window_ends(clock: Clock) -> None:
    """The gathering thread sends a held job once the window since the last send has passed."""
    sent: list[list[int]] = []
    done = threading.Event()

    def send(values: list[int]) -> None:
        sent.append(values)
        if len(sent) == 2:
            done.set()

    g = Gather(send, window=0.05, most=16, clock=clock)
    g.add([1])
    g.add([2, 3])
    clock.now += 0.06  # the window has ended for the thread's next look
    wait_for(done.is_set, timeout=5, what="the held job")
    assert [[1], [2, 3]] == sent
    g.close()


def test_a_send_that_fails_in_the_thread_is_logged_and_the_next_goes(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker refusing a held job: one warning (the sweeper hands those messages on), the thread goes on."""
    sent: list[list[int]] = []
    fail = [True]

    def send(values: list[int]) -> None:
        if len(values) > 1 and fail[0]:
            fail[0] = False
            raise ConnectionError("the broker is down")
        sent.append(values)

    g = Gather(send, window=0.05, most=16, clock=clock)
    g.add([1])
    g.add([2, 3])
    clock.now += 0.06
    wait_for(lambda: any("could not hand on 2 stored messages" in r.getMessage() for r in caplog.records),
             timeout=5, what="the warning")
    clock.now += 0.06
    g.add([4])
    g.add([5, 6])
    clock.now += 0.06
    wait_for(lambda: [5, 6] in sent, timeout=5, what="the next held job")
    assert [[1], [4], [5, 6]] == sent
    g.close()
