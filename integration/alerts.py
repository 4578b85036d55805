"""Who gets which alert, when (DESIGN §8): the outbox rows a newly OPEN threat causes.

A threat whose classification's *current* risk is at least low goes to every console user (full or
restricted access) opted in to `threat-<risk>`, once per channel they chose — key
`threat:<event>:<user>:<channel>`. Two rules change *how*, never *whether*:

- quiet hours (in the user's zone): a non-high alert is held in one catch-up message per user ×
  channel × quiet window, sent when the window ends; a high one breaks through;
- storm folding: past `storm_threshold` alerts of one classification to one user × channel within a
  fixed window, the rest are counted into one summary sent when the window ends.

Opt-in and access are looked at again when a row is sent (notifications/delivery.py).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select as sa_select  # sqlmodel's select types at most four columns
from sqlmodel import Session, col, select

from integration import tenant
from integration.catalogue import CATALOGUE
from integration.levels import RiskLevel
from integration.messages import CatchUp, StormSummary, TestAlert, ThreatAlert, ThreatFacts
from storage import outbox
from storage.models import (
    DirectoryUser,
    GroupMembership,
    NotificationPreference,
    QuietHours,
    Subscription,
)
from storage.outbox import NewMessage
from storage.states import Platform

ALERT_TTL = timedelta(hours=1)
# `notify test` sends its own rows and says how it went; the deliverer takes them only after this
TEST_HANDOVER = timedelta(minutes=5)  # an alert an outage kept back longer goes into the digest instead
MAX_FOLDED_ITEMS = 20  # a catch-up lists this many alerts and counts the rest
MAX_STORM_DEVICES = 10


@dataclass(frozen=True)
class AlertPolicy:
    storm_threshold: int = 20  # 0: never fold
    storm_window: timedelta = timedelta(minutes=10)


@dataclass(frozen=True)
class Recipient:
    user_id: str
    email: str
    channel: str  # email | slack
    quiet: tuple[str, str, str] | None  # start, end, zone


class OpenedThreat(Protocol):
    """What an alert needs of a threat: a stored `Threat`, or the source's report of a new one (which
    `sync.apply` inserts without building a row object)."""

    @property
    def id(self) -> str: ...
    @property
    def classification(self) -> str: ...
    @property
    def risk(self) -> RiskLevel: ...
    @property
    def app_name(self) -> str | None: ...
    @property
    def detected_at(self) -> datetime: ...


class AlertDevice(Protocol):
    """What an alert needs of a device: a `Device`, or just these columns of one."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def owner_email(self) -> str: ...
    @property
    def platform(self) -> Platform: ...


def facts(threat: OpenedThreat, device: AlertDevice, risk: RiskLevel) -> ThreatFacts:
    return {
        "threat_id": threat.id,
        "device_id": device.id,
        "device_name": device.name,
        "owner_email": device.owner_email,
        "platform": device.platform.value,
        "classification": threat.classification,
        "category": CATALOGUE[threat.classification].category if threat.classification in CATALOGUE else "",
        "risk": risk.value,
        "app_name": threat.app_name,
        "detected_at": tenant.stamp(threat.detected_at),
    }


def recipients(session: Session, category: str) -> list[Recipient]:
    """Console users (full or restricted) opted in to `category`, one entry per channel."""
    subscription = tenant.subscription(session)
    groups = [g for g in (subscription.full_access_group_id, subscription.restricted_access_group_id) if g]
    if not groups:
        return []
    console_users = select(GroupMembership.user_id).where(col(GroupMembership.group_id).in_(groups))
    query = (
        sa_select(
            col(DirectoryUser.id),
            col(DirectoryUser.email),
            col(NotificationPreference.channel),
            col(QuietHours.start),
            col(QuietHours.end),
            col(QuietHours.zone),
        )
        .join(NotificationPreference, col(NotificationPreference.user_id) == DirectoryUser.id)
        .outerjoin(QuietHours, col(QuietHours.user_id) == DirectoryUser.id)
        .where(
            col(NotificationPreference.category) == category,
            col(NotificationPreference.enabled).is_(True),
            col(DirectoryUser.id).in_(console_users),
        )
        .order_by(col(DirectoryUser.id), col(NotificationPreference.channel))
    )
    return [
        Recipient(uid, email, channel, (start, end, zone) if start else None)
        for uid, email, channel, start, end, zone in session.execute(query).all()
    ]


