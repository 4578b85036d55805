"""Leadership (notifications/leader.py) and what the scheduler does with it: periodic jobs and
leader-only tasks only while leading, planned from the last run by any process."""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from integration.clock import FixedClock, SystemClock
from integration.config import Settings
from notifications import jobs
from notifications import leader as leader_module
from notifications.leader import Leadership
from notifications.scheduler import PERIODIC, Scheduler
from storage import fleet
from storage.engine import Store
from storage.leader import for_store
from storage.models import JobRun
from tests.conftest import make_store
from tests.notifications.test_jobs import make_deps
from tests.storage.test_leader import terminate


class SwitchedLock:
    """A leader lock a test hands out and takes away."""

    def __init__(self, free: bool = True) -> None:
        self.free = free
        self.held = False

    def try_acquire(self) -> bool:
        self.held = self.held or self.free
        return self.held

    def holds(self) -> bool:
        return self.held and self.free

    def release(self) -> None:
        self.held = False


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leader_module, "RETRY_SECONDS", 0.05)
    monkeypatch.setattr(leader_module, "CHECK_SECONDS", 0.05)


@pytest.fixture
def pg_store(tmp_path: object) -> Iterator[Store]:
    made = make_store("postgresql", tmp_path)
    yield made
    made.dispose()


async def until(condition: object, what: str, timeout: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


def test_the_second_candidate_takes_over_when_the_leaders_connection_is_terminated(
    pg_store: Store, fast: None
) -> None:
    changes: list[str] = []

    def candidate(process: str) -> Leadership:
        async def gained() -> None:
            changes.append(f"{process} gained")

        async def lost() -> None:
            changes.append(f"{process} lost")

        lock = for_store(pg_store, process)
        return Leadership(lock, pg_store, SystemClock(), gained=gained, lost=lost, process=process)

    def recorded() -> str | None:
        with pg_store.read() as session:
            record = fleet.leader(session)
            return record.process if record else None

    async def scenario() -> None:
        a, b = candidate("a:1"), candidate("b:2")
        runs = [asyncio.create_task(a.run())]
        await until(lambda: a.leading, "the first candidate did not lead")
        runs.append(asyncio.create_task(b.run()))
        await asyncio.sleep(0.5)  # b tries ~10 times
        assert not b.leading and recorded() == "a:1"

        assert terminate(pg_store, "a:1") == 1
        await until(lambda: "b:2 gained" in changes and "a:1 lost" in changes, "no take-over")
        # (The server frees the lock the moment it ends the session: b may take it just before a's
        # next check tells a — the jobs' period claims cover that moment.)
        assert not a.leading
        assert changes[0] == "a:1 gained" and sorted(changes[1:]) == ["a:1 lost", "b:2 gained"]
        await until(lambda: recorded() == "b:2", "the record does not name the new leader")
        await asyncio.sleep(0.3)
        assert not a.leading  # a keeps trying, and keeps waiting

        for run in runs:
            run.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        assert changes[-1] == "b:2 lost"  # stopping steps down
        assert recorded() is None  # …and clears the record it wrote

    asyncio.run(scenario())
    with pg_store.read() as session:
        assert fleet.counters(session)[fleet.LEADERSHIP_CHANGES] == 2


def test_periodic_jobs_and_leader_tasks_run_only_while_leading(
    sqlite_store: Store, fast: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = make_deps(sqlite_store, FixedClock(datetime.now(UTC)))
    lock = SwitchedLock(free=False)
    started: list[str] = []
    cancelled: list[str] = []

    async def follower() -> None:
        started.append("stream")
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append("stream")
            raise

    async def scenario() -> None:
        scheduler = Scheduler(deps, lock=lock, leader_tasks={"stream": follower})
        monkeypatch.setattr(scheduler, "_periodic", _never)  # planning is under test, not the jobs
        scheduler.start()
        try:
            await asyncio.sleep(0.3)
            assert not scheduler.leading and not started
            assert all(scheduler.next_runs()[name] is None for name in PERIODIC)
            assert scheduler.state == "running"  # the deliverer runs on every worker

            lock.free = True
            await until(lambda: scheduler.leading and started == ["stream"], "did not lead")
            assert all(scheduler.next_runs()[name] is not None for name in PERIODIC)

            lock.free = False  # the lock is lost: step down at the next check
            # stepping down clears `leading` first, then cancels the leader-only tasks
            await until(lambda: not scheduler.leading and cancelled == ["stream"], "did not step down")
            assert all(scheduler.next_runs()[name] is None for name in PERIODIC)

            lock.free = True  # leads again: the task starts afresh
            await until(lambda: started == ["stream", "stream"], "the task did not start again")
        finally:
            await scheduler.stop()
        assert cancelled == ["stream", "stream"]

    asyncio.run(scenario())


async def _never(name: str) -> None:
    raise AssertionError(f"{name} ran")


def test_a_new_leader_plans_each_job_a_period_after_its_last_run_by_any_process(
    sqlite_store: Store, fast: None
) -> None:
    now = datetime.now(UTC)
    with sqlite_store.write() as session:  # the dead leader ran these; source-sync never ran
        for name, ago in (("heartbeat", 10), ("enrollment-scan", 50), ("disconnected-sweep", 90)):
            session.add(JobRun(name=name, runs=1, last_started_at=now - timedelta(minutes=ago)))
    deps = make_deps(sqlite_store, FixedClock(now))

    plans: dict[str, datetime | None] = {}

    def plan_only(add_job: object) -> object:
        """Note when each periodic job is first due, and plan a no-op in its place."""

        def add(func: object, *args: object, **kwargs: object) -> object:
            if kwargs.get("id") in PERIODIC:
                func = _idle
                plans[str(kwargs["id"])] = kwargs.get("next_run_time")  # type: ignore[assignment]
            return add_job(func, *args, **kwargs)  # type: ignore[operator]

        return add

    async def planned() -> None:
        scheduler = Scheduler(deps, lock=SwitchedLock())
        scheduler.aps.add_job = plan_only(scheduler.aps.add_job)  # type: ignore[method-assign]
        scheduler.start()
        try:
            await until(lambda: len(plans) == len(PERIODIC), "no plan")
        finally:
            await scheduler.stop()

    asyncio.run(planned())
    assert plans["heartbeat"] == now + timedelta(minutes=50)  # the default 60-minute heartbeat
    assert plans["enrollment-scan"] == now + timedelta(minutes=10)
    assert plans["error-digest"] is None  # it keeps to its crontab
    for name in ("source-sync", "disconnected-sweep"):  # never ran / overdue: at once
        when = plans[name]
        assert when is not None and abs(when - now) < timedelta(seconds=5)


async def _idle(*_: object) -> None:
    return None


def test_first_run_of_the_digest_catches_up_only_a_slot_just_missed() -> None:
    settings = Settings()  # hourly at :00
    at = datetime(2026, 12, 1, 10, 2, tzinfo=UTC)
    ran = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert jobs.first_run("error-digest", settings, 60, ran, at) == at  # the 10:00 slot, 2 minutes late
    done = datetime(2026, 12, 1, 10, 0, 1, tzinfo=UTC)
    assert jobs.first_run("error-digest", settings, 60, done, at) is None  # the dead leader sent it
    late = datetime(2026, 12, 1, 10, 20, tzinfo=UTC)
    assert jobs.first_run("error-digest", settings, 60, ran, late) is None  # too late: the next slot
    assert jobs.first_run("error-digest", settings, 60, None, at) is None  # a fresh install


def test_a_periodic_run_is_skipped_when_another_started_within_half_its_period(sqlite_store: Store) -> None:
    clock = FixedClock(datetime.now(UTC))
    deps = make_deps(sqlite_store, clock)
    every = timedelta(minutes=60)

    first = asyncio.run(jobs.run_in_period(deps, "heartbeat", every))
    assert first is not None and first.ok
    clock.advance(timedelta(minutes=29))
    assert asyncio.run(jobs.run_in_period(deps, "heartbeat", every)) is None
    clock.advance(timedelta(minutes=2))
    assert asyncio.run(jobs.run_in_period(deps, "heartbeat", every)) is not None
    with sqlite_store.read() as session:
        row = session.get(JobRun, "heartbeat")
        assert row is not None and row.runs == 2


def test_the_digest_is_claimed_per_crontab_slot(sqlite_store: Store) -> None:
    clock = FixedClock(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    deps = make_deps(sqlite_store, clock)
    every = jobs.digest_period(deps.settings, clock.now())
    assert every == timedelta(hours=1)  # hourly by default
    assert asyncio.run(jobs.run_in_period(deps, "error-digest", every)) is not None
    clock.advance(timedelta(seconds=2))  # a second leader, for the moment both believe they lead
    assert asyncio.run(jobs.run_in_period(deps, "error-digest", every)) is None
