"""The unit of work on SQLite and PostgreSQL: concurrent works share a transaction, each answered
only once it committed; one failing work rolls back alone (with what it noted); a failed commit
answers nothing; what works note is handed on after the commit, once per transaction."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert, select
from sqlalchemy.engine import Engine

from gateway.errors import TicketConflict
from gateway.store import Database, UnitOfWork, make_engine, note
from gateway.store.tables import kv, tickets
from outbound.event_store import apply_ticket_created
from outbound.outbox import OutboxStore
from tests.helpers import DEADLINE, NOW, Call, as_one_group, created, first_id, one_draft, put


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
    committer, seen = UnitOfWork(engine, grouped=True), commits(engine)
    outcomes = as_one_group(committer, [put(committer, f"k{n}") for n in range(6)])
    assert [f"k{n}" for n in range(6)] == outcomes
    assert 2 == len(seen)
    assert [f"k{n}" for n in range(6)] == keys(engine)


def test_a_failing_work_rolls_back_alone(database_url: str) -> None:
    """The work that raises gets its error and leaves nothing; the rest of its group commits."""
    engine = make_engine(database_url)
    committer = UnitOfWork(engine, grouped=True)
    outcomes = as_one_group(committer, [put(committer, k, fail=k == "bad") for k in ("a", "b", "bad", "c")])
    assert ["a", "b", "c"] == [o for o in outcomes if isinstance(o, str)]
    assert isinstance(outcomes[2], ValueError)
    assert ["a", "b", "c"] == keys(engine)


def test_a_failed_commit_answers_every_caller_with_the_error_and_applies_nothing(database_url: str) -> None:
    """When the shared commit fails, nobody in the group is acknowledged and nothing of it is stored."""
    engine = make_engine(database_url)
    committer, seen = UnitOfWork(engine, grouped=True), commits(engine)

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
    db = Database.from_url(database_url)
    uow = UnitOfWork(db.engine, grouped=True, hand_ons=db.hand_ons)
    db.uow = uow  # events grouped on PostgreSQL too, for this test
    engine, outbox = db.engine, OutboxStore(db)
    events = [created("e-0", "T-0"), created("e-1", "T-1"), created("e-1", "T-1"), created("e-2", "T-0"),
              created("e-3", "T-3")]

    def call(n: int) -> Call:
        def drafts(hold: Callable[[], None]) -> Callable[[Any], Any]:
            return lambda ticket: (hold(), one_draft(ticket))[1]

        return lambda hold: apply_ticket_created(
            db, events[n], now=NOW, response={"n": n}, drafts=drafts(hold),
            root_message_id=first_id(events[n].ticket_id),
        )

    outcomes = as_one_group(uow, [call(n) for n in range(len(events))])
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
    committer, seen = UnitOfWork(engine, grouped=grouped), commits(engine)
    assert ["a", "b"] == [put(committer, k)(lambda: None) for k in ("a", "b")]
    assert 2 == len(seen)


def test_a_work_that_applies_another_work_is_refused_not_stuck(database_url: str) -> None:
    """A work calling the committer again gets an error at once instead of waiting for its own group forever."""
    engine = make_engine(database_url)
    committer = UnitOfWork(engine, grouped=True)
    with pytest.raises(RuntimeError, match="inside a work"):
        committer.run(lambda conn: committer.run(lambda inner: "never"))
    assert ["after"] == [committer.run(lambda conn: "after")]


def test_after_a_group_the_next_leader_waits_for_as_many_callers(database_url: str) -> None:
    """Under load a leader waits (up to the commit delay) until as many works as the last group
    had have queued: three callers arriving one after the other still share one commit."""
    engine = make_engine(database_url)
    committer = UnitOfWork(engine, grouped=True, commit_delay=DEADLINE)
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
    committer = UnitOfWork(engine, grouped=True, commit_delay=0.2)
    as_one_group(committer, [put(committer, f"a{n}") for n in range(4)])
    started = time.monotonic()
    assert "lone" == put(committer, "lone")(lambda: None)
    assert 0.15 < time.monotonic() - started < DEADLINE


def test_a_nested_run_is_refused_when_ungrouped_too(database_url: str) -> None:
    """Ungrouped, a work calling the unit again would wait for its own write lock: refused at once."""
    engine = make_engine(database_url)
    uow = UnitOfWork(engine, grouped=False)
    with pytest.raises(RuntimeError, match="inside a work"):
        uow.run(lambda conn: uow.run(lambda inner: "never"))
    assert "after" == uow.run(lambda conn: "after")


def noting(uow: UnitOfWork, key: str, *, fail: bool = False) -> Call:
    """A call storing ``key`` and noting it under "keys" (then raising, if ``fail``)."""

    def work(conn: Connection, hold: Callable[[], None]) -> str:
        conn.execute(insert(kv).values(key=key, value="v"))
        note(conn, "keys", key)
        hold()
        if fail:
            raise ValueError(f"work {key!r} failed")
        return key

    return lambda hold: uow.run(lambda conn: work(conn, hold))


def test_what_a_group_noted_is_handed_on_once_after_its_commit(database_url: str) -> None:
    """One hand-on per transaction with every value its works kept; none for the work that failed."""
    engine = make_engine(database_url)
    uow = UnitOfWork(engine, grouped=True)
    handed: list[list[str]] = []
    committed_keys: list[list[str]] = []
    uow.hand_ons.register("keys", lambda values: (handed.append(values), committed_keys.append(keys(engine))))
    as_one_group(uow, [noting(uow, k, fail=k == "bad") for k in ("lead", "a", "bad", "b")])
    assert [["lead"], ["a", "b"]] == handed
    assert [["lead"], ["a", "b", "lead"]] == committed_keys, "handed on only once committed"


def test_a_rolled_back_work_hands_on_nothing(database_url: str) -> None:
    """A lone work that raises leaves nothing and hands nothing on."""
    engine = make_engine(database_url)
    uow = UnitOfWork(engine, grouped=False)
    handed: list[list[str]] = []
    uow.hand_ons.register("keys", handed.append)
    with pytest.raises(ValueError):
        noting(uow, "x", fail=True)(lambda: None)
    assert "y" == noting(uow, "y")(lambda: None)
    assert [["y"]] == handed


def test_a_failing_hand_on_is_logged_and_the_answer_stands(database_url: str) -> None:
    """The broker being down after the commit does not undo the write or its answer."""
    engine = make_engine(database_url)
    uow = UnitOfWork(engine, grouped=True)

    def broker_down(values: list[Any]) -> None:
        raise ConnectionError("the broker is down")

    uow.hand_ons.register("keys", broker_down)
    assert "k" == noting(uow, "k")(lambda: None)
    assert ["k"] == keys(engine)


def test_note_outside_a_unit_of_work_is_refused(database_url: str) -> None:
    """There is one way to act after a commit: noting in a plain transaction raises."""
    engine = make_engine(database_url)
    with engine.begin() as conn, pytest.raises(RuntimeError, match="outside a unit of work"):
        note(conn, "keys", "x")


def test_coroutines_are_answered_after_their_group_commits(database_url: str) -> None:
    """Works submitted from an event loop commit together in the committer thread; each
    coroutine gets its own result, and one failing work fails only its own caller."""
    engine = make_engine(database_url)
    uow = UnitOfWork(engine, grouped=True)
    uow.start()

    def work(key: str) -> Callable[[Connection], str]:
        def run(conn: Connection) -> str:
            conn.execute(insert(kv).values(key=key, value="v"))
            if key == "bad":
                raise ValueError("bad work")
            return key

        return run

    async def main() -> list[Any]:
        futures = [uow.submit_async(work(k)) for k in ("a", "b", "bad", "c")]
        return await asyncio.gather(*futures, return_exceptions=True)

    try:
        outcomes = asyncio.run(main())
    finally:
        uow.stop()
    assert ["a", "b", "c"] == [o for o in outcomes if isinstance(o, str)]
    assert isinstance(outcomes[2], ValueError)
    assert ["a", "b", "c"] == keys(engine)


def test_reads_do_not_wait_for_a_writer(tmp_path: Any) -> None:
    """On SQLite a read runs beside a write transaction that holds the write lock (WAL snapshot)."""
    from gateway.store import migrate

    db = Database.from_url(f"sqlite:///{tmp_path / 'w.sqlite3'}")
    migrate(db.engine)
    holding, release = threading.Event(), threading.Event()

    def slow_writer(conn: Connection) -> None:
        conn.execute(insert(kv).values(key="w", value="v"))
        holding.set()
        assert release.wait(DEADLINE)

    writer = threading.Thread(target=db.write, args=(slow_writer,))
    writer.start()
    try:
        assert holding.wait(DEADLINE)
        with db.read() as conn:  # would wait for ``release`` (never set before it) if reads queued
            seen = list(conn.execute(select(kv.c.key)).scalars())
        assert [] == seen, "the read sees the last commit, not the writer's open transaction"
    finally:
        release.set()
        writer.join(DEADLINE)
    with db.read() as conn:
        assert ["w"] == list(conn.execute(select(kv.c.key)).scalars())


class _Deadlock(Exception):
    sqlstate = "40P01"


@pytest.mark.parametrize("grouped", [True, False])
def test_a_transaction_that_loses_a_lock_race_runs_again(database_url: str, grouped: bool) -> None:
    """A work whose transaction PostgreSQL chose to break a deadlock leaves nothing and runs again; its caller
    gets the second run's answer. One that keeps losing gets the error after CONFLICT_RETRIES more runs."""
    from sqlalchemy.exc import OperationalError

    from gateway.store.uow import CONFLICT_RETRIES

    engine = make_engine(database_url)
    uow = UnitOfWork(engine, grouped=grouped)
    runs: list[int] = []

    def work(conn: Connection) -> str:
        conn.execute(insert(kv).values(key=f"k{len(runs)}", value="v"))
        runs.append(1)
        if len(runs) == 1:
            raise OperationalError("UPDATE ...", {}, _Deadlock("deadlock detected"))
        return "done"

    assert "done" == uow.run(work)
    assert (2, ["k1"]) == (len(runs), keys(engine))  # the first run's row was rolled back

    def always(conn: Connection) -> str:
        runs.append(1)
        raise OperationalError("UPDATE ...", {}, _Deadlock("deadlock detected"))

    runs.clear()
    with pytest.raises(OperationalError):
        uow.run(always)
    assert CONFLICT_RETRIES + 1 == len(runs)