def may_receive(session: Session, user_id: str, category: str, channel: str) -> bool:
    """Still a console user opted in to this category on this channel (checked again at send time)."""
    subscription = session.get(Subscription, 1)
    if subscription is None:
        return False
    groups = [g for g in (subscription.full_access_group_id, subscription.restricted_access_group_id) if g]
    opted = session.get(NotificationPreference, (user_id, category, channel))
    if opted is None or not opted.enabled or not groups:
        return False
    member = select(GroupMembership.user_id).where(
        GroupMembership.user_id == user_id, col(GroupMembership.group_id).in_(groups)
    )
    return session.exec(member).first() is not None


def quiet_until(quiet: tuple[str, str, str] | None, now: datetime) -> datetime | None:
    """When the quiet window that `now` falls in ends (UTC), or None when `now` is not in one.
    Times are wall-clock times in the user's zone, so a window keeps its local hours across DST."""
    if quiet is None:
        return None
    start_text, end_text, zone_name = quiet
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = now.astimezone(zone)
    start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
    if start == end:
        return None
    clock = local.time().replace(tzinfo=None)
    overnight = start > end
    inside = (start <= clock or clock < end) if overnight else (start <= clock < end)
    if not inside:
        return None
    day = local.date()
    if overnight and clock >= start:
        day += timedelta(days=1)
    # The end's wall-clock time may happen twice (autumn) or not at all (spring): the first instant
    # of either reading that is still to come ends the window.
    ends = (datetime.combine(day, end, tzinfo=zone).replace(fold=fold) for fold in (0, 1))
    later = [e.astimezone(now.tzinfo) for e in ends if e.astimezone(now.tzinfo) > now]
    return min(later, default=None)


def enqueue_threats(
    session: Session,
    threats: list[tuple[str, OpenedThreat, AlertDevice]],
    now: datetime,
    policy: AlertPolicy,
) -> int:
    """Queue the alerts for threats that just became OPEN (`event` names the opening). Returns rows
    queued or folded."""
    levels = tenant.risk_levels(session)
    by_category: dict[str, list[Recipient]] = {}
    queued = 0
    for event, threat, device in threats:
        risk = levels.get(threat.classification, RiskLevel(threat.risk))
        if risk == RiskLevel.NONE:
            continue
        category = f"threat-{risk.value}"
        if category not in by_category:
            by_category[category] = recipients(session, category)
        alert = facts(threat, device, risk)
        for recipient in by_category[category]:
            queued += _queue_one(session, event, alert, recipient, category, now, policy)
    return queued


def _queue_one(
    session: Session,
    event: str,
    alert: ThreatFacts,
    to: Recipient,
    category: str,
    now: datetime,
    policy: AlertPolicy,
) -> int:
    held_until = quiet_until(to.quiet, now) if alert["risk"] != RiskLevel.HIGH else None
    if held_until is not None:
        return _hold(session, alert, to, category, now, held_until)
    fold_key = f"{to.user_id}:{to.channel}:{alert['classification']}"
    if policy.storm_threshold > 0:
        window_start = _window_start(now, policy.storm_window)
        if outbox.recent(session, fold_key, window_start) >= policy.storm_threshold:
            return _fold_into_storm(session, alert, to, category, now, window_start, policy.storm_window)
    message: ThreatAlert = {"kind": "threat", **alert}
    return outbox.enqueue(
        session,
        [
            NewMessage(
                key=f"threat:{event}:{to.user_id}:{to.channel}",
                recipient_id=to.user_id,
                channel=to.channel,
                category=category,
                payload=cast(dict[str, Any], message),
                available_at=now,
                expires_at=now + ALERT_TTL,
                fold_key=fold_key,
            )
        ],
        now,
    )


