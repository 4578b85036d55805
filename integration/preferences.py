"""Each console user's notification opt-ins (off until turned on) and quiet hours."""

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from integration import audit
from integration.actions import Action
from storage.models import NotificationPreference, QuietHours

CATEGORIES = ("threat-high", "threat-medium", "threat-low", "connector-errors", "digest")
CHANNELS = ("email", "slack")


def preferences(session: Session, user_id: str) -> dict[str, dict[str, bool]]:
    table = {category: dict.fromkeys(CHANNELS, False) for category in CATEGORIES}
    rows = session.exec(select(NotificationPreference).where(NotificationPreference.user_id == user_id))
    for row in rows.all():
        if row.category in table and row.channel in CHANNELS:
            table[row.category][row.channel] = row.enabled
    return table


def quiet_hours(session: Session, user_id: str) -> str | None:
    """`22:00-07:00 Europe/Stockholm`: wall-clock times in the user's zone."""
    row = session.get(QuietHours, user_id)
    return f"{row.start}-{row.end} {row.zone}" if row else None


def snapshot(session: Session, user_id: str) -> dict[str, Any]:
    return {
        "preferences": preferences(session, user_id),
        "quiet_hours": quiet_hours(session, user_id),
    }


def set_preferences(
    session: Session,
    user_id: str,
    categories: tuple[str, ...],
    channels: tuple[str, ...],
    on: bool,
    *,
    actor: str,
    at: datetime,
) -> None:
    before = preferences(session, user_id)
    for category in categories:
        for channel in channels:
            session.merge(
                NotificationPreference(user_id=user_id, category=category, channel=channel, enabled=on)
            )
    session.flush()
    after = preferences(session, user_id)
    if after != before:
        audit.record(
            session,
            at=at,
            actor=actor,
            change=audit.Change(Action.NOTIFY, _diff(before, after), _diff(after, before)),
        )


def set_quiet_hours(
    session: Session,
    user_id: str,
    span: tuple[str, str] | None,
    *,
    actor: str,
    at: datetime,
    zone: str = "UTC",
) -> None:
    before = quiet_hours(session, user_id)
    row = session.get(QuietHours, user_id)
    if span is None:
        if row is not None:
            session.delete(row)
    else:
        session.merge(QuietHours(user_id=user_id, start=span[0], end=span[1], zone=zone))
    session.flush()
    after = quiet_hours(session, user_id)
    if after != before:
        audit.record(
            session,
            at=at,
            actor=actor,
            change=audit.Change(Action.NOTIFY_QUIET, {"quiet": before}, {"quiet": after}),
        )


def _diff(a: dict[str, dict[str, bool]], b: dict[str, dict[str, bool]]) -> dict[str, Any]:
    return {cat: chans for cat, chans in a.items() if chans != b[cat]}
