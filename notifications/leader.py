"""Leadership: whether this worker runs the periodic jobs (DESIGN §2 "Scale-out").

A worker that does not lead tries the store's leader lock (`storage.leader`) every `RETRY_SECONDS`;
the leader checks every `CHECK_SECONDS` that its lock connection is alive and the lock still its own,
and steps down at once when it is not (or when a check takes longer than `CHECK_TIMEOUT_SECONDS`: a
hung network). A leader that dies (SIGKILL) or loses its connection is replaced within about
`RETRY_SECONDS` — or, when the network to it is cut, once the server drops its session (~20 s).

A worker that lost its lead waits two retry periods before trying again, so a healthy worker takes
over rather than the one whose connection just failed. Two workers can both believe they lead for up
to `CHECK_SECONDS` when the server ends the old leader's session itself (pg_terminate_backend, an
idle-session kill): the server frees the lock at once and the old leader only learns of it at its
next check. Periodic jobs are safe in that moment (each run claims its period in the store); a
leader-only task must be too (commit its progress with a compare-and-set, e.g. on a stream cursor).

Gaining and losing call the owner's `gained` / `lost` (the scheduler plans or removes its periodic
jobs and starts or cancels its leader-only tasks). The leader's identity (host:pid, since when, last
confirmed) is kept in the store for `/healthz` and `jobs list` in any process, and each change of
leader is counted fleet-wide (`storage.fleet`).
"""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime

from integration import tenant
from integration.clock import Clock
from integration.errors import StoreError
from notifications.metrics import NotifierMetrics
from storage import fleet
from storage.engine import Store
from storage.leader import LeaderLock

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0  # a non-leader tries the lock this often (take-over after a crash: about this)
CHECK_SECONDS = 3.0  # the leader confirms its lock this often
CHECK_TIMEOUT_SECONDS = 8.0  # a confirmation that takes longer means the connection is gone
SEEN_SECONDS = 15.0  # the leader refreshes its record's `seen` this often (a stale one: no leader)


def identity() -> str:
    """This process, as operators find it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Leadership:
    def __init__(
        self,
        lock: LeaderLock,
        store: Store,
        clock: Clock,
        *,
        gained: Callable[[], Awaitable[None]],
        lost: Callable[[], Awaitable[None]],
        metrics: NotifierMetrics | None = None,
        process: str | None = None,
    ) -> None:
        self.lock = lock
        self.store = store
        self.clock = clock
        self.gained = gained
        self.lost = lost
        self.metrics = metrics
        self.process = process or identity()
        self.since: datetime | None = None  # set while this process leads
        self._seen = clock.now()  # when the record was last refreshed

    @property
    def leading(self) -> bool:
        return self.since is not None

    async def run(self) -> None:
        """Lead whenever the lock can be had, until cancelled (then step down and give the lock up)."""
        try:
            while True:
                if not self.leading:
                    if await asyncio.to_thread(self.lock.try_acquire):
                        await self._gain()
                        continue
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                await asyncio.sleep(CHECK_SECONDS)
                if not await self._still_holds():
                    await self._step_down("the leader lock's connection was lost")
                    # Let the workers that have been trying all along take over, rather than the one
                    # whose connection just failed.
                    await asyncio.sleep(2 * RETRY_SECONDS)
                elif (self.clock.now() - self._seen).total_seconds() >= SEEN_SECONDS:
                    await self._record()
        finally:
            if self.leading:
                with contextlib.suppress(Exception):  # stopping: the lock goes with the session anyway
                    await asyncio.shield(self._step_down("mesbot is stopping", quiet=True))
            await asyncio.to_thread(self.lock.release)

    async def _still_holds(self) -> bool:
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.lock.holds), CHECK_TIMEOUT_SECONDS)
        except TimeoutError:
            return False

    async def _gain(self) -> None:
        self.since = self._seen = self.clock.now()
        log.info("this worker (%s) now leads: periodic jobs run here", self.process)
        if self.metrics is not None:
            self.metrics.leadership(True)
        await self._record(change=True)
        try:
            await self.gained()
        except Exception as error:  # the jobs could not be planned: let this or another try again
            if not isinstance(error, StoreError):
                log.exception("taking the lead failed")
            await self._step_down(f"the periodic jobs could not be planned: {error}")
            await asyncio.sleep(2 * RETRY_SECONDS)

    async def _step_down(self, why: str, *, quiet: bool = False) -> None:
        self.since = None
        (log.info if quiet else log.warning)("this worker (%s) no longer leads: %s", self.process, why)
        # Close the session (a network goodbye: off the loop): whatever state the lock was in, it is
        # not ours now.
        await asyncio.to_thread(self.lock.release)
        if self.metrics is not None:
            self.metrics.leadership(False)
        try:
            await self.lost()
        finally:
            with contextlib.suppress(StoreError):
                await asyncio.to_thread(self._forget)

    async def _record(self, *, change: bool = False) -> None:
        if self.since is None:
            return
        now = self.clock.now()
        record = fleet.LeaderRecord(process=self.process, since=self.since, seen=now)
        try:
            await asyncio.to_thread(self._write_record, record, change)
            self._seen = now
        except StoreError as error:  # the lock is what counts; the record catches up next time
            log.warning("the leader record was not written: %s", error)

    def _write_record(self, record: fleet.LeaderRecord, change: bool) -> None:
        with self.store.write() as session:
            fleet.record_leader(session, record)
            if change:
                fleet.bump(session, fleet.LEADERSHIP_CHANGES)

    def _forget(self) -> None:
        with self.store.write() as session:
            fleet.forget_leader(session, self.process)


STALE_SECONDS = 3 * SEEN_SECONDS  # a record not confirmed for this long names no living leader


def current(record: fleet.LeaderRecord | None, now: datetime) -> bool:
    """Whether the recorded leader confirmed its lead recently enough to be taken as alive."""
    return record is not None and (now - record.seen).total_seconds() < STALE_SECONDS


def leader_state(store: Store, now: datetime, *, here: bool) -> dict[str, object]:
    """`/healthz`'s `leader`: whether this process leads, and which process does (from the store)."""
    with store.read() as session:
        record = fleet.leader(session)
    return {
        "this_process": here,
        "process": record.process if record else None,
        "since": tenant.stamp(record.since) if record else None,
        "seen": tenant.stamp(record.seen) if record else None,
        "current": current(record, now),
    }


def describe(record: fleet.LeaderRecord | None, now: datetime) -> str:
    """One line for `jobs list`."""
    if record is None:
        return "leader: none — no worker leads (is a `mesbot serve` worker running and reaching the store?)"
    seen = int((now - record.seen).total_seconds())
    line = f"leader: {record.process}, since {record.since:%Y-%m-%d %H:%M:%S} UTC (confirmed {seen} s ago)"
    if not current(record, now):
        line += f" — not confirmed for over {STALE_SECONDS:g} s: it may have died, and no worker leads"
    return line