def _window_start(now: datetime, window: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=now.tzinfo)
    return epoch + ((now - epoch) // window) * window


def _hold(
    session: Session, alert: ThreatFacts, to: Recipient, category: str, now: datetime, until: datetime
) -> int:
    def add(payload: dict[str, Any]) -> None:
        if len(payload["alerts"]) < MAX_FOLDED_ITEMS:
            payload["alerts"] = [*payload["alerts"], alert]

    first: CatchUp = {"kind": "catchup", "quiet_until": tenant.stamp(until), "count": 1, "alerts": [alert]}
    key = f"catchup:{to.user_id}:{to.channel}:{tenant.stamp(until)}"
    return _summarise(session, key, to, category, now, until, cast(dict[str, Any], first), add)


def _fold_into_storm(
    session: Session,
    alert: ThreatFacts,
    to: Recipient,
    category: str,
    now: datetime,
    window_start: datetime,
    window: timedelta,
) -> int:
    def add(payload: dict[str, Any]) -> None:
        if len(payload["devices"]) < MAX_STORM_DEVICES and alert["device_id"] not in payload["devices"]:
            payload["devices"] = [*payload["devices"], alert["device_id"]]

    window_end = window_start + window
    first: StormSummary = {
        "kind": "storm",
        "classification": alert["classification"],
        "risk": alert["risk"],
        "count": 1,
        "window_start": tenant.stamp(window_start),
        "window_end": tenant.stamp(window_end),
        "devices": [alert["device_id"]],
    }
    key = f"storm:{to.user_id}:{to.channel}:{alert['classification']}:{tenant.stamp(window_start)}"
    return _summarise(session, key, to, category, now, window_end, cast(dict[str, Any], first), add)


def _summarise(
    session: Session,
    key: str,
    to: Recipient,
    category: str,
    now: datetime,
    sent_at: datetime,
    first: dict[str, Any],
    add: Callable[[dict[str, Any]], None],
) -> int:
    """Count one more alert into the unsent summary `key` (`add` notes it), or queue the summary with
    this alert as its first, to be sent at `sent_at`."""
    row = outbox.pending(session, key)
    if row is None:
        message = NewMessage(
            key=key,
            recipient_id=to.user_id,
            channel=to.channel,
            category=category,
            payload=first,
            available_at=sent_at,
            expires_at=sent_at + ALERT_TTL,
        )
        if outbox.enqueue(session, [message], now):
            return 1
        # The key is taken: by another transaction that just queued it (PostgreSQL: the insert waited
        # for it to commit, and a new read sees it), or by a summary already sent or being sent.
        row = outbox.pending(session, key)
        if row is None:
            again = replace(message, key=f"{key}+{tenant.stamp(now)}")
            return outbox.enqueue(session, [again], now)
    payload = dict(row.payload)
    payload["count"] += 1
    add(payload)
    row.payload = payload
    session.add(row)
    return 1


def queue_to(
    session: Session,
    targets: list[tuple[str, str]],
    *,
    event: str,
    category: str,
    payload: Mapping[str, Any],
    now: datetime,
    ttl: timedelta,
) -> int:
    """Queue one message per (recipient, channel), keyed `event:recipient:channel`, due now."""
    messages = [
        NewMessage(
            key=f"{event}:{recipient}:{channel}",
            recipient_id=recipient,
            channel=channel,
            category=category,
            payload=dict(payload),
            available_at=now,
            expires_at=now + ttl,
        )
        for recipient, channel in targets
    ]
    return outbox.enqueue(session, messages, now)


def queue_test(session: Session, user_id: str, now: datetime) -> list[str]:
    """`notify test`: one test message on each channel the user has any category on (through the
    real outbox and deliverer). Returns those channels."""
    on = session.exec(
        select(NotificationPreference.channel)
        .where(NotificationPreference.user_id == user_id, col(NotificationPreference.enabled).is_(True))
        .distinct()
    ).all()
    channels = sorted(set(on))
    message: TestAlert = {"kind": "test", "requested_at": tenant.stamp(now)}
    outbox.enqueue(
        session,
        [
            NewMessage(
                key=test_key(user_id, channel, now),
                recipient_id=user_id,
                channel=channel,
                category="test",
                payload=cast(dict[str, Any], message),
                available_at=now + TEST_HANDOVER,
                expires_at=now + ALERT_TTL,
            )
            for channel in channels
        ],
        now,
    )
    return channels


def test_key(user_id: str, channel: str, at: datetime) -> str:
    return f"test:{user_id}:{channel}:{at.isoformat()}"
