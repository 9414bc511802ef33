"""Group commit on SQLite and PostgreSQL: concurrent events share a transaction, each answered
only once it committed; one failing event rolls back alone; a failed commit answers nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, select
from sqlalchemy.engine import Engine

from gateway.store import OutboxStore, TicketStore, make_engine
from gateway.store.group_commit import GroupCommit
from gateway.store.tables import kv, tickets
from gateway.store.tickets import TicketConflict
from tests.integration.test_store import NOW, created, first_id, one_draft

#: Seconds a test waits for threads to start leading, queue or finish.
DEADLINE = 10.0

#: A call made from a thread of its own; the first one calls ``hold()`` inside its transaction.
Call = Callable[[Callable[[], None]], Any]


def as_one_group(committer: GroupCommit, calls: list[Call]) -> list[Any]:
    """Make ``calls`` from threads so that all but the first commit as one group, in order: the
    first leads a group of one and holds it until the others queue, one after the other.
    Returns each call's result or the exception it raised."""
    outcomes: list[Any] = [None] * len(calls)
    leading = threading.Event()

    def hold() -> None:
        leading.set()
        until(lambda: committer.pending == len(calls) - 1)

    def call(n: int) -> None:
        try:
            outcomes[n] = calls[n](hold if n == 0 else lambda: None)
        except Exception as exc:  # noqa: BLE001 - the test compares it
            outcomes[n] = exc

    threads = [threading.Thread(target=call, args=(n,)) for n in range(len(calls))]
    threads[0].start()
    assert leading.wait(DEADLINE)
    for n, thread in enumerate(threads[1:], start=1):
        thread.start()
        until(lambda n=n: committer.pending == n)
    for thread in threads:
        thread.join(DEADLINE)
    return outcomes


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "the threads did not get there in time"
        time.sleep(0.002)


def put(committer: GroupCommit, key: str, *, fail: bool = False) -> Call:
    """A call storing ``key`` (then raising, if ``fail``)."""

    def work(conn: Connection, hold: Callable[[], None]) -> str:
        conn.execute(insert(kv).values(key=key, value="v"))
        hold()
        if fail:
            raise ValueError(f"work {key!r} failed")
        return key

    return lambda hold: committer.run(lambda conn: work(conn, hold))


def keys(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(kv.c.key)).scalars())


def commits(engine: Engine) -> list[int]:
    """A list that grows by one on every commit of ``engine``."""
    seen: list[int] = []
    event.listen(engine, "commit", lambda conn: seen.append(1))
    return seen


def test_concurrent_works_share_one_commit_and_each_gets_its_answer(database_url: str) -> None:
    """Six callers at once: two commits (the leader alone, then the five that queued), six answers."""
    engine = make_engine(database_url)
    committer, seen = GroupCommit(engine, grouped=True), commits(engine)
    outcomes = as_one_group(committer, [put(committer, f"k{n}") for n in range(6)])
    assert [f"k{n}" for n in range(6)] == outcomes
    assert 2 == len(seen)
    assert [f"k{n}" for n in range(6)] == keys(engine)


def test_a_failing_work_rolls_back_alone(database_url: str) -> None:
    """The work that raises gets its error and leaves nothing; the rest of its group commits."""
    engine = make_engine(database_url)
    committer = GroupCommit(engine, grouped=True)
    outcomes = as_one_group(committer, [put(committer, k, fail=k == "bad") for k in ("a", "b", "bad", "c")])
    assert ["a", "b", "c"] == [o for o in outcomes if isinstance(o, str)]
    assert isinstance(outcomes[2], ValueError)
    assert ["a", "b", "c"] == keys(engine)


