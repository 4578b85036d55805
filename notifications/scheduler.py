"""APScheduler wiring only (RELIABILITY.md): an in-memory job store (durable state lives in our own
tables), `coalesce`, `max_instances=1` and a misfire grace, so a late or piled-up job runs once.

The deliverer is not an interval job but a loop woken by the doorbell (rows committed in this process:
the source stream, the jobs, Slack commands) and, for rows other processes commit, by a one-query look
at the outbox every `DELIVER_POLL_SECONDS`: an alert leaves within moments of its commit.
"""

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from integration.errors import StoreError
from notifications import jobs, wiring
from notifications.jobs import DELIVER_POLL_SECONDS, JOBS, Deps
from notifications.stream import SourceStream

log = logging.getLogger(__name__)

MISFIRE_GRACE_SECONDS = 300
REPLAN_SECONDS = 60


class Scheduler:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.aps = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        )
        self._deliver_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._heartbeat_minutes = 0
        self._stream: SourceStream | None = None

    @property
    def state(self) -> str:
        """`running`, `off`, or `deliverer stopped` (its loop ended: nothing is being sent)."""
        if not self.aps.running:
            return "off"
        if self._deliver_task is not None and self._deliver_task.done():
            return "deliverer stopped"
        return "running"

    def start(self) -> None:
        self._heartbeat_minutes = jobs.heartbeat_minutes(self.deps.store)
        stream = self.deps.settings.source == "lookout"  # the stream replaces the every-minute poll
        for name in JOBS:
            if name == "deliver" or (stream and name == "source-sync"):
                continue
            trigger = jobs.trigger(name, self.deps.settings, self._heartbeat_minutes)
            # The connector's jobs run once at start (catching up on a stopped worker's gap, and a
            # missed heartbeat is noticed at once); the digest keeps to its crontab.
            # (APScheduler reads `next_run_time=None` as "paused": leave it out instead.)
            first = {"next_run_time": datetime.now(UTC)} if name != "error-digest" else {}
            self.aps.add_job(jobs.run, trigger, args=(self.deps, name), id=name, name=name, **first)
        self.aps.add_job(self._replan, "interval", seconds=REPLAN_SECONDS, id="replan", name="replan")
        self.aps.start()
        self._deliver_task = asyncio.create_task(self._deliver_forever(), name="deliver")
        if stream:
            self._stream = SourceStream(self.deps)
            self._stream.start()
        log.info("scheduler started: %s", ", ".join(JOBS))

    def next_runs(self) -> dict[str, datetime | None]:
        """When each job runs next (`jobs list`, `/healthz`)."""
        runs: dict[str, datetime | None] = {}
        for name in JOBS:
            job = self.aps.get_job(name)
            runs[name] = job.next_run_time if job else None
        return runs

    async def stop(self) -> None:
        self._stopping = True  # a pass that swallowed the cancellation (jobs.run) ends the loop here
        if self.aps.running:
            self.aps.shutdown(wait=False)
        if self._stream is not None:
            await self._stream.stop()
        if self._deliver_task is not None:
            self._deliver_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._deliver_task

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
        try:
            minutes = await asyncio.to_thread(jobs.heartbeat_minutes, self.deps.store)
        except StoreError as error:
            log.warning("heartbeat schedule not checked: %s", error)
            return
        if minutes != self._heartbeat_minutes:
            self._heartbeat_minutes = minutes
            self.aps.reschedule_job(
                "heartbeat", trigger=jobs.trigger("heartbeat", self.deps.settings, minutes)
            )
            log.info("heartbeat re-planned: every %d minutes", minutes)
