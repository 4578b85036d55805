"""A refused change is audited; when the store is too busy to audit it, the refusal still reaches the user."""

import logging

import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.console import Console
from integration.clock import FixedClock
from storage.engine import Store
from storage.models import AuditEntry, Classification
from tests.conftest import NOW, OtherWriter, impatient, seed_demo


def _trojan_and_denials(store: Store) -> tuple[str, list[tuple[str, str]]]:
    with store.read() as session:
        trojan = session.get(Classification, "TROJAN")
        denied = session.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all()
    assert trojan is not None
    return trojan.risk, [(e.actor, e.action) for e in denied]


def test_a_refused_change_is_audited(sqlite_store: Store) -> None:
    """The premise of the next test: a refusal normally leaves an audit entry."""
    seed_demo(sqlite_store)
    reply = Console(sqlite_store, FixedClock(NOW)).run("analyst@contoso.example", "risk set TROJAN low --yes")
    assert not reply.ok
    assert _trojan_and_denials(sqlite_store) == ("high", [("analyst@contoso.example", "risk.set")])


def test_a_refusal_reaches_the_user_when_the_store_is_too_busy_to_audit_it(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    seed_demo(sqlite_store)
    store = impatient(sqlite_store)
    console = Console(store, FixedClock(NOW))
    with OtherWriter(store) as other:
        # Another writer takes the lock the moment the refused command's transaction hands its
        # connection back, i.e. between the refusal and the audit of it.
        event.listen(store.engine, "checkin", lambda *_: other.lock(), once=True)
        reply = console.run("analyst@contoso.example", "risk set TROJAN low --yes")
    store.dispose()
    assert not reply.ok and "restricted" in reply.text  # the permission refusal, not "store is busy"
    assert any(
        r.getMessage().startswith("denied risk.set by analyst@contoso.example not audited: The store is busy")
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    assert _trojan_and_denials(sqlite_store) == ("high", [])
