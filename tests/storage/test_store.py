"""The store on SQLite and PostgreSQL: schema through Alembic, aware timestamps, write transactions."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError
from sqlmodel import Session, select

from storage import migrate
from storage.engine import Store, normalise_url
from storage.errors import StoreBusy, StoreError
from storage.models import AuditEntry, CompliancePolicy, Device
from storage.states import Platform
from tests.conftest import NOW, make_store, seed_demo


def test_schema_is_at_head_after_upgrade(store: Store) -> None:
    assert migrate.is_current(store)


def test_upgrading_a_current_store_again_keeps_its_data(store: Store) -> None:
    with store.write() as session:
        session.add(AuditEntry(at=NOW, actor="a@b.example", action="x", outcome="applied", after={"k": 1}))
    migrate.upgrade(store)
    assert migrate.is_current(store)
    with store.read() as session:
        entries = session.exec(select(AuditEntry)).all()
        policy = session.get(CompliancePolicy, 1)
    assert [(e.actor, e.after) for e in entries] == [("a@b.example", {"k": 1})]
    assert policy is not None  # a tenant default written after the first upgrade


def test_empty_database_is_not_current(tmp_path: object) -> None:
    assert not migrate.is_current(Store(f"sqlite:///{tmp_path}/empty.db"))


def test_an_older_revision_is_not_current(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0001'")
    assert not migrate.is_current(store)


def test_head_is_the_newest_migration(tmp_path: object) -> None:
    """`is_current` compares with `migrate.HEAD` instead of loading Alembic: it must be the head."""
    from alembic.script import ScriptDirectory

    config = migrate.alembic_config(Store(f"sqlite:///{tmp_path}/unused.db"))
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.HEAD


def test_timestamps_come_back_timezone_aware(store: Store) -> None:
    at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    with store.write() as session:
        session.add(AuditEntry(at=at, actor="a@b.example", action="x", outcome="applied", before={"k": 1}))
    with store.read() as session:
        entry = session.exec(select(AuditEntry)).one()
    assert entry.at == at and entry.at.tzinfo is not None
    assert entry.before == {"k": 1}


def test_naive_timestamps_are_rejected(store: Store) -> None:
    with pytest.raises(StatementError) as raised, store.write() as session:
        session.add(AuditEntry(at=datetime(2026, 1, 1), actor="a", action="x", outcome="applied"))
    # SQLAlchemy wraps what storage.types.UTCDateTime raised while binding the value
    assert isinstance(raised.value.orig, ValueError)
    assert str(raised.value.orig) == "naive datetime given to a UTCDateTime column"
    with store.read() as session:
        assert session.exec(select(AuditEntry)).all() == []


def test_write_rolls_back_on_error(store: Store) -> None:
    with pytest.raises(RuntimeError), store.write() as session:
        session.add(AuditEntry(at=NOW, actor="a", action="x", outcome="applied"))
        session.flush()
        raise RuntimeError("boom")
    with store.read() as session:
        assert session.exec(select(AuditEntry)).all() == []


def test_postgres_urls_use_psycopg() -> None:
    assert normalise_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_runs_in_wal_mode(sqlite_store: Store) -> None:
    with sqlite_store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_sqlite_writer_waits_then_reports_busy(tmp_path: object) -> None:
    """Another writer holding the lock past the busy timeout: a clear StoreBusy, nothing written."""
    url = f"sqlite:///{tmp_path}/busy.db"
    first = Store(url)
    migrate.upgrade(first)
    patient = Store(url, busy_timeout_ms=200)
    holding, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with first.write() as session:
            session.add(AuditEntry(at=NOW, actor="holder", action="x", outcome="applied"))
            session.flush()
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    holding.wait(5)
    try:
        with pytest.raises(StoreBusy, match="Try again"), patient.write() as session:
            session.add(AuditEntry(at=NOW, actor="late", action="x", outcome="applied"))
    finally:
        release.set()
        holder.join()
    with first.read() as session:
        assert [e.actor for e in session.exec(select(AuditEntry)).all()] == ["holder"]


def test_indexes_exist_for_the_hot_queries(store: Store) -> None:
    from sqlalchemy import inspect

    inspector = inspect(store.engine)
    device = {ix["name"] for ix in inspector.get_indexes("device")}
    threat = {ix["name"] for ix in inspector.get_indexes("threat")}
    assert {"ix_device_state", "ix_device_owner_email"} <= device
    assert {"ix_threat_device_status_class", "ix_threat_status_class_device"} <= threat


def test_sqlite_recounts_one_devices_open_threats_by_the_device_index(sqlite_store: Store) -> None:
    """The tally triggers' recount (migration 0004): a device's open threats by device, not all open ones."""
    query = (
        "EXPLAIN QUERY PLAN SELECT sum(DISTINCT c.bit) FROM threat AS t JOIN classification AS c "
        "ON c.name = t.classification WHERE t.device_id = 'd1' AND t.status = 'OPEN'"
    )
    with sqlite_store.engine.connect() as connection:
        plan = " ".join(str(row) for row in connection.execute(text(query)).all())
    assert "ix_threat_device_status_class (device_id=? AND status=?)" in plan


def test_sqlite_status_query_uses_the_owner_index(sqlite_store: Store) -> None:
    with sqlite_store.engine.connect() as connection:
        plan = connection.execute(
            text("EXPLAIN QUERY PLAN SELECT * FROM device WHERE owner_email = 'a@b.example'")
        ).all()
    assert "ix_device_owner_email" in " ".join(str(row) for row in plan)


def test_devices_round_trip(store: Store) -> None:
    checkin = NOW - timedelta(days=2)
    with store.write() as session:
        session.add(
            Device(
                id="d1",
                owner_email="x@contoso.example",
                platform="IOS",
                activation_status="ACTIVATED",
                protection_status="PROTECTED",
                security_status="SECURE",
                checkin_time=checkin,
                enrolled_at=NOW - timedelta(days=40),
            )
        )
    with store.read() as session:
        device = session.get(Device, "d1")
    assert device is not None and device.checkin_time == checkin


def test_a_state_outside_its_enum_is_refused_when_written_and_when_read(store: Store) -> None:
    def device(platform: str) -> Device:
        return Device(
            id="d1",
            owner_email="x@contoso.example",
            platform=platform,
            activation_status="ACTIVATED",
            protection_status="PROTECTED",
            security_status="SECURE",
            enrolled_at=NOW,
        )

    with pytest.raises(StatementError) as raised, store.write() as session:
        session.add(device("BLACKBERRY"))
    assert str(raised.value.orig) == "'BLACKBERRY' is not a valid Platform"
    with store.write() as session:
        session.add(device("IOS"))
        session.flush()
        session.execute(text("UPDATE device SET platform = 'WINDOWS_PHONE'"))
    with pytest.raises(ValueError, match="'WINDOWS_PHONE' is not a valid Platform"), store.read() as session:
        session.exec(select(Device)).all()
    with store.write() as session:
        session.execute(text("UPDATE device SET platform = 'ANDROID'"))
    with store.read() as session:  # a member and its plain value bind alike; a member is read back
        assert session.exec(select(Device.id).where(Device.platform == "ANDROID")).all() == ["d1"]
        assert session.exec(select(Device.id).where(Device.platform == Platform.ANDROID)).all() == ["d1"]
        assert session.exec(select(Device.platform)).one() is Platform.ANDROID


def test_claims_are_once_only_and_expire(store: Store) -> None:
    from storage import claims

    assert claims.claim(store, "confirm:abc", NOW)
    assert not claims.claim(store, "confirm:abc", NOW)
    assert claims.is_claimed(store, "confirm:abc")
    assert claims.forget_before(store, NOW + timedelta(seconds=1)) == 1
    assert claims.claim(store, "confirm:abc", NOW)


def test_vacuum_analyze_vacuums_and_analyzes_every_table_on_postgresql(tmp_path: object) -> None:
    store = make_store("postgresql", tmp_path)  # skipped without MESBOT_TEST_POSTGRES_URL
    try:
        seed_demo(store, users=20, devices=50)
        store.vacuum_analyze()  # PostgreSQL refuses VACUUM inside a transaction: this must not be in one
        with store.engine.connect() as connection:
            tables = connection.execute(
                text(
                    "SELECT relname, last_vacuum IS NOT NULL, last_analyze IS NOT NULL"
                    " FROM pg_stat_user_tables WHERE schemaname = current_schema()"
                )
            ).all()
            device_rows_estimate = connection.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = 'device'::regclass")
            ).scalar()
    finally:
        store.dispose()
    assert {"device", "threat", "classification"} <= {name for name, _, _ in tables}
    assert [name for name, vacuumed, analyzed in tables if not (vacuumed and analyzed)] == []
    assert device_rows_estimate == 50  # fresh planner statistics (-1 before the first ANALYZE)


def test_vacuum_analyze_leaves_sqlite_as_it_was(sqlite_store: Store) -> None:
    """A no-op on SQLite: no VACUUM (free pages stay free), no ANALYZE (no statistics table)."""
    seed_demo(sqlite_store, users=20, devices=50)
    with sqlite_store.engine.begin() as connection:  # leave free pages that a VACUUM would reclaim
        connection.exec_driver_sql("CREATE TABLE scratch AS SELECT randomblob(4000) AS b FROM device")
        connection.exec_driver_sql("DROP TABLE scratch")
    with sqlite_store.engine.connect() as connection:
        free_pages = connection.exec_driver_sql("PRAGMA freelist_count").scalar()
    assert free_pages
    sqlite_store.vacuum_analyze()
    with sqlite_store.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM device").scalar() == 50
        assert connection.exec_driver_sql("PRAGMA freelist_count").scalar() == free_pages
        stats = "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
        assert connection.exec_driver_sql(stats).scalar() == 0


def _policy(session: Session) -> str:
    return session.exec(select(CompliancePolicy.noncompliant_at)).one().value


def test_held_read_keeps_one_connection_per_thread_and_sees_each_commit(sqlite_store: Store) -> None:
    """The event loop's reads: one connection kept between reads (none taken from the pool each time),
    each read a new snapshot that sees what was committed before it began."""
    with sqlite_store.held_read() as session:
        before = _policy(session)
    with sqlite_store.held_read() as session:
        first = session.connection().connection.dbapi_connection
    assert sqlite_store.engine.pool.checkedout() == 1  # the held one, idle between reads
    with sqlite_store.write() as session:
        session.exec(text("UPDATE compliancepolicy SET noncompliant_at = 'low'"))  # type: ignore[call-overload]
    with sqlite_store.held_read() as session:
        assert session.connection().connection.dbapi_connection is first
        assert before != "low" and _policy(session) == "low"

    elsewhere: list[object] = []

    def other_thread() -> None:
        with sqlite_store.held_read() as session:
            elsewhere.append(session.connection().connection.dbapi_connection)

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert elsewhere and elsewhere[0] is not first
    sqlite_store.dispose()
    assert sqlite_store.engine.pool.checkedout() == 0  # dispose closed both held connections


def test_held_read_is_a_snapshot_and_takes_no_lock(sqlite_store: Store) -> None:
    with sqlite_store.held_read() as session:
        before = _policy(session)
        with sqlite_store.write() as writer:  # not blocked by the open read (WAL)
            writer.exec(text("UPDATE compliancepolicy SET noncompliant_at = 'low'"))  # type: ignore[call-overload]
        assert _policy(session) == before
    with sqlite_store.held_read() as session:
        assert _policy(session) != before


def test_held_read_after_a_fault_starts_on_a_fresh_connection(sqlite_store: Store) -> None:
    with sqlite_store.held_read() as session:
        first = session.connection()
    with pytest.raises(StoreError), sqlite_store.held_read() as session:
        session.exec(text("SELECT * FROM no_such_table"))  # type: ignore[call-overload]
    assert first.closed  # given back to the pool, which resets or replaces it
    with sqlite_store.held_read() as session:
        assert session.connection() is not first
        assert _policy(session)
    assert sqlite_store.engine.pool.checkedout() == 1


def test_held_read_holds_a_connection_only_on_sqlite(store: Store) -> None:
    with store.held_read() as session:
        assert _policy(session)
    assert store.engine.pool.checkedout() == (1 if store.is_sqlite else 0)
