"""The scheduled jobs (DESIGN §4 `jobs`): plain `async def job(deps, now) -> summary` functions in one
registry, used by the scheduler (`serve`), by `mesbot jobs run NAME` and by `mesbot demo run`.

Each job's transaction holds only store work; sending happens in `deliver`, outside any transaction.
A job that queued outbox rows rings the deliverer's doorbell so alerts leave at once rather than at
the next poll. Every run is recorded in `JobRun` (last run, outcome, last success) for `jobs list` and
`/healthz`, whichever process ran it.
"""

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlmodel import select

from integration import connector_work, credentials, digest, sync, tenant
from integration.alerts import AlertPolicy
from integration.clock import Clock
from integration.config import Settings
from integration.errors import MesbotError
from integration.sources.port import ThreatSource
from integration.text import neutralise
from notifications.delivery import Deliverer
from notifications.metrics import NotifierMetrics
from storage import job_runs
from storage.engine import Store
from storage.models import JobRun

log = logging.getLogger(__name__)
_T = TypeVar("_T")

DELIVER_POLL_SECONDS = 1.0  # the deliverer wakes on commit in this process; others' rows within this


@dataclass
class Deps:
    store: Store
    settings: Settings
    clock: Clock
    deliverer: Deliverer
    policy: AlertPolicy
    metrics: NotifierMetrics | None = None
    doorbell: asyncio.Event = field(default_factory=asyncio.Event)
    source: ThreatSource | None = None  # the process's Lookout client while `serve` follows the stream

    def ring(self) -> None:
        """Wake the deliverer: rows were committed."""
        self.doorbell.set()


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str


async def heartbeat(deps: Deps, now: datetime) -> str:
    settings = deps.settings
    app_key = None
    if settings.source == "lookout" and settings.lookout_app_key is not None:
        created = credentials.created_date(settings.lookout_app_key_created)
        app_key = connector_work.AppKey(settings.lookout_app_key.get_secret_value(), created)
    return await _in_transaction(
        deps, lambda session: connector_work.heartbeat(session, now, app_key=app_key)
    )


CATCH_UP_CHUNK = timedelta(hours=1)
CATCH_UP_PAUSE_SECONDS = 0.1


async def source_sync(deps: Deps, now: datetime) -> str:
    """Apply the source's events up to `now`, an hour of them per transaction: a worker that was
    stopped for days catches up without holding the store's write lock for long. Each chunk is
    applied at its own time, so alerts for threats older than their TTL expire into the digest
    instead of arriving days late."""
    if deps.settings.source == "lookout":
        return await lookout_catch_up(deps)
    from integration.demo import simulator  # the demo's own source; the Lookout client replaces it

    def chunk(session: Any) -> tuple[sync.Applied, int, datetime]:
        at = simulator.position(session)
        far_behind = now - at > simulator.MAX_STEPS * simulator.STEP  # the simulator skips ahead
        until = now if far_behind else min(now, at + CATCH_UP_CHUNK)
        events, cursor = simulator.advance(session, until=until)
        applied = sync.apply(session, events, now=until, policy=deps.policy, cursor=cursor)
        return applied, len(events), until

    events = opened = closed = changed = queued = 0
    while True:
        applied, count, until = await asyncio.to_thread(_write, deps.store, chunk)
        events += count
        opened += len(applied.threats_opened)
        closed += applied.threats_closed
        changed += applied.devices_changed
        queued += applied.alerts
        if applied.alerts:  # it runs every minute: wake the deliverer only when there is something to send
            deps.ring()
        if until >= now:
            break
        # Let other writers in between chunks (the deliverer, a Slack change): SQLite's busy handler
        # polls, and a catch-up that begins its next transaction at once could starve them for seconds.
        await asyncio.sleep(CATCH_UP_PAUSE_SECONDS)
    return (
        f"{events} event(s): {opened} threat(s) opened, {closed} closed, "
        f"{changed} device(s) changed, {queued} alert(s) queued"
    )


LOOKOUT_CATCH_UP_SECONDS = 300.0


async def lookout_catch_up(deps: Deps) -> str:
    """`jobs run source-sync` in Lookout mode: apply the stream from the committed cursor until it is
    idle (or for at most five minutes). `serve` follows the stream instead (notifications/stream.py)."""
    from integration.sources import lookout
    from integration.sources.follow import StreamFollower

    source = deps.source or lookout.from_settings(deps.settings)
    try:
        follower = StreamFollower(
            deps.store, source, clock=deps.clock, policy=deps.policy, committed=lambda _applied: deps.ring()
        )
        done = await follower.follow(until_idle=True, max_seconds=LOOKOUT_CATCH_UP_SECONDS)
    finally:
        if deps.source is None:
            await source.close()
    return done.line()


