"""The leader lock on each backend, the period claim of a job run, and the fleet-wide record and
counters (storage/leader.py, storage/job_runs.py, storage/fleet.py)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from storage import fleet, job_runs
from storage.engine import Store
from storage.leader import AdvisoryLock, SingleProcessLock, for_store
from tests.conftest import make_store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def pg_store(tmp_path: object) -> Iterator[Store]:
    made = make_store("postgresql", tmp_path)
    yield made
    made.dispose()


def terminate(store: Store, identity: str) -> int:
    """End the lock's session from outside, as a dropped connection or a DBA would."""
    with store.engine.begin() as connection:
        return len(
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": f"mesbot leader {identity}"},
            ).all()
        )


def test_on_sqlite_the_one_worker_leads(sqlite_store: Store) -> None:
    lock = for_store(sqlite_store, "host:1")
    assert isinstance(lock, SingleProcessLock)
    assert lock.try_acquire() and lock.holds()


def test_a_second_candidate_waits_and_takes_over_when_the_leaders_session_is_terminated(
    pg_store: Store,
) -> None:
    first, second = for_store(pg_store, "host:1"), for_store(pg_store, "host:2")
    assert isinstance(first, AdvisoryLock)
    try:
        assert first.try_acquire() and first.holds()
        assert not second.try_acquire()  # waits: the lock is held
        assert first.try_acquire()  # the holder asking again still holds it

        assert terminate(pg_store, "host:1") == 1
        assert not first.holds()  # the leader notices at its next check
        assert second.try_acquire() and second.holds()
        assert not first.try_acquire()  # a fresh connection, but the lock is the other's now

        second.release()  # stepping down frees it at once
        assert first.try_acquire()
    finally:
        first.release()
        second.release()


def test_each_schema_has_its_own_leader(pg_store: Store, tmp_path: object) -> None:
    other = Store(pg_store.url.replace("mesbot_test_", "mesbot_other_"))
    with other.engine.begin() as connection:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS " + _schema(other)))
    here, there = for_store(pg_store, "host:1"), for_store(other, "host:2")
    try:
        assert here.try_acquire() and there.try_acquire()
    finally:
        here.release()
        there.release()
        with other.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA IF EXISTS " + _schema(other) + " CASCADE"))
        other.dispose()


def _schema(store: Store) -> str:
    return store.url.rsplit("search_path%3D", 1)[1]


def test_an_unreachable_store_means_not_leading(caplog: pytest.LogCaptureFixture) -> None:
    lock = AdvisoryLock("postgresql+psycopg://nobody:secret-pw@127.0.0.1:1/none", "host:1")
    assert not lock.try_acquire()
    assert not lock.holds()
    lock.release()
    assert "secret-pw" not in caplog.text
    assert "the leader lock was not tried" in caplog.text


def test_a_job_run_claims_its_period_once(store: Store) -> None:
    def claim(at: datetime) -> bool:
        with store.write() as session:
            return job_runs.claim_run(
                session, "heartbeat", at, unless_started_after=at - timedelta(minutes=30)
            )

    assert claim(NOW)  # never ran
    assert not claim(NOW + timedelta(minutes=29))  # another process ran it within the half period
    assert claim(NOW + timedelta(minutes=31))
    assert not claim(NOW + timedelta(minutes=32))


def test_the_leader_record_and_fleet_counters(store: Store) -> None:
    with store.write() as session:
        assert fleet.leader(session) is None
        fleet.record_leader(session, fleet.LeaderRecord("a:1", NOW, NOW))
        fleet.bump(session, fleet.DUPLICATE_SENDS)
        fleet.bump(session, fleet.DUPLICATE_SENDS, 2)
        fleet.bump(session, fleet.LEADERSHIP_CHANGES)
    with store.write() as session:
        assert fleet.leader(session) == fleet.LeaderRecord("a:1", NOW, NOW)
        assert fleet.counters(session) == {"duplicate-sends": 3, "leadership-changes": 1}
        assert not fleet.forget_leader(session, "b:2")  # only the process it names clears it
    with store.write() as session:
        assert fleet.leader(session) is not None
        assert fleet.forget_leader(session, "a:1")
    with store.read() as session:
        assert fleet.leader(session) is None