def test_a_failed_commit_answers_every_caller_with_the_error_and_applies_nothing(database_url: str) -> None:
    """When the shared commit fails, nobody in the group is acknowledged and nothing of it is stored."""
    engine = make_engine(database_url)
    committer, seen = GroupCommit(engine, grouped=True), commits(engine)

    @event.listens_for(engine, "commit")
    def _second_commit_fails(conn: Connection) -> None:
        if len(seen) > 1:
            raise OSError("disk full")

    outcomes = as_one_group(committer, [put(committer, k) for k in ("lead", "x", "y", "z")])
    assert "lead" == outcomes[0]
    assert ["disk full"] * 3 == [str(o) for o in outcomes[1:] if isinstance(o, OSError)]
    assert ["lead"] == keys(engine)


def test_events_in_one_group_apply_once_and_a_conflict_fails_alone(database_url: str) -> None:
    """ticket.created, grouped: a repeated event id replays the first answer, a taken ticket id is
    refused with nothing applied, the other events create their tickets and emails."""
    engine = make_engine(database_url)
    store, outbox = TicketStore(engine, group_commit=True), OutboxStore(engine)
    events = [created("e-0", "T-0"), created("e-1", "T-1"), created("e-1", "T-1"), created("e-2", "T-0"),
              created("e-3", "T-3")]

    def call(n: int) -> Call:
        def drafts(hold: Callable[[], None]) -> Callable[[Any], Any]:
            return lambda ticket: (hold(), one_draft(ticket))[1]

        return lambda hold: store.apply_ticket_created(
            events[n], now=NOW, response={"n": n}, drafts=drafts(hold),
            root_message_id=first_id(events[n].ticket_id),
        )

    outcomes = as_one_group(store.committer, [call(n) for n in range(len(events))])
    assert [False, False, True, False] == [outcomes[n].replayed for n in (0, 1, 2, 4)]
    assert {"n": 1} == outcomes[2].response
    assert isinstance(outcomes[3], TicketConflict)
    with engine.connect() as conn:
        assert ["T-0", "T-1", "T-3"] == sorted(conn.execute(select(tickets.c.external_id)).scalars())
    assert 3 == len(outbox.recent())


@pytest.mark.parametrize("grouped", [True, False])
def test_a_lone_caller_commits_alone(database_url: str, grouped: bool) -> None:
    """One caller at a time: each work is its own commit, answered with its result."""
    engine = make_engine(database_url)
    committer, seen = GroupCommit(engine, grouped=grouped), commits(engine)
    assert ["a", "b"] == [put(committer, k)(lambda: None) for k in ("a", "b")]
    assert 2 == len(seen)


def test_a_work_that_applies_another_work_is_refused_not_stuck(database_url: str) -> None:
    """A work calling the committer again gets an error at once instead of waiting for its own group forever."""
    engine = make_engine(database_url)
    committer = GroupCommit(engine, grouped=True)
    with pytest.raises(RuntimeError, match="inside a work"):
        committer.run(lambda conn: committer.run(lambda inner: "never"))
    assert ["after"] == [committer.run(lambda conn: "after")]


def test_after_a_group_the_next_leader_waits_for_as_many_callers(database_url: str) -> None:
    """Under load a leader waits (up to the commit delay) until as many works as the last group
    had have queued: three callers arriving one after the other still share one commit."""
    engine = make_engine(database_url)
    committer = GroupCommit(engine, grouped=True, commit_delay=DEADLINE)
    as_one_group(committer, [put(committer, f"a{n}") for n in range(4)])  # groups of 1 and 3
    seen = commits(engine)
    threads = [threading.Thread(target=put(committer, f"b{n}"), args=(lambda: None,)) for n in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # arriving one after the other, well apart
    for thread in threads:
        thread.join(DEADLINE)
    assert 1 == len(seen)
    assert 7 == len(keys(engine))


def test_a_leader_waits_no_longer_than_the_commit_delay(database_url: str) -> None:
    """When the expected company does not come, the leader commits alone after the delay."""
    engine = make_engine(database_url)
    committer = GroupCommit(engine, grouped=True, commit_delay=0.2)
    as_one_group(committer, [put(committer, f"a{n}") for n in range(4)])
    started = time.monotonic()
    assert "lone" == put(committer, "lone")(lambda: None)
    assert 0.15 < time.monotonic() - started < DEADLINE
