"""`storage.faults`: which errors are store faults, and that no message ever shows a password."""

import sqlite3
import threading

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import select

from storage import faults, migrate
from storage.engine import Store
from storage.errors import StoreBusy, StoreUnavailable
from storage.models import AuditEntry
from tests.conftest import NOW


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:secret@db.example/x", "postgresql://u:***@db.example/x"),
        ("postgresql://u:s%40cret@db.example/x", "postgresql://u:***@db.example/x"),
        ("postgresql://u:secret@db.example:port/x", "postgresql://u:***@db.example:port/x"),  # unparseable
        ("postgresql://u:sec@ret@db.example:port/x", "postgresql://u:***@db.example:port/x"),
        ("sqlite:///:memory:", "sqlite:///:memory:"),
        ("notaurl", "notaurl"),
    ],
)
def test_masked_hides_the_password_and_nothing_else(url: str, shown: str) -> None:
    assert faults.masked(url) == shown


def _operational(message: str) -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))


def test_a_driver_message_never_carries_the_password() -> None:
    url = "postgresql://u:hunter2@db.example/x"
    error = _operational('password authentication failed for user "u" (tried "hunter2")')
    fault = faults.store_fault(error, url)
    assert isinstance(fault, StoreUnavailable)
    assert "hunter2" not in str(fault) and "u:***@db.example" in str(fault)
    assert len(str(fault).splitlines()) == 2


def test_lock_errors_are_busy_and_constraint_errors_are_not_store_faults() -> None:
    url = "sqlite:///x.db"
    assert isinstance(faults.store_fault(_operational("database is locked"), url), StoreBusy)
    integrity = IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))
    assert faults.store_fault(integrity, url) is None  # the caller decides (e.g. a claim already taken)


def test_sqlite_in_memory_is_one_database_for_every_thread() -> None:
    store = Store("sqlite:///:memory:")
    migrate.upgrade(store)

    def write() -> None:
        with store.write() as session:
            session.add(AuditEntry(at=NOW, actor="thread", action="x", outcome="applied"))

    writer = threading.Thread(target=write)
    writer.start()
    writer.join()
    with store.read() as session:
        assert [e.actor for e in session.exec(select(AuditEntry)).all()] == ["thread"]
    assert store.is_memory
    store.dispose()
