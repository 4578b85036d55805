"""The on-call digest (DESIGN §8): what happened since the last one — new, ongoing and resolved
connector errors, devices about to be disconnected, compliance flips, delivery failures and expired
alerts — queued to the error-report address, the on-call channel and users opted in to `digest`.
Nothing is queued when nothing happened; each period's digest is queued once (its key is the period).
"""

from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from integration import alerts, enrollment, tenant
from integration.messages import MAILTO, SLACK_CHANNEL, DigestFacts, ErrorLine
from integration.tenant import stamp
from storage.models import ComplianceFlip, ConnectorError, DirectoryUser, OutboxMessage, StoredValue
from storage.states import OutboxState

LAST_DIGEST = "digest-until"
LAST_PERIOD = "digest-period"
FIRST_LOOKBACK = timedelta(days=1)
DIGEST_TTL = timedelta(days=1)
MAX_LINES = 50


def since(session: Session, now: datetime) -> datetime:
    """Where this digest starts: where the last one ended, else a day back."""
    row = session.get(StoredValue, LAST_DIGEST)
    return datetime.fromisoformat(row.value) if row else now - FIRST_LOOKBACK


def collect(session: Session, start: datetime, until: datetime) -> DigestFacts | None:
    errors = list(session.exec(select(ConnectorError).order_by(col(ConnectorError.last_seen).desc())).all())

    def line(e: ConnectorError) -> ErrorLine:
        return {
            "fingerprint": e.fingerprint,
            "message": e.message,
            "count": e.count,
            "first_seen": stamp(e.first_seen),
            "last_seen": stamp(e.last_seen),
        }

    new = [line(e) for e in errors if e.first_seen >= start and e.resolved_at is None]
    ongoing = [line(e) for e in errors if e.first_seen < start and e.resolved_at is None]
    resolved = [line(e) for e in errors if e.resolved_at is not None and e.resolved_at >= start]
    days = tenant.enrollment_settings(session).disconnected_days
    soon = [
        {"device_id": d.id, "owner_email": d.owner_email, "last_checkin": stamp(d.checkin_time or until)}
        for d in enrollment.about_to_disconnect(session, until, days, limit=MAX_LINES)
    ]
    flips = [
        {"device_id": f.device_id, "owner_email": f.owner_email, "became": f.became, "at": stamp(f.at)}
        for f in session.exec(
            select(ComplianceFlip)
            .where(col(ComplianceFlip.at) >= start, col(ComplianceFlip.at) < until)
            .order_by(col(ComplianceFlip.at))
            .limit(MAX_LINES)
        ).all()
    ]
    failures = _failures(session, start, until)
    expired = session.exec(
        select(func.count()).where(
            OutboxMessage.state == OutboxState.EXPIRED,
            col(OutboxMessage.expires_at) >= start,
            col(OutboxMessage.expires_at) < until,
        )
    ).one()
    facts: DigestFacts = {
        "kind": "digest",
        "since": stamp(start),
        "until": stamp(until),
        "new_errors": new,
        "ongoing_errors": ongoing,
        "resolved_errors": resolved,
        "about_to_disconnect": soon,
        "compliance_flips": flips,
        "delivery_failures": failures,
        "expired": int(expired),
    }
    happened = new or ongoing or resolved or soon or flips or failures or expired
    return facts if happened else None


def _failures(session: Session, start: datetime, until: datetime) -> list[dict[str, str]]:
    """Messages a channel refused for good, one line per channel × category × reason (a Slack outage
    is one line, not one per alert), naming who missed them."""
    rows = session.exec(
        select(
            OutboxMessage.channel,
            OutboxMessage.category,
            OutboxMessage.last_error,
            OutboxMessage.recipient_id,
        )
        .where(
            OutboxMessage.state == OutboxState.FAILED,
            col(OutboxMessage.claimed_at) >= start,
            col(OutboxMessage.claimed_at) < until,
        )
        .order_by(col(OutboxMessage.id))
    ).all()
    emails = dict(session.exec(select(DirectoryUser.id, DirectoryUser.email)).all()) if rows else {}
    groups: dict[tuple[str, str, str], list[str]] = {}
    for channel, category, reason, recipient in rows:
        who = emails.get(recipient, recipient.removeprefix(MAILTO).removeprefix(SLACK_CHANNEL))
        named = groups.setdefault((channel, category, reason or "no reason given"), [])
        if who not in named:
            named.append(who)
    return [
        {
            "recipient": names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else ""),
            "channel": channel,
            "category": category,
            "reason": reason,
        }
        for (channel, category, reason), names in list(groups.items())[:MAX_LINES]
    ]


def queue(session: Session, now: datetime, oncall_channel: str | None, *, period: str | None = None) -> str:
    """Collect the digest since the last one and queue it; the next one starts here either way.
    `period` names the schedule's slot in its own time zone (`2026-10-25 02:30`): a slot that comes
    twice (the hour autumn repeats) gets one digest."""
    start = since(session, now)
    if now <= start:
        return "nothing to digest (the last digest covers this time)"
    last_period = session.get(StoredValue, LAST_PERIOD)
    if period is not None and last_period is not None and last_period.value == period:
        return f"the digest for {period} was already sent (a wall-clock time that came twice)"
    facts = collect(session, start, now)
    session.merge(StoredValue(name=LAST_DIGEST, value=now.isoformat()))
    if period is not None:
        session.merge(StoredValue(name=LAST_PERIOD, value=period))
    if facts is None:
        return f"nothing happened since {stamp(start)}: no digest sent"
    targets = [(MAILTO + address, "email")] if (address := tenant.connector(session).error_email) else []
    targets += [(SLACK_CHANNEL + oncall_channel, "slack")] if oncall_channel else []
    targets += [(r.user_id, r.channel) for r in alerts.recipients(session, "digest")]
    added = alerts.queue_to(
        session,
        targets,
        event=f"digest:{stamp(now)}",
        category="digest",
        payload=facts,
        now=now,
        ttl=DIGEST_TTL,
    )
    return f"digest since {stamp(start)} queued for {added} recipient(s)"
