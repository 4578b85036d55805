"""The bulk loader (the demo seed's): rows it loads read back as the ORM's do, on both backends; a
failed load raises and leaves nothing; its indexes are back afterwards."""

import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.dialects import sqlite
from sqlmodel import select

from storage import bulk
from storage.engine import Store
from storage.models import AuditEntry, Device, Threat
from storage.types import UTCDateTime
from tests.conftest import NOW

COLUMNS = ("id", "owner_email", "platform", "activation_status", "protection_status", "security_status")


def _row(device_id: str, stamp: str) -> tuple[object, ...]:
    return (device_id, "bulk@contoso.example", "IOS", "ACTIVATED", "PROTECTED", "SECURE", stamp, stamp, 0)


@pytest.mark.parametrize(
    "now", [NOW, datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5)))]
)
def test_stamps_are_what_sqlalchemy_writes_for_sqlite(now: datetime) -> None:
    dialect = sqlite.dialect()
    written = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    stamps = bulk.StampsBefore(now, "")
    rng = random.Random(1)
    for seconds in [0, 1, 86_399, 86_400, *(rng.randrange(0, 500 * 86_400) for _ in range(2_000))]:
        assert stamps(seconds) == written(now - timedelta(seconds=seconds))


def test_loaded_rows_read_back_like_orm_rows(store: Store) -> None:
    ago = timedelta(days=3, seconds=17)
    with store.write() as session:
        with bulk.loading(session, [Device]) as loader:
            stamp = loader.stamps_before(NOW)(int(ago.total_seconds()))
            loader.load(
                Device, (*COLUMNS, "checkin_time", "enrolled_at", "open_classifications"), [_row("b1", stamp)]
            )
        session.add(
            Device(
                id="o1",
                owner_email="bulk@contoso.example",
                platform="IOS",
                activation_status="ACTIVATED",
                protection_status="PROTECTED",
                security_status="SECURE",
                checkin_time=NOW - ago,
                enrolled_at=NOW - ago,
            )
        )
    with store.read() as session:
        loaded, made = session.get(Device, "b1"), session.get(Device, "o1")
        assert loaded is not None and made is not None
        assert loaded.model_dump(exclude={"id"}) == made.model_dump(exclude={"id"})
        # compared in SQL too: range queries (the sweep) see the same instant
        later = session.exec(select(Device.id).where(Device.checkin_time >= NOW - ago)).all()
    assert sorted(later) == ["b1", "o1"]
    names = {ix["name"] for ix in inspect(store.engine).get_indexes("device")}
    assert {"ix_device_owner_email", "ix_device_state", "ix_device_enrolled"} <= names


def test_a_failed_load_raises_and_leaves_nothing(store: Store) -> None:
    stamp = bulk.StampsBefore(NOW, "" if store.is_sqlite else "+00")(0)
    rows = [_row("same", stamp), _row("same", stamp)]  # the second breaks the primary key
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), store.write() as session:
        session.add(AuditEntry(at=NOW, actor="a", action="x", outcome="applied"))
        with bulk.loading(session, [Device, Threat]) as loader:
            loader.load(Device, (*COLUMNS, "checkin_time", "enrolled_at", "open_classifications"), rows)
    with store.read() as session:
        assert session.exec(select(Device)).all() == []
        assert session.exec(select(AuditEntry)).all() == []
    names = {ix["name"] for ix in inspect(store.engine).get_indexes("threat")}
    assert {"ix_threat_device_status_class", "ix_threat_status_class_device"} <= names


def test_wipe_empties_tables(store: Store) -> None:
    with store.write() as session:
        session.add(AuditEntry(at=NOW, actor="a", action="x", outcome="applied"))
    with store.write() as session:
        bulk.wipe(session, [bulk.table_of(AuditEntry)])
    with store.read() as session:
        assert session.execute(text("SELECT count(*) FROM auditentry")).scalar_one() == 0
