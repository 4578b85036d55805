"""Loading a whole tenant at once, as fast as each database takes rows (the demo seed's million devices).

`wipe` empties tables (PostgreSQL: one TRUNCATE). `loading(session, models)` drops the models' secondary
indexes, yields a `Loader` — SQLite: one executemany of plain tuples per batch; PostgreSQL: COPY — and
builds the indexes again when the block ends: one sort each instead of a million random insertions.
Rows hold what the columns store: states as plain strings, timestamps as `Loader.stamp` made them.

On PostgreSQL TRUNCATE and DROP INDEX lock their tables until commit: readers wait for the load to
finish (on SQLite they keep reading the old rows).
"""

import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, delete, inspect
from sqlalchemy.engine.interfaces import ReflectedForeignKeyConstraint
from sqlmodel import Session, SQLModel

THREADED = True
DAY = 86_400
_WIPED = "mesbot_wiped"  # in Session.info: tables TRUNCATEd in this session's transaction


def table_of(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


def wipe(session: Session, tables: Sequence[Table]) -> None:
    """Delete every row of `tables` (in an order their foreign keys allow)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"TRUNCATE {', '.join(table.name for table in tables)}")
        session.info.setdefault(_WIPED, set()).update(table.name for table in tables)
        return
    for table in reversed(SQLModel.metadata.sorted_tables):
        if table in tables:
            session.execute(delete(table))


class Loader:
    """Appends rows to tables. On SQLite a writer thread runs the inserts (SQLite releases the GIL
    while it works) so the caller draws the next batch meanwhile; PostgreSQL's COPY is already worked
    off by the server process."""

    def __init__(self, connection: Connection, wiped: set[str]) -> None:
        self.wiped = wiped
        self.sqlite = connection.dialect.name == "sqlite"
        self.cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        self.batches: queue.Queue[tuple[str, Sequence[Sequence[Any]]] | None] = queue.Queue(maxsize=2)
        self.failure: BaseException | None = None
        self.writer = threading.Thread(target=self._write, name="mesbot-bulk-writer", daemon=True)
        if self.sqlite and THREADED:
            self.writer.start()

    def stamps_before(self, now: datetime) -> "StampsBefore":
        """What a timestamp column takes for `now` minus a whole number of seconds."""
        return StampsBefore(now, "" if self.sqlite else "+00")

    def load(self, model: type[SQLModel], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Append `rows` (values in `columns` order, timestamps from `stamps_before`) to `model`'s table.
        They may be written after this returns: do not change them."""
        table, names = table_of(model).name, ", ".join(columns)
        if self.sqlite:
            if self.failure is not None:
                raise self.failure
            marks = ", ".join("?" * len(columns))
            self._send((f"INSERT INTO {table} ({names}) VALUES ({marks})", rows))
            return
        # FREEZE writes the rows as already visible to all (no VACUUM needed after); PostgreSQL allows it
        # only for a table emptied (TRUNCATE) in the same transaction.
        freeze = " WITH (FREEZE)" if table in self.wiped else ""
        with self.cursor.copy(f"COPY {table} ({names}) FROM STDIN{freeze}") as copy:
            for row in rows:
                copy.write_row(row)

    def execute(self, sql: str) -> None:
        """Run one statement after the rows loaded so far (e.g. INSERT … SELECT from them)."""
        if self.sqlite:
            self._send((sql, [()]))
        else:
            self.cursor.execute(sql)

    def finish(self) -> None:
        """Wait for the writer; raise what it failed with. The connection is the caller's again."""
        if self.writer.is_alive():
            self.batches.put(None)
            self.writer.join()
        self.cursor.close()
        if self.failure is not None:
            raise self.failure

    def _send(self, batch: tuple[str, Sequence[Sequence[Any]]]) -> None:
        if self.writer.is_alive():
            self.batches.put(batch)
        else:
            self.cursor.executemany(*batch)

    def _write(self) -> None:
        while (batch := self.batches.get()) is not None:
            if self.failure is None:  # after a failure, only drain: the caller raises and rolls back
                try:
                    self.cursor.executemany(*batch)
                except BaseException as error:
                    self.failure = error


@contextmanager
def loading(session: Session, models: Sequence[type[SQLModel]]) -> Iterator[Loader]:
    """Drop the secondary indexes of `models`' tables (on PostgreSQL their foreign keys too), let the
    block load rows, then build them again: one sort per index, one join per foreign key, instead of
    a lookup per row (memberships load 3.6x faster on PostgreSQL without the per-row key checks).

    On an exception the caller's transaction rolls back, and the indexes and keys with it.
    """
    connection = session.connection()
    tables = [table_of(model) for model in models]
    indexes = [index for table in tables for index in table.indexes if not index.unique]
    keys = _foreign_keys(connection, tables) if connection.dialect.name == "postgresql" else []
    for table, key in keys:
        connection.exec_driver_sql(f"ALTER TABLE {table} DROP CONSTRAINT {key['name']}")
    for index in indexes:
        index.drop(connection)
    loader = Loader(connection, session.info.get(_WIPED, set()))
    try:
        yield loader
    finally:
        loader.finish()  # also on an exception: no thread may touch the connection while it rolls back
    for index in indexes:
        index.create(connection)
    for table, key in keys:
        columns, referred = ", ".join(key["constrained_columns"]), ", ".join(key["referred_columns"])
        connection.exec_driver_sql(
            f"ALTER TABLE {table} ADD CONSTRAINT {key['name']} FOREIGN KEY ({columns}) "
            f"REFERENCES {key['referred_table']} ({referred})"
        )


def _foreign_keys(
    connection: Connection, tables: Sequence[Table]
) -> list[tuple[str, ReflectedForeignKeyConstraint]]:
    inspector = inspect(connection)
    return [(table.name, key) for table in tables for key in inspector.get_foreign_keys(table.name)]


class StampsBefore:
    """Timestamps `now` minus whole seconds, as text both databases take for a `UTCDateTime` column:
    SQLite stores it as is (naive UTC, microseconds always shown, as SQLAlchemy writes it); PostgreSQL
    parses it with its `+00`. Dates are formatted once per day and times of day once per run: 5x cheaper
    than building and formatting a datetime, which counts when a million devices are drawn."""

    def __init__(self, now: datetime, zone: str) -> None:
        if now.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        self.now = now.astimezone(UTC)
        self.epoch = int(self.now.replace(microsecond=0).timestamp())
        tail = f".{self.now.microsecond:06d}{zone}"
        self.times = [f" {s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{tail}" for s in range(DAY)]
        self.dates: dict[int, str] = {}

    def __call__(self, seconds: int) -> str:
        day, second = divmod(self.epoch - seconds, DAY)
        date = self.dates.get(day)
        if date is None:
            date = self.dates[day] = datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d")
        return date + self.times[second]
