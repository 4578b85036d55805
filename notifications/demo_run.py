"""`mesbot demo run`: the demo tenant N simulated hours forward, with every job as `serve` runs it, on
an accelerated clock.

The jobs fire at the times their schedules give (the same triggers as the scheduler), in time order;
after each one the deliverer runs at the same simulated instant, as the doorbell makes it do in
`serve`. Mail goes to the configured channel (`.eml` files in ./var/mail/ when there is no SMTP host).
The demo tenant's clock ends N hours ahead of where it started: `demo seed` starts over.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import col, func, select

from integration.clock import FixedClock
from integration.config import Settings
from integration.errors import InvalidInput
from notifications import jobs, wiring
from storage.engine import Store
from storage.models import ComplianceFlip, ConnectorError, OutboxMessage, Threat
from storage.states import OutboxState

MAX_HOURS = 24 * 14


@dataclass
class DemoSummary:
    start: datetime
    end: datetime
    job_runs: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    threats_opened: int = 0
    flips: int = 0
    errors: list[str] = field(default_factory=list)
    sent: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, kind)
    not_sent: Counter[tuple[str, str]] = field(default_factory=Counter)  # (state, why)
    mail_folder: str | None = None


def start_time(store: Store) -> datetime:
    """Where the simulated tenant stands (its cursor, else when it was seeded): a run starts there, so
    the same seed gives the same day whenever it is run."""
    from integration.demo import simulator

    with store.read() as session:
        return simulator.position(session)


async def run(settings: Settings, store: Store, hours: int) -> DemoSummary:
    if settings.source != "demo":
        raise InvalidInput(
            "`demo run` drives the built-in demo tenant: set MESBOT_SOURCE=demo (or unset it)."
        )
    if not 1 <= hours <= MAX_HOURS:
        raise InvalidInput(f"--hours must be from 1 to {MAX_HOURS}; got {hours}.")
    start = start_time(store)
    end = start + timedelta(hours=hours)
    clock = FixedClock(start)
    deps = wiring.deps(settings, store, clock)
    summary = DemoSummary(start=start, end=end)
    minutes = jobs.heartbeat_minutes(store)
    plan = {
        name: jobs.trigger(name, settings, minutes, start=start) for name in jobs.JOBS if name != "deliver"
    }
    upcoming = {name: trigger.get_next_fire_time(None, start) for name, trigger in plan.items()}
    while True:
        name, at = min(((n, t) for n, t in upcoming.items() if t is not None), key=lambda item: item[1])
        if at > end:
            break
        clock.at = at
        outcome = await jobs.run(deps, name)
        summary.job_runs[name] += 1
        if not outcome.ok:
            summary.failures.append(f"{name} at {at:%H:%M}: {outcome.detail}")
        if deps.doorbell.is_set():  # as in `serve`: the deliverer runs when something was queued
            deps.doorbell.clear()
            await jobs.run(deps, "deliver")
        upcoming[name] = plan[name].get_next_fire_time(at, at + timedelta(microseconds=1))
    clock.at = end
    await jobs.run(deps, "deliver")
    _count(store, summary)
    if settings.smtp_host is None:
        summary.mail_folder = "./var/mail/"
    return summary


def _count(store: Store, summary: DemoSummary) -> None:
    start, end = summary.start, summary.end
    with store.read() as session:
        summary.threats_opened = session.exec(
            select(func.count()).where(col(Threat.detected_at) > start, col(Threat.detected_at) <= end)
        ).one()
        summary.flips = session.exec(
            select(func.count()).where(col(ComplianceFlip.at) > start, col(ComplianceFlip.at) <= end)
        ).one()
        summary.errors = list(
            session.exec(select(ConnectorError.message).where(col(ConnectorError.last_seen) > start)).all()
        )
        rows = session.exec(
            select(OutboxMessage).where(
                col(OutboxMessage.created_at) >= start, col(OutboxMessage.created_at) <= end
            )
        ).all()
    for row in rows:
        if row.state == OutboxState.SENT:
            summary.sent[(row.channel, str(row.payload.get("kind")))] += 1
        else:
            summary.not_sent[(row.state.value, row.last_error or "not due yet")] += 1


def report(summary: DemoSummary) -> list[str]:
    """The summary as lines for the terminal."""
    hours = (summary.end - summary.start) / timedelta(hours=1)
    lines = [
        f"Simulated {hours:g} h of the demo tenant: "
        f"{summary.start:%Y-%m-%d %H:%M} → {summary.end:%Y-%m-%d %H:%M} UTC",
        "Jobs run: " + ", ".join(f"{name} ×{n}" for name, n in summary.job_runs.items()),
        f"Threats opened: {summary.threats_opened}; compliance flips: {summary.flips}",
    ]
    kinds = Counter[str]()
    for (channel, kind), n in sorted(summary.sent.items()):
        kinds[channel] += n
        lines.append(f"Sent by {channel}: {n} {kind}")
    if not summary.sent:
        lines.append(
            "Sent: nothing (turn alerts on with `notify threat-high on`; the demo admin has them on)"
        )
    for (state, why), n in sorted(summary.not_sent.items()):
        lines.append(f"Not sent: {n} {state}: {why}")
    for message in summary.errors[:5]:
        lines.append(f"Connector error: {message}")
    for failure in summary.failures[:5]:
        lines.append(f"Job failed: {failure}")
    if summary.mail_folder and kinds.get("email"):
        lines.append(f"Mail is in {summary.mail_folder} (no MESBOT_SMTP_HOST set): open the .eml files")
    return lines
