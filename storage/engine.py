"""The store's engine and sessions: SQLite by default (WAL, busy timeout, `BEGIN IMMEDIATE` for
writes), PostgreSQL when the URL says so. Every fault comes out as a `StoreError` (`storage.faults`)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import NoSuchModuleError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from storage import faults

BUSY_TIMEOUT_MS = 5_000
HELD_CONNECTION = "mesbot.held_connection"  # Session.info key: the connection a held_read is bound to
CONNECT_TIMEOUT_S = 10  # an unreachable PostgreSQL host fails in seconds instead of hanging


def normalise_url(url: str) -> str:
    """`postgresql://…` (and Heroku-style `postgres://…`) use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Store:
    """Opens sessions on one database. `read()` for queries, `write()` for changes.

    `given_url` is the URL as configured (shown, password masked, in every fault); `url` is the one
    SQLAlchemy uses. SQLite in memory (`is_memory`) works, one connection shared by all threads.
    """

    def __init__(self, url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.given_url = url
        faults.parse(url)  # refuses what is not a URL of a store mesbot can use
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self.is_memory = faults.is_memory(parsed)
        self.engine = self._create_engine(parsed, busy_timeout_ms)
        self._writer = self.engine.execution_options(mesbot_write=True)
        self._held = threading.local()  # held_read's connection and session, one per thread that asks
        self._all_held: list[Connection] = []
        self._held_lock = threading.Lock()

    def _create_engine(self, url: URL, busy_timeout_ms: int) -> Engine:
        try:
            if not self.is_sqlite:
                args = {} if "connect_timeout" in url.query else {"connect_timeout": CONNECT_TIMEOUT_S}
                return create_engine(url, pool_pre_ping=True, connect_args=args)
            if self.is_memory:
                # one connection for every thread: each new one would be another, empty database
                engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
            else:
                self._make_parent_dir(url)
                # LIFO: the connection used last (warm page cache) serves the next request.
                engine = create_engine(url, connect_args={"check_same_thread": False}, pool_use_lifo=True)
        except (NoSuchModuleError, ImportError) as error:  # e.g. postgresql+asyncpg:// without asyncpg
            raise faults.missing_driver(error, self.given_url) from error
        event.listen(engine, "connect", _sqlite_on_connect(busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine

    def _make_parent_dir(self, url: URL) -> None:
        folder = Path(url.database or "").parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:  # a read-only file system, or a path that cannot exist (/proc/…)
            raise faults.folder_fault(error, self.given_url, folder) from error

    @contextmanager
    def read(self) -> Iterator[Session]:
        with faults.translated(self.given_url), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def held_read(self) -> Iterator[Session]:
        """`read()` on a connection this thread keeps between reads, for the event loop's inline
        SQLite reads (the Slack ack path, bot/slack/services.py): taking a connection from the pool
        and giving it back cost ~20 µs of a ~50 µs read. Each read is its own transaction (BEGIN …
        ROLLBACK), so it sees what was committed before it began, like `read()`. Only for a thread
        that lives as long as the store: each such thread keeps one of the pool's connections.
        Elsewhere than a SQLite file this is `read()`."""
        if not self.is_sqlite or self.is_memory:
            with self.read() as session:
                yield session
            return
        with faults.translated(self.given_url):
            connection, session = self._held_connection()
            driver: Any = connection.connection.driver_connection
            try:
                # The transaction is the driver's own: SQLAlchemy's Transaction and the session's
                # close (expunging an empty identity map) cost ~20 µs of every ack. An ORM query in
                # the session begins SQLAlchemy's transaction inside it (_sqlite_on_begin sends no
                # second BEGIN); the session is then closed, which rolls back.
                driver.execute("BEGIN")
                yield session
            except BaseException:
                self._drop_held()  # after a fault, the next read starts afresh
                raise
            if session.in_transaction():
                session.close()
            if driver.in_transaction:  # a read: nothing to keep, and the snapshot ends here
                driver.rollback()

    def _held_connection(self) -> tuple[Connection, Session]:
        """This thread's connection, and the session bound to it for its whole life (so
        `storage.prepared` may run on it without asking the session: `session.connection()` cost
        ~4 µs a statement). The session is reused: it is clean after every read (closed whenever an
        ORM query used it), and making one cost ~5 µs."""
        held: tuple[Connection, Session] | None = getattr(self._held, "pair", None)
        if held is not None and not held[0].closed and not held[0].invalidated:
            return held
        connection = self.engine.connect()
        held = self._held.pair = connection, Session(bind=connection, info={HELD_CONNECTION: connection})
        with self._held_lock:
            self._all_held.append(connection)
        return held

    def _drop_held(self) -> None:
        connection, session = self._held.pair
        self._held.pair = None
        with self._held_lock:
            if connection in self._all_held:
                self._all_held.remove(connection)
        try:
            session.close()  # rolls back what an ORM query began on the connection
        finally:
            connection.close()  # back to the pool, which rolls back the driver's own transaction

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A transaction that commits when the block ends and rolls back on an exception.

        On SQLite it starts with `BEGIN IMMEDIATE`: a deferred transaction that later upgrades to a
        write fails at once with "database is locked", ignoring the busy timeout.
        """
        with (
            faults.translated(self.given_url),
            Session(self._writer, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def vacuum_analyze(self) -> None:
        """After a bulk load on PostgreSQL: fresh planner statistics and visibility map (autovacuum
        may be off or late; index-only counts need the visibility map). No-op on SQLite."""
        if self.is_sqlite:
            return
        with (
            faults.translated(self.given_url),
            self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection,
        ):
            connection.exec_driver_sql("VACUUM ANALYZE")

    def dispose(self) -> None:
        with self._held_lock:
            held, self._all_held = self._all_held, []
        for connection in held:  # closed from here, whichever thread held it: it is idle between reads
            connection.close()
        self.engine.dispose()


SQLITE_CACHE_KIB = 16 * 1024


def _sqlite_on_connect(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own handling is deferred-only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # SQLite's default page cache is 2 MiB per connection. A stream of new threats inserts into
        # three growing B-trees: with 16 MiB it applied 25–30% more events a second (100,000 events,
        # bench/lookout_stream.py; 32 MiB gained nothing more). The cache fills only as pages are
        # read: peak RSS of `serve --role all` at 100,000 devices went from 151 to 171 MB (target 250).
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return on_connect


def _sqlite_on_begin(connection: Any) -> None:
    if connection.get_execution_options().get("mesbot_write", False):
        # Through SQLAlchemy: waiting out the busy timeout raises a DBAPIError that becomes StoreBusy.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        # A deferred BEGIN takes no lock and reads nothing, so it cannot fail with a store fault;
        # sent straight to the driver it costs ~2 µs instead of ~35 µs, once per read (every Slack
        # read pays it before its ack).
        driver = connection.connection.driver_connection
        if not driver.in_transaction:  # a held_read has begun it already
            driver.execute("BEGIN")
