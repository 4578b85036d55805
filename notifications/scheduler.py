"""APScheduler wiring only (RELIABILITY.md): an in-memory job store (durable state lives in our own
tables), `coalesce`, `max_instances=1` and a misfire grace, so a late or piled-up job runs once.

The deliverer is not an interval job but a loop woken by the doorbell (rows committed in this process:
the source stream, the jobs, Slack commands) and, for rows other processes commit, by a one-query look
at the outbox every `DELIVER_POLL_SECONDS`: an alert leaves within moments of its commit. It runs on
every worker (claims keep workers apart).

The periodic jobs (every job but `deliver`) run only while this worker leads (notifications/leader.py;
on SQLite the one worker always leads): planned when it gains the lead — each a period after its last
run by any process (`jobs.first_run`) — and removed when it loses it. Each run first claims its period
in the store (`jobs.run_in_period`), so not even two leaders overlapping for a moment run one twice.

Leader-only tasks — the hook for long-running work that must run in one process only, such as the
Lookout event-stream follower: `Scheduler(deps, leader_tasks={"name": factory})` or
`scheduler.add_leader_task("name", factory)` before `start()`, where `factory()` returns a new
coroutine each time. It is started whenever this worker gains the lead and cancelled (awaited, so its
`finally` runs) when it loses the lead or stops. A task that ends or fails while this worker still
leads is started again after `LEADER_TASK_RESTART_SECONDS`; it should keep its own progress (a stream
cursor) in the store, committed as it goes, since a successor starts it afresh — and tolerate a
predecessor still running for a few seconds (notifications/leader.py says when).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from integration.errors import StoreError
from notifications import jobs, stream, wiring
from notifications.jobs import DELIVER_POLL_SECONDS, JOBS, Deps
from notifications.leader import Leadership, identity
from storage import leader
from storage.leader import LeaderLock

log = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = jobs.MISFIRE_GRACE.total_seconds()
REPLAN_SECONDS = 60
LEADER_TASK_RESTART_SECONDS = 30.0
PERIODIC = tuple(name for name in JOBS if name != "deliver")

LeaderTask = Callable[[], Coroutine[Any, Any, None]]


class Scheduler:
    def __init__(
        self,
        deps: Deps,
        *,
        lock: LeaderLock | None = None,
        leader_tasks: dict[str, LeaderTask] | None = None,
    ) -> None:
        self.deps = deps
        self.aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        )
        self.leadership = Leadership(
            lock or leader.for_store(deps.store, identity()),
            deps.store,
            deps.clock,
            gained=self._lead,
            lost=self._follow,
            metrics=deps.metrics,
        )
        self._leader_tasks: dict[str, LeaderTask] = dict(leader_tasks or {})
        self._periodic_names = PERIODIC
        if deps.settings.source == "lookout":  # the event stream replaces the every-minute poll
            self._periodic_names = tuple(name for name in PERIODIC if name != "source-sync")
            self._leader_tasks.setdefault("lookout-stream", partial(stream.follow, deps))
        self._running_leader_tasks: dict[str, asyncio.Task[None]] = {}
        self._deliver_task: asyncio.Task[None] | None = None
        self._leadership_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._heartbeat_minutes = 0

    @property
    def state(self) -> str:
        """`running`, `off`, `deliverer stopped` (its loop ended: nothing is being sent) or `leader
        election stopped` (its loop ended: this worker will never lead)."""
        if not self.aps.running:
            return "off"
        if self._deliver_task is not None and self._deliver_task.done():
            return "deliverer stopped"
        if self._leadership_task is not None and self._leadership_task.done():
            return "leader election stopped"
        return "running"

    @property
    def leading(self) -> bool:
        """Whether the periodic jobs run in this process."""
        return self.leadership.leading

    def add_leader_task(self, name: str, factory: LeaderTask) -> None:
        """Run `factory()` while this worker leads (see the module docstring). Before `start()`."""
        if self._leadership_task is not None:
            raise RuntimeError("leader-only tasks are added before the scheduler starts")
        self._leader_tasks[name] = factory

    def start(self) -> None:
        self.aps.add_job(self._replan, "interval", seconds=REPLAN_SECONDS, id="replan", name="replan")
        self.aps.start()
        self._deliver_task = asyncio.create_task(self._deliver_forever(), name="deliver")
        self._leadership_task = asyncio.create_task(self.leadership.run(), name="leadership")
        leading = [*self._periodic_names, *self._leader_tasks]
        log.info("scheduler started: deliver here; %s while this worker leads", ", ".join(leading))

    def next_runs(self) -> dict[str, datetime | None]:
        """When each job runs next (`jobs list`, `/healthz`); None for periodic jobs while not leading."""
        runs: dict[str, datetime | None] = {}
        for name in JOBS:
            job = self.aps.get_job(name)
            runs[name] = job.next_run_time if job else None
        return runs

    async def stop(self) -> None:
        self._stopping = True  # a pass that swallowed the cancellation (jobs.run) ends the loop here
        if self.aps.running:  # (AsyncIOScheduler shuts down on the loop's next turn: the awaits below)
            self.aps.shutdown(wait=False)
        for task in (self._leadership_task, self._deliver_task):  # stepping down removes the jobs
            if task is not None:
                await _cancelled(task)

    async def _lead(self) -> None:
        """Plan every periodic job from its last run (by any process) and start the leader-only tasks.
        A StoreError here makes the leadership step down and try again later."""
        minutes = await asyncio.to_thread(jobs.heartbeat_minutes, self.deps.store)
        runs = await asyncio.to_thread(jobs.last_runs, self.deps.store)
        self._heartbeat_minutes = minutes
        now = datetime.now(UTC)  # APScheduler's own clock
        for name in self._periodic_names:
            last = runs.get(name)
            first = jobs.first_run(
                name, self.deps.settings, minutes, last.last_started_at if last else None, now
            )
            trigger = jobs.trigger(name, self.deps.settings, minutes, start=first)
            # (APScheduler reads `next_run_time=None` as "paused": leave it out instead.)
            when = {"next_run_time": first} if first is not None else {}
            self.aps.add_job(
                self._periodic, trigger, args=(name,), id=name, name=name, replace_existing=True, **when
            )
        for name, factory in self._leader_tasks.items():
            self._running_leader_tasks[name] = asyncio.create_task(
                self._keep_running(name, factory), name=f"leader:{name}"
            )

    async def _follow(self) -> None:
        """Not the leader (any more): no periodic job and no leader-only task runs here."""
        for name in self._periodic_names:
            if self.aps.get_job(name) is not None:
                self.aps.remove_job(name)
        running, self._running_leader_tasks = self._running_leader_tasks, {}
        await _cancelled(*running.values())

    async def _periodic(self, name: str) -> None:
        every = jobs.period(name, self._heartbeat_minutes) or jobs.digest_period(
            self.deps.settings, self.deps.clock.now()
        )
        with _quiet_when_stopped(name):
            await jobs.run_in_period(self.deps, name, every)

    async def _keep_running(self, name: str, factory: LeaderTask) -> None:
        while True:
            try:
                await factory()
                log.warning(
                    "leader-only task %s ended; it starts again in %g s", name, LEADER_TASK_RESTART_SECONDS
                )
            except Exception:
                log.exception(
                    "leader-only task %s failed; it starts again in %g s", name, LEADER_TASK_RESTART_SECONDS
                )
            await asyncio.sleep(LEADER_TASK_RESTART_SECONDS)

    async def _deliver_forever(self) -> None:
        doorbell = self.deps.doorbell
        while not self._stopping:
            rang = doorbell.is_set()
            doorbell.clear()
            try:
                if rang or await self._anything_due():
                    await jobs.run(self.deps, "deliver")
            except Exception:  # the loop must outlive anything one pass does (jobs.run catches most)
                log.exception("the deliverer's pass failed; it goes on")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(doorbell.wait(), DELIVER_POLL_SECONDS)

    async def _anything_due(self) -> bool:
        try:
            due = await asyncio.to_thread(wiring.next_due, self.deps.store, self.deps.settings)
        except StoreError as error:
            log.warning("outbox not read: %s", error)
            return False
        return due is not None and due <= self.deps.clock.now()

    async def _replan(self) -> None:
        """The heartbeat follows its setting, changed from any process."""
        with _quiet_when_stopped("replan"):
            await self._replan_heartbeat()

    async def _replan_heartbeat(self) -> None:
        try:
            minutes = await asyncio.to_thread(jobs.heartbeat_minutes, self.deps.store)
        except StoreError as error:
            log.warning("heartbeat schedule not checked: %s", error)
            return
        if minutes != self._heartbeat_minutes and self.aps.get_job("heartbeat") is not None:
            self._heartbeat_minutes = minutes
            self.aps.reschedule_job(
                "heartbeat", trigger=jobs.trigger("heartbeat", self.deps.settings, minutes)
            )
            log.info("heartbeat re-planned: every %d minutes", minutes)


@contextlib.contextmanager
def _quiet_when_stopped(name: str) -> Iterator[None]:
    """APScheduler cancels the jobs still running when it shuts down, and logs each cancellation as
    an error with a traceback. A job cut short by the stop says so in one line instead (`jobs.run`
    does the same for the job's own work; this covers its claim and its record in the store)."""
    try:
        yield
    except asyncio.CancelledError:
        log.info("%s interrupted: mesbot is stopping", name)


async def _cancelled(*tasks: "asyncio.Task[None]") -> None:
    """Cancel `tasks` and wait until they have ended. Not `with suppress(CancelledError): await task`:
    that also swallows a cancellation of the task doing the waiting — `_follow` runs inside the
    leadership loop, so `stop()` cancelling that loop mid-step-down would leave it running, and
    `stop()` waiting for it forever."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
