"""Building the notifier from the settings: channels, deliverer, job dependencies, and the job table
that `mesbot jobs list` prints."""

from datetime import UTC, datetime, timedelta

from integration.alerts import AlertPolicy
from integration.clock import Clock
from integration.config import Settings
from notifications import jobs, leader
from notifications.delivery import Channel, Deliverer
from notifications.jobs import JOBS, Deps
from storage import fleet, outbox
from storage.engine import Store


def policy(settings: Settings) -> AlertPolicy:
    return AlertPolicy(
        storm_threshold=settings.storm_threshold,
        storm_window=timedelta(minutes=settings.storm_window_minutes),
    )


def channels(settings: Settings, store: Store, clock: Clock) -> dict[str, Channel]:
    """E-mail always (an SMTP relay, or `.eml` files in ./var/mail/); Slack when a bot token is set."""
    from notifications.channels import email_channel

    built: dict[str, Channel] = {"email": email_channel(settings, store, clock)}
    if settings.slack_bot_token is not None:
        from notifications.channels import slack_channel

        built["slack"] = slack_channel(settings, store, clock)
    return built


def next_due(store: Store, settings: Settings) -> datetime | None:
    with store.read() as session:
        return outbox.next_due(session, timedelta(seconds=settings.outbox_lease_seconds))


def deps(settings: Settings, store: Store, clock: Clock) -> Deps:
    jobs.digest_trigger(settings.digest_cron)  # a bad MESBOT_DIGEST_CRON is refused before anything runs
    lease = timedelta(seconds=settings.outbox_lease_seconds)
    deliverer = Deliverer(store, channels(settings, store, clock), clock, lease=lease)
    return Deps(store=store, settings=settings, clock=clock, deliverer=deliverer, policy=policy(settings))


def job_table(store: Store, settings: Settings, now: datetime) -> list[str]:
    """`jobs list`: name, schedule, next run (from the last run, or now), last run and outcome."""
    runs = jobs.last_runs(store)
    minutes = jobs.heartbeat_minutes(store)
    rows = [("job", "schedule", "next run (UTC)", "last run (UTC)", "outcome")]
    for name, job in JOBS.items():
        trigger = jobs.trigger(name, settings, minutes)
        last = runs.get(name)
        previous = last.last_started_at if last else None
        if previous is None and name != "error-digest":
            upcoming: datetime | None = now  # never run: the scheduler runs it as soon as it starts
        else:
            upcoming = trigger.get_next_fire_time(previous, now)
        if upcoming is not None:
            upcoming = max(upcoming.astimezone(UTC), now)  # a zoned cron's time, in UTC; overdue: now
        schedule = job.describe if name != "heartbeat" else f"every {minutes} minutes"
        if name == "error-digest":
            schedule = f"cron `{settings.digest_cron}`"
        outcome = "never run"
        if last is not None and last.last_outcome is not None:
            outcome = f"{last.last_outcome}: {last.last_detail or ''}".rstrip(": ")
        rows.append((name, schedule, _when(upcoming), _when(previous), outcome))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4] for row in rows
    ]


def leader_line(store: Store, now: datetime) -> str:
    """`jobs list`'s last line: which worker runs the periodic jobs (the one that leads)."""
    with store.read() as session:
        return leader.describe(fleet.leader(session), now)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else "—"