def _write(store: Store, work: Callable[[Any], _T]) -> _T:
    with store.write() as session:
        return work(session)


async def enrollment_scan(deps: Deps, now: datetime) -> str:
    """In Lookout mode the directory is refreshed from Microsoft Graph first (outside any transaction);
    the rule then runs on whatever directory is stored, and a Graph failure (already a connector error)
    makes the run's outcome failed."""
    refreshed = None
    if deps.settings.source == "lookout":
        from integration.sources import directory_sync

        refreshed = await directory_sync.refresh_from_settings(deps.store, deps.settings, now)
        deps.ring()  # a new connector error is announced at once
    summary = await _in_transaction(
        deps, lambda session: connector_work.enrollment_scan(session, now, deps.policy)
    )
    if refreshed is None:
        return summary
    if not refreshed.ok:
        raise MesbotError(f"{summary}; Graph: {refreshed.summary()}")
    return f"Graph: {refreshed.summary()}; {summary}"


async def disconnected_sweep(deps: Deps, now: datetime) -> str:
    return await _in_transaction(deps, lambda session: connector_work.disconnected_sweep(session, now))


async def deliver(deps: Deps, now: datetime) -> str:
    done = await deps.deliverer.deliver_once()
    if deps.metrics is not None:
        deps.metrics.delivered(done)
    parts = [f"{n} {outcome} by {channel}" for (channel, outcome), n in sorted(done.outcomes.items())]
    parts += [f"{done.withdrawn} withdrawn"] if done.withdrawn else []
    parts += [f"{done.expired} expired"] if done.expired else []
    return ", ".join(parts) or "nothing due"


async def error_digest(deps: Deps, now: datetime) -> str:
    zone = digest_trigger(deps.settings.digest_cron).timezone
    period = now.astimezone(zone).strftime("%Y-%m-%d %H:%M")  # the slot, as the schedule reads it
    return await _in_transaction(
        deps, lambda session: digest.queue(session, now, deps.settings.oncall_channel, period=period)
    )


async def _in_transaction(deps: Deps, work: Callable[[Any], str], *, ring: bool = True) -> str:
    summary = await asyncio.to_thread(_write, deps.store, work)
    if ring:  # it may have queued messages (a new connector error is announced at once)
        deps.ring()
    return summary


JobFunction = Callable[[Deps, datetime], Awaitable[str]]


@dataclass(frozen=True)
class Job:
    name: str
    run: JobFunction
    describe: str  # how often, in words (`jobs list`)


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("heartbeat", heartbeat, "every heartbeat-minutes (connector setting)"),
        Job("source-sync", source_sync, "every minute (Lookout: the stream, continuously)"),
        Job("enrollment-scan", enrollment_scan, "hourly"),
        Job("disconnected-sweep", disconnected_sweep, "hourly"),
        Job("deliver", deliver, f"on commit, and every {DELIVER_POLL_SECONDS:g} s"),
        Job("error-digest", error_digest, "MESBOT_DIGEST_CRON"),
    )
}


def trigger(
    name: str, settings: Settings, heartbeat_minutes: int, *, start: datetime | None = None
) -> BaseTrigger:
    """When a job runs (UTC), counting intervals from `start` (default: the wall clock now, which is
    APScheduler's own default; `demo run` counts from the simulated tenant's time). The deliverer also
    runs whenever rows are committed in this process."""
    every = period(name, heartbeat_minutes) or (
        timedelta(seconds=DELIVER_POLL_SECONDS) if name == "deliver" else None
    )
    if every is not None:
        first = (start or datetime.now(UTC)) + every
        return IntervalTrigger(seconds=every.total_seconds(), start_date=first, timezone="UTC")
    if name == "error-digest":
        return digest_trigger(settings.digest_cron)
    raise KeyError(name)


def period(name: str, heartbeat_minutes: int) -> timedelta | None:
    """An interval job's period; None for the digest (a crontab) and the deliverer (not periodic)."""
    return {
        "heartbeat": timedelta(minutes=heartbeat_minutes),
        "source-sync": timedelta(minutes=1),
        "enrollment-scan": timedelta(hours=1),
        "disconnected-sweep": timedelta(hours=1),
    }.get(name)


def digest_period(settings: Settings, now: datetime) -> timedelta:
    """The digest's period as its crontab has it at a slot (`now`): the time to the next slot."""
    upcoming = digest_trigger(settings.digest_cron).get_next_fire_time(None, now + timedelta(seconds=1))
    return upcoming - now if upcoming is not None else timedelta(hours=1)


MISFIRE_GRACE = timedelta(minutes=5)  # a run this late still runs (the scheduler's misfire grace too)


