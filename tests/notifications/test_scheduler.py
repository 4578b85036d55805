"""The scheduler as `serve` runs it: every job planned, the deliverer woken by a commit, the heartbeat
re-planned when its setting changes."""

import asyncio
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from integration import connector, sync
from integration.clock import SystemClock
from integration.config import Settings
from integration.demo.data import ADMIN
from notifications import jobs, wiring
from notifications import scheduler as scheduler_module
from notifications.delivery import Deliverer
from notifications.jobs import Deps
from notifications.scheduler import Scheduler
from storage.engine import Store
from tests.integration.test_sync import clean_device, opened
from tests.notifications.test_delivery import FakeChannel


def make(store: Store, **channels: FakeChannel) -> Deps:
    settings = Settings()
    clock = SystemClock()
    return Deps(
        store=store,
        settings=settings,
        clock=clock,
        deliverer=Deliverer(store, dict(channels), clock),
        policy=wiring.policy(settings),
    )


def test_every_job_is_planned_and_a_commit_wakes_the_deliverer(
    demo_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scheduler_module, "DELIVER_POLL_SECONDS", 60.0)  # only the doorbell is fast
    email, slack = FakeChannel("email"), FakeChannel("slack")
    deps = make(demo_store, email=email, slack=slack)

    async def scenario() -> float:
        scheduler = Scheduler(deps)
        scheduler.start()
        try:
            assert scheduler.state == "running"
            await until_leading(scheduler)
            planned = scheduler.next_runs()
            assert set(planned) == set(jobs.JOBS)
            assert all(planned[name] is not None for name in jobs.JOBS if name != "deliver")
            await asyncio.sleep(0.2)  # the deliverer's first look finds nothing and waits

            def commit() -> None:
                now = datetime.now(UTC)
                with demo_store.write() as session:
                    sync.apply(session, [opened(clean_device(session).id, at=now)], now=now)

            await asyncio.to_thread(commit)
            started = asyncio.get_running_loop().time()
            deps.ring()
            while not (email.sent and slack.sent):
                await asyncio.sleep(0.01)
                assert asyncio.get_running_loop().time() - started < 5, "not delivered"
            return asyncio.get_running_loop().time() - started
        finally:
            await scheduler.stop()

    waited = asyncio.run(scenario())
    assert waited < 5  # woken, not polled
    assert scheduler_state_after_stop(deps) == "off"


class NeverLeads:
    """A leader lock another worker always holds."""

    def try_acquire(self) -> bool:
        return False

    def holds(self) -> bool:
        return False

    def release(self) -> None:
        return None


async def until_leading(scheduler: Scheduler, timeout: float = 10) -> None:
    """The one worker takes the lead (and plans the periodic jobs) at once."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (scheduler.leading and scheduler.aps.get_job("heartbeat") is not None):
        assert asyncio.get_running_loop().time() < deadline, "this worker did not take the lead"
        await asyncio.sleep(0.01)


def scheduler_state_after_stop(deps: Deps) -> str:
    async def check() -> str:
        scheduler = Scheduler(deps)
        scheduler.start()
        await scheduler.stop()
        return scheduler.state

    return asyncio.run(check())


def test_the_heartbeat_follows_its_setting(demo_store: Store) -> None:
    deps = make(demo_store)

    async def scenario() -> tuple[timedelta, timedelta]:
        scheduler = Scheduler(deps)
        scheduler.start()
        try:
            await until_leading(scheduler)
            before = scheduler.aps.get_job("heartbeat").trigger.interval
            with demo_store.write() as session:
                connector.set_field(session, "heartbeat_minutes", 15, actor=ADMIN, at=datetime.now(UTC))
            await scheduler._replan()
            return before, scheduler.aps.get_job("heartbeat").trigger.interval
        finally:
            await scheduler.stop()

    before, after = asyncio.run(scenario())
    assert (before, after) == (timedelta(minutes=60), timedelta(minutes=15))


def test_the_deliverer_outlives_a_failing_pass_and_a_stopped_one_shows_in_the_state(
    demo_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    deps = make(demo_store, email=FakeChannel("email"), slack=FakeChannel("slack"))
    calls: list[str] = []

    async def broken(*_: object) -> bool:
        calls.append("look")
        raise RuntimeError("a bug in one pass")

    async def scenario() -> tuple[str, str]:
        # Not the leader: no periodic job rings the doorbell, so only the broken look runs (a `deliver`
        # pass in flight would swallow the cancellation below, as it does when mesbot stops).
        scheduler = Scheduler(deps, lock=NeverLeads())
        monkeypatch.setattr(scheduler, "_anything_due", broken)
        monkeypatch.setattr(scheduler_module, "DELIVER_POLL_SECONDS", 0.01)
        scheduler.start()
        try:
            while len(calls) < 3:  # it went on after the first failure
                await asyncio.sleep(0.01)
            alive = scheduler.state
            assert scheduler._deliver_task is not None
            scheduler._deliver_task.cancel()
            await asyncio.wait([scheduler._deliver_task], timeout=10)
            return alive, scheduler.state
        finally:
            await scheduler.stop()

    assert asyncio.run(scenario()) == ("running", "deliverer stopped")


def test_a_job_interrupted_by_the_stop_leaves_a_quiet_line_not_a_traceback(
    demo_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    deps = make(demo_store)
    claiming = threading.Event()

    def slow_claim(*args: object) -> bool:  # the job is waiting on the store when mesbot stops
        claiming.set()
        time.sleep(0.3)
        return True

    monkeypatch.setattr(jobs, "_claim_run", slow_claim)

    async def scenario() -> None:
        scheduler = Scheduler(deps)
        scheduler.start()
        try:
            await until_leading(scheduler)
            scheduler.aps.modify_job("heartbeat", next_run_time=datetime.now(UTC))
            while not claiming.is_set():
                await asyncio.sleep(0.01)
        finally:
            await scheduler.stop()
        await asyncio.sleep(0.1)  # APScheduler reports a cancelled job on a later turn of the loop

    with caplog.at_level(logging.INFO):
        asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert "heartbeat interrupted: mesbot is stopping" in caplog.messages
