"""The store's engine and sessions: SQLite by default (WAL, busy timeout, `BEGIN IMMEDIATE` for
writes), PostgreSQL when the URL says so."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from storage.errors import StoreBusy

BUSY_TIMEOUT_MS = 5_000


def normalise_url(url: str) -> str:
    """`postgresql://…` (and Heroku-style `postgres://…`) use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Store:
    """Opens sessions on one database. `read()` for queries, `write()` for changes."""

    def __init__(self, url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine = self._create_engine(busy_timeout_ms)
        self._writer = self.engine.execution_options(mesbot_write=True)

    def _create_engine(self, busy_timeout_ms: int) -> Engine:
        if not self.is_sqlite:
            return create_engine(self.url, pool_pre_ping=True)
        _make_parent_dir(self.url)
        # LIFO: the connection used last (warm page cache) serves the next request.
        engine = create_engine(self.url, connect_args={"check_same_thread": False}, pool_use_lifo=True)
        event.listen(engine, "connect", _sqlite_on_connect(busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back on an exception.

        On SQLite it starts with `BEGIN IMMEDIATE`: a deferred transaction that later upgrades to a
        write fails at once with "database is locked", ignoring the busy timeout.
        """
        try:
            with Session(self._writer, expire_on_commit=False) as session, session.begin():
                yield session
        except OperationalError as error:
            if _is_lock_error(error):
                raise StoreBusy() from error
            raise

    def vacuum_analyze(self) -> None:
        """After a bulk load on PostgreSQL: fresh planner statistics and visibility map (autovacuum
        may be off or late; index-only counts need the visibility map). No-op on SQLite."""
        if self.is_sqlite:
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")

    def dispose(self) -> None:
        self.engine.dispose()


def _make_parent_dir(url: str) -> None:
    path = url.split("///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is deferred-only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _sqlite_on_begin(connection: Any) -> None:
    immediate = connection.get_execution_options().get("mesbot_write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _is_lock_error(error: OperationalError) -> bool:
    text = str(error.orig).lower()
    return "database is locked" in text or "lock timeout" in text or "could not obtain lock" in text
