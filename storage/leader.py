"""The leader lock (DESIGN §2 "Scale-out"): exactly one worker runs the periodic jobs.

On PostgreSQL it is a session-level advisory lock held on a connection of its own — not one from the
pool used for work, which would hand the session (and the lock) to whatever borrows it next. The lock
lives exactly as long as that session: a leader killed with SIGKILL, or whose connection drops, frees
it, and another worker's next try takes it. The connection has TCP keepalives and a user timeout on
both ends, so a dead network is noticed within seconds by the leader (its check fails and it steps
down) and within ~20 s by the server (which then ends the session and frees the lock) — the leader
always notices first, so two leaders never overlap for long.

The key is a fixed class (`LOCK_CLASS`) and a hash of the schema the store lives in: two mesbot
installations sharing one database in different schemas (and the test suite's per-process schemas)
each have their own leader.

On SQLite there is one worker by design, and it leads (`SingleProcessLock`).

These calls block (a network round trip, bounded by the timeouts below): call them from a thread.
"""

import logging
import threading
from typing import Any, Protocol

import psycopg
from sqlalchemy import make_url

from storage.engine import Store

log = logging.getLogger(__name__)

LOCK_CLASS = 0x6D65_7362  # "mesb": the first half of the advisory lock key
CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 5_000
# Client side: probe an idle connection after 5 s, every 2 s, give up after 3 misses; data unacked for
# 5 s fails the socket at once. Server side (per-session settings): the server drops a silent session,
# and with it the lock, after ~10 + 3 × 3 = 19 s.
CLIENT_KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 5_000,
}
SERVER_SETTINGS = {
    "statement_timeout": STATEMENT_TIMEOUT_MS,
    "tcp_keepalives_idle": 10,
    "tcp_keepalives_interval": 3,
    "tcp_keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}


class LeaderLock(Protocol):
    """Whether this process leads. `try_acquire` and `holds` never raise: a store that cannot be
    reached means "not leading"."""

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; True when this process now holds it."""

    def holds(self) -> bool:
        """Whether the lock is still ours (the connection is alive and the lock is held on it)."""

    def release(self) -> None:
        """Give the lock up (close its session). Safe to call at any time, also while a call hangs."""


class SingleProcessLock:
    """SQLite: the one worker leads, always."""

    def try_acquire(self) -> bool:
        return True

    def holds(self) -> bool:
        return True

    def release(self) -> None:
        return None


class AdvisoryLock:
    """`pg_try_advisory_lock` on a connection of its own; `identity` names the session in
    `pg_stat_activity` (application_name) so an operator can see which process leads."""

    def __init__(self, url: str, identity: str) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._conninfo = parsed.render_as_string(hide_password=False)
        self._identity = identity
        self._connection: psycopg.Connection[tuple[object, ...]] | None = None
        self._key: int | None = None
        self._busy = threading.Lock()  # one call on the connection at a time
        self._abandoned = False  # released while a call hung: that call closes it when it returns

    def try_acquire(self) -> bool:
        return self._call(self._try_acquire, "the leader lock was not tried")

    def holds(self) -> bool:
        return self._call(self._holds, "the leader lock's connection failed")

    def release(self) -> None:
        if self._busy.acquire(blocking=False):
            try:
                self._unlock()
                self._close()
            finally:
                self._busy.release()
        else:
            self._abandoned = True

    def _call(self, work: "_Work", failure: str) -> bool:
        if not self._busy.acquire(blocking=False):
            return False  # an earlier call still hangs on the old connection: not leading
        try:
            return work()
        except psycopg.Error as error:
            log.warning("%s: %s", failure, _first_line(error))
            self._close()
            return False
        finally:
            if self._abandoned:
                self._abandoned = False
                self._close()
            self._busy.release()

    def _try_acquire(self) -> bool:
        connection = self._connect()
        row = connection.execute(
            "SELECT pg_try_advisory_lock(%s::int4, %s::int4)", (LOCK_CLASS, self._key)
        ).fetchone()
        return bool(row and row[0])

    def _holds(self) -> bool:
        if self._connection is None:
            return False
        row = self._connection.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND classid = %s::int4::oid AND objid = %s::int4::oid"
            " AND objsubid = 2)",
            (LOCK_CLASS, self._key),
        ).fetchone()
        return bool(row and row[0])

    def _connect(self) -> "psycopg.Connection[tuple[object, ...]]":
        if self._connection is not None and not self._connection.closed:
            return self._connection
        connection = psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=f"mesbot leader {self._identity}"[:63],
            **CLIENT_KEEPALIVES,
        )
        try:
            for name, value in SERVER_SETTINGS.items():
                connection.execute(f"SET {name} = {int(value)}")
            row = connection.execute("SELECT hashtext(coalesce(current_schema(), ''))").fetchone()
        except BaseException:
            connection.close()
            raise
        self._key = int(row[0]) if row else 0
        self._connection = connection
        return connection

    def _unlock(self) -> None:
        """Unlock before closing: a session's end frees the lock only once the server has processed it,
        and a worker stepping down cleanly should hand over at once."""
        if self._connection is None or self._connection.closed:
            return
        try:
            self._connection.execute("SELECT pg_advisory_unlock(%s::int4, %s::int4)", (LOCK_CLASS, self._key))
        except psycopg.Error as error:  # the connection is gone: so is the lock
            log.debug("the leader lock was not unlocked: %s", _first_line(error))

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()  # the session ends, and the lock with it
            except psycopg.Error as error:
                log.debug("the leader lock's connection did not close cleanly: %s", _first_line(error))


class _Work(Protocol):
    def __call__(self) -> bool: ...


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def for_store(store: Store, identity: str) -> LeaderLock:
    """The lock that fits the store: advisory on PostgreSQL, the single process on SQLite."""
    if store.is_sqlite:
        return SingleProcessLock()
    return AdvisoryLock(store.url, identity)