def first_run(
    name: str, settings: Settings, heartbeat_minutes: int, last_started: datetime | None, now: datetime
) -> datetime | None:
    """When a leader that takes over (or starts) runs a periodic job first. An interval job runs a
    period after its last run by any process, or at once when that is past or it never ran (a
    stopped worker's gap is caught up, a missed heartbeat noticed at once). The digest runs at once
    only for a slot missed within the misfire grace (its leader died just then); otherwise None: it
    keeps to its crontab."""
    every = period(name, heartbeat_minutes)
    if every is not None:
        return now if last_started is None else max(now, last_started + every)
    if name != "error-digest" or last_started is None:
        return None
    slot = digest_trigger(settings.digest_cron).get_next_fire_time(None, now - MISFIRE_GRACE)
    return now if slot is not None and last_started < slot <= now else None


def digest_trigger(cron: str) -> CronTrigger:
    """`MESBOT_DIGEST_CRON`: five crontab fields, UTC, or with a zone after them (`0 8 * * * Europe/Oslo`)."""
    fields = cron.split()
    zone = fields.pop() if len(fields) == 6 else "UTC"
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
    except (ValueError, LookupError) as error:
        raise MesbotError(
            f"MESBOT_DIGEST_CRON `{neutralise(cron)}` is not a crontab schedule ({error}); "
            "e.g. `0 * * * *` (hourly) or `0 8 * * 1-5 Europe/Stockholm`."
        ) from None


def heartbeat_minutes(store: Store) -> int:
    with store.read() as session:
        return tenant.connector(session).heartbeat_minutes


async def run(deps: Deps, name: str) -> Outcome:
    """Run one job now, recording the run; a failure is an outcome (logged with a reference), not
    an exception."""
    job = JOBS[name]
    started = deps.clock.now()
    try:
        detail, ok = await job.run(deps, started), True
        log.info("%s: %s (%.2f s)", name, detail, (deps.clock.now() - started).total_seconds())
    except asyncio.CancelledError:
        # The process is stopping (SIGTERM): each transaction commits whole or not at all, and the next
        # run picks up from the committed state. A quiet line, not a traceback from the scheduler.
        log.info("job %s interrupted: mesbot is stopping", name)
        return Outcome(False, "interrupted: mesbot is stopping")
    except MesbotError as error:
        detail, ok = str(error), False
        log.warning("job %s failed: %s", name, detail)
    except Exception as error:
        reference = secrets.token_hex(4)
        log.exception("job %s failed (reference %s)", name, reference)
        detail, ok = f"failed unexpectedly: {type(error).__name__} (reference {reference} in the log)", False
    finished = deps.clock.now()
    if deps.metrics is not None:
        deps.metrics.job(name, ok)
    try:
        await asyncio.to_thread(_record, deps.store, name, started, finished, ok, detail)
    except MesbotError as error:  # the run happened; only its record is lost
        log.warning("job %s ran but its record was not kept: %s", name, error)
    return Outcome(ok, detail)


async def run_in_period(deps: Deps, name: str, every: timedelta) -> Outcome | None:
    """Run a periodic job as the scheduler does: only when no run (by any process) started within
    the last half period — so a leader that has just taken over, or two that overlap for the moment
    one needs to notice it lost the lock, never run it twice in one period, while a run slightly
    early on its grid (timer jitter, clocks a little apart between hosts) still goes ahead.
    None when skipped."""
    now = deps.clock.now()
    try:
        mine = await asyncio.to_thread(_claim_run, deps.store, name, now, now - every / 2)
    except MesbotError as error:
        log.warning("job %s not started: %s", name, error)
        return Outcome(False, f"not started: {error}")
    if not mine:
        log.info("job %s skipped: another run started less than half a period ago", name)
        return None
    return await run(deps, name)


def _claim_run(store: Store, name: str, now: datetime, cutoff: datetime) -> bool:
    with store.write() as session:
        return job_runs.claim_run(session, name, now, unless_started_after=cutoff)


def _record(store: Store, name: str, started: datetime, at: datetime, ok: bool, detail: str) -> None:
    """One write per run, after it: `source-sync` runs every minute."""
    with store.write() as session:
        row = session.get(JobRun, name) or JobRun(name=name)
        row.runs += 1
        row.last_started_at = started
        row.last_finished_at = at
        row.last_outcome = "ok" if ok else "failed"
        row.last_detail = detail[:500]
        if ok:
            row.last_success_at = at
        session.add(row)


def last_runs(store: Store) -> dict[str, JobRun]:
    with store.read() as session:
        return {row.name: row for row in session.exec(select(JobRun)).all()}
