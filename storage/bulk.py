"""Writing many rows at once: loading a whole tenant (the demo seed's million devices), and updating
the rows a batch of source events changed (`update_rows`).

`wipe` empties tables (PostgreSQL: one TRUNCATE). `loading(session, models)` drops the models' secondary
indexes, yields a `Loader` — SQLite: one executemany of plain tuples per batch; PostgreSQL: COPY — and
builds the indexes again when the block ends: one sort each instead of a million random insertions.
Rows hold what the columns store: states as plain strings, timestamps as `Loader.stamp` made them.

On PostgreSQL TRUNCATE and DROP INDEX lock their tables until commit: readers wait for the load to
finish (on SQLite they keep reading the old rows).
"""

import json
import queue
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    String,
    Table,
    any_,
    bindparam,
    cast,
    column,
    delete,
    func,
    inspect,
    select,
    update,
    values,
)
from sqlalchemy.engine.interfaces import ReflectedForeignKeyConstraint
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel

THREADED = True
DAY = 86_400
_WIPED = "mesbot_wiped"  # in Session.info: tables TRUNCATEd in this session's transaction


def table_of(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


UPDATE_CHUNK = 1_000  # rows per statement: well under SQLite's 32,766 and psycopg's 65,535 parameters


def among(session: Session, column: ColumnElement[str], values: Collection[str]) -> ColumnElement[bool]:
    """`column IN (values)` with all the values in one parameter — a JSON array on SQLite, an array on
    PostgreSQL — for thousands of them: SQLAlchemy renders and binds a plain `IN` value by value,
    which cost a tenth of applying a batch of source events."""
    if session.connection().dialect.name == "sqlite":
        given = func.json_each(json.dumps(list(values))).table_valued("value")
        return column.in_(select(given.c.value))
    return column == any_(cast(list(values), ARRAY(String)))


def insert_rows(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys, values as the model holds them) at once: on SQLite one
    executemany, on PostgreSQL one COPY (its statement triggers run once). Each column's values go
    through the column's type here, column by column: SQLAlchemy's per-row parameter handling cost a
    fifth of applying a stream of threats."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    columns = list(rows[0])
    converted = []
    for name in columns:
        convert = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        converted.append([convert(row[name]) for row in rows] if convert else [row[name] for row in rows])
    if dialect.name == "sqlite":  # no parameter handling: the tuples go to executemany as they are
        sql = _insert_sql(table.name, columns)
        connection.exec_driver_sql(sql, list(zip(*converted, strict=True)))
        return
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        _copy(cursor, table.name, columns, zip(*converted, strict=True))
    except dialect.loaded_dbapi.Error as error:  # as SQLAlchemy raises it, so storage.faults knows it
        raise DBAPIError.instance(f"COPY {table.name}", None, error, dialect.loaded_dbapi.Error) from error
    finally:
        cursor.close()


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _copy(
    cursor: Any, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], freeze: bool = False
) -> None:
    with cursor.copy(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN{' WITH (FREEZE)' if freeze else ''}"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def update_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> None:
    """Set `columns` of each row found by its `id` to that row's values.

    PostgreSQL: one `UPDATE … FROM (VALUES …)` per `UPDATE_CHUNK` rows, because the tally's triggers
    run once per statement there, and an UPDATE per row (what the ORM's flush sends) made a stream of
    device updates spend most of its time in them. SQLite's triggers run per row whatever the statement
    (and it takes no column names after `VALUES`): one UPDATE, executed for every row."""
    connection = session.connection()
    key = table.c.id
    if connection.dialect.name == "sqlite":
        statement = (
            update(table)
            .where(key == bindparam("_id"))
            .values({name: bindparam(f"_{name}", type_=table.c[name].type) for name in columns})
        )
        connection.execute(
            statement, [{"_id": row["id"], **{f"_{name}": row[name] for name in columns}} for row in rows]
        )
        return
    for start in range(0, len(rows), UPDATE_CHUNK):
        chunk = rows[start : start + UPDATE_CHUNK]
        given = values(
            column("id", key.type), *(column(name, table.c[name].type) for name in columns), name="given"
        ).data([(row["id"], *(row[name] for name in columns)) for row in chunk])
        # cast: a column whose values are all NULL would otherwise be text to PostgreSQL
        statement = (
            update(table)
            .where(key == given.c.id)
            .values({name: cast(given.c[name], table.c[name].type) for name in columns})
        )
        connection.execute(statement)


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
        table = table_of(model).name
        if self.sqlite:
            if self.failure is not None:
                raise self.failure
            self._send((_insert_sql(table, columns), rows))
            return
        # FREEZE writes the rows as already visible to all (no VACUUM needed after); PostgreSQL allows it
        # only for a table emptied (TRUNCATE) in the same transaction.
        _copy(self.cursor, table, columns, rows, freeze=table in self.wiped)

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
