"""`Prepared` reads what `Connection.execute` reads — the same rows, loaded through the same column
types — inside the session's transaction, on both backends; a driver error is the usual store fault."""

from datetime import timedelta, timezone

import pytest
from sqlalchemy import Column, MetaData, String, Table, bindparam, literal_column, update
from sqlalchemy import select as sa_select
from sqlmodel import col

from storage.engine import Store
from storage.errors import StoreUnavailable
from storage.models import Device, Threat
from storage.prepared import Prepared
from storage.states import ThreatStatus
from tests.conftest import NOW, seed_demo
from tests.integration.factories import device

# named parameter, a literal the statement binds itself (`status = 'OPEN'`, through StrEnumType),
# enum and timestamp columns, an outer join that yields NULLs
OWNER_THREATS = (
    sa_select(
        col(Device.id),
        col(Device.platform),
        col(Device.checkin_time),
        col(Threat.id),
        col(Threat.status),
        col(Threat.detected_at),
    )
    .select_from(Device)
    .outerjoin(Threat, (col(Threat.device_id) == Device.id) & (col(Threat.status) == ThreatStatus.OPEN))
    .where(col(Device.owner_email) == bindparam("owner"))
    .order_by(col(Device.id), col(Threat.id))
)


def _owners(store: Store) -> list[str]:
    with store.read() as session:
        return list(session.connection().execute(sa_select(col(Device.owner_email)).distinct()).scalars())


def test_rows_and_types_are_what_connection_execute_loads(store: Store) -> None:
    seed_demo(store)
    prepared = Prepared(OWNER_THREATS)
    compared = 0
    with store.read() as session:
        for owner in _owners(store):
            expected = [tuple(row) for row in session.connection().execute(OWNER_THREATS, {"owner": owner})]
            got = prepared.all(session, {"owner": owner})
            assert got == expected
            assert [tuple(map(type, row)) for row in got] == [tuple(map(type, row)) for row in expected]
            compared += len(got)
    assert compared >= 150  # every device of the demo tenant, with and without open threats
    opened = [row for row in got if row[3] is not None]
    assert all(row[4] is ThreatStatus.OPEN and row[5].tzinfo is not None for row in opened)


def test_bound_values_go_through_the_column_type(store: Store) -> None:
    """A timestamp is compared as the store writes it (on SQLite, UTCDateTime's text in UTC), not as
    the driver would render a datetime by itself (in its own offset)."""
    seed_demo(store)
    since = (
        sa_select(col(Device.id))
        .where(col(Device.checkin_time) >= bindparam("since"))
        .order_by(col(Device.id))
    )
    prepared = Prepared(since)
    with store.read() as session:
        for hours in (1, 3, 6, 12, 30, 24 * 7, 24 * 60):
            moment = (NOW - timedelta(hours=hours)).astimezone(timezone(timedelta(hours=5)))
            expected = [tuple(row) for row in session.connection().execute(since, {"since": moment})]
            assert prepared.all(session, {"since": moment}) == expected
            assert 0 < len(expected) < 150 or hours == 24 * 60


def test_it_sees_what_the_session_flushed_and_not_what_another_rolled_back(store: Store) -> None:
    prepared = Prepared(sa_select(col(Device.id)).where(col(Device.owner_email) == bindparam("owner")))
    with store.write() as session:
        added = device(session, owner="p@contoso.example")
        session.flush()
        assert prepared.all(session, {"owner": "p@contoso.example"}) == [(added.id,)]
        session.rollback()
    with store.read() as session:
        assert prepared.all(session, {"owner": "p@contoso.example"}) == []


def test_a_statement_without_parameters_and_a_constant_column(store: Store) -> None:
    prepared = Prepared(sa_select(literal_column("1"), col(Device.id)).where(col(Device.id) == "none"))
    with store.read() as session:
        assert prepared.all(session) == []


def test_a_driver_error_is_a_store_fault(sqlite_store: Store) -> None:
    """Raised as SQLAlchemy raises it, so the store's fault translation names it (here a table the
    file lacks: a store from another application)."""
    missing = Table("not_in_this_store", MetaData(), Column("id", String))
    prepared = Prepared(sa_select(missing.c.id).where(missing.c.id == bindparam("key")))
    with pytest.raises(StoreUnavailable, match="not_in_this_store"), sqlite_store.read() as session:
        prepared.all(session, {"key": "a"})


def test_an_expanding_in_is_refused_when_compiled(sqlite_store: Store) -> None:
    prepared = Prepared(sa_select(col(Device.id)).where(col(Device.id).in_(bindparam("ids", expanding=True))))
    with sqlite_store.read() as session, pytest.raises(ValueError, match=r"storage\.bulk\.among"):
        prepared.all(session, {"ids": ["a"]})


DEVICE_NAME = sa_select(col(Device.name)).where(col(Device.id) == bindparam("id"))


def test_held_reads_each_see_what_was_committed_before_them(store: Store) -> None:
    """On the connection a thread keeps (`Store.held_read`, the ack path), read after read: each one
    is its own snapshot, and one that ran only prepared statements ends as cleanly as one that
    loaded ORM rows."""
    seed_demo(store)
    prepared = Prepared(DEVICE_NAME)
    device_id = _owners_device(store)
    kept: list[Device] = []
    for name in ("first name", "second name", "third name"):
        with store.write() as session:
            session.exec(update(Device).where(col(Device.id) == device_id).values(name=name))  # type: ignore[call-overload]
        with store.held_read() as session:
            assert prepared.all(session, {"id": device_id}) == [(name,)]
        with store.held_read() as session:  # an ORM read on the same connection after it
            loaded = session.get(Device, device_id)
            assert loaded is not None and loaded.name == name
            kept.append(loaded)  # alive after the read: the next read must not answer from it
    with store.held_read() as session, store.write() as writer:
        before = prepared.all(session, {"id": device_id})
        writer.exec(update(Device).where(col(Device.id) == device_id).values(name="later"))  # type: ignore[call-overload]
        assert prepared.all(session, {"id": device_id}) == before  # still its own snapshot


def _owners_device(store: Store) -> str:
    with store.read() as session:
        return str(session.connection().execute(sa_select(col(Device.id)).limit(1)).scalar_one())
