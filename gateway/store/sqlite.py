"""The one SQLite speed path: statements built once and run straight through the sqlite3 driver.

SQLAlchemy's execution path costs about 0.2 ms of CPU per statement on a busy machine, several
times what SQLite takes to run it, and holds the GIL meanwhile (the SMTP event loop needs it).
On SQLite a :class:`Prebuilt` statement is compiled once per set of value names (the same SQL
SQLAlchemy would run, values through the columns' own bind processors, read through its result
processors) and handed to the driver inside the connection's current transaction. Elsewhere, or
with :func:`use_fast_paths` off, SQLAlchemy executes it. Only for statements without expanding
(``IN``) parameters. It uses SQLAlchemy's public compiler API (``compile``, ``positiontup``,
``binds``, ``bind_processor``, ``result_processor``).

Used where it was measured to pay (``docs/benchmarks.md``, "SQLite fast path"): raw inbound
mail (the SMTP server's commit), ``ticket.created``, the outbox claim and record, the changes log,
and the landing's rows (``insert_many``: row by row through the driver on SQLite, where that is
cheaper than one ``INSERT ... RETURNING`` through SQLAlchemy; ``bench/bench_landing.py``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql.expression import Executable

from gateway.store.records import inserted_pk

__all__ = ["Prebuilt", "use_fast_paths"]

_enabled = [True]


def use_fast_paths(enabled: bool) -> None:
    """Turn the driver path on or off for the whole process (benchmarks measure it this way)."""
    _enabled[0] = enabled


def _fast(conn: Connection) -> bool:
    return _enabled[0] and conn.dialect.name == "sqlite"


class _Compiled:
    """One statement compiled for SQLite with a given set of value names."""

    def __init__(self, statement: Any, conn: Connection, keys: list[str]) -> None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=keys)
        self.sql = str(compiled)
        given = set(keys)
        self._fixed: dict[str, Any] = {}  # values fixed in the statement, by bind name
        names: list[str] = []
        #: (position, bind processor) for the values that need converting (datetimes, say).
        self._convert: list[tuple[int, Callable[[Any], Any]]] = []
        for position, name in enumerate(compiled.positiontup or ()):
            bind = compiled.binds[name]
            if name not in given:
                if bind.required:
                    raise ValueError(f"no value given for {name!r} in {self.sql!r}")
                self._fixed[name] = bind.effective_value
            names.append(name)
            # The dialect's own type (SQLite's DATETIME writes its text format), not the generic one.
            process = bind.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
            if process is not None:
                self._convert.append((position, process))
        self._pick = operator.itemgetter(*names) if names else (lambda _params: ())
        self._one = len(names) == 1

    def values(self, params: Mapping[str, Any]) -> tuple[Any, ...] | list[Any]:
        picked = self._pick({**self._fixed, **params} if self._fixed else params)
        if self._one:
            picked = (picked,)
        if not self._convert:
            return picked
        values = list(picked)
        for position, process in self._convert:
            values[position] = process(values[position])
        return values


class Prebuilt:
    """A statement and how to run it on a connection; build it once, at import."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._sqlite: dict[tuple[str, ...], _Compiled] = {}
        self._processors: list[Callable[[Any], Any] | None] | None = None

    def _compiled(self, conn: Connection, params: Mapping[str, Any]) -> _Compiled:
        keys = tuple(params)
        compiled = self._sqlite.get(keys)
        if compiled is None:
            compiled = self._sqlite[keys] = _Compiled(self.statement, conn, list(keys))
        return compiled

    def _driver(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The driver's cursor after running the statement (SQLite only)."""
        compiled = self._compiled(conn, params)
        return conn.connection.driver_connection.execute(compiled.sql, compiled.values(params))  # type: ignore[union-attr]

    def run_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement once per row of values (all rows name the same values)."""
        if not rows:
            return
        if _fast(conn):
            compiled = self._compiled(conn, rows[0])
            driver: Any = conn.connection.driver_connection
            driver.executemany(compiled.sql, [compiled.values(r) for r in rows])
        else:
            conn.execute(self.statement, [dict(r) for r in rows])

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row returned (``RETURNING`` or ``SELECT``), values converted as SQLAlchemy would."""
        if not _fast(conn):
            return [tuple(r) for r in conn.execute(self.statement, dict(params))]
        processors = self._result_processors(conn)
        return [
            tuple(v if p is None or v is None else p(v) for v, p in zip(row, processors, strict=True))
            for row in self._driver(conn, params).fetchall()
        ]

    def _result_processors(self, conn: Connection) -> list[Callable[[Any], Any] | None]:
        if self._processors is None:
            dialect = conn.dialect
            self._processors = [
                c.type.dialect_impl(dialect).result_processor(dialect, None)
                for c in self.statement.exported_columns  # type: ignore[attr-defined]
            ]
        return self._processors

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first row returned (``RETURNING`` or ``SELECT``), or None."""
        if _fast(conn):
            rows = self._driver(conn, params).fetchall()  # to the end: the statement is done
            return rows[0] if rows else None
        return conn.execute(self.statement, dict(params)).first()

    def insert(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run an ``INSERT`` of one row; the primary key it generated."""
        if _fast(conn):
            return int(self._driver(conn, params).lastrowid)
        return inserted_pk(conn.execute(self.statement, dict(params)))

    def insert_many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        """Run an ``INSERT`` of several rows (all naming the same values); the primary keys generated, in
        order: row by row through the driver on SQLite, one ``INSERT ... RETURNING`` elsewhere (each
        statement there costs a round trip and SQLAlchemy's execution)."""
        if len(rows) < 2 or _fast(conn):
            return [self.insert(conn, row) for row in rows]
        table = self.statement.table  # type: ignore[attr-defined]
        returning = self.statement.returning(*table.primary_key.columns, sort_by_parameter_order=True)  # type: ignore[attr-defined]
        return [int(pk) for pk in conn.execute(returning, [dict(r) for r in rows]).scalars()]

    def count(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Run an ``UPDATE`` or ``DELETE``; how many rows it changed."""
        if _fast(conn):
            return int(self._driver(conn, params).rowcount)
        return int(conn.execute(self.statement, dict(params)).rowcount)

    def run(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Run the statement for its effect."""
        if _fast(conn):
            self._driver(conn, params)
        else:
            conn.execute(self.statement, dict(params))
