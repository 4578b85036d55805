"""Connector errors, kept by fingerprint so a recurring failure is one entry with a count.

A fingerprint that is new (or open again after it was resolved) is announced at once: an outbox row
to the connector's error-report address and to each console user opted in to `connector-errors`, in
the same transaction as the record. Repeats only count; the digest reports them.
"""

import hashlib
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from integration import alerts, tenant
from integration.messages import MAILTO, ConnectorErrorNotice
from storage.models import ConnectorError

NOTICE_TTL = timedelta(days=1)


def record(session: Session, fingerprint: str, message: str, now: datetime) -> ConnectorError:
    """Count an occurrence; a resolved fingerprint that happens again is open again."""
    error = session.get(ConnectorError, fingerprint)
    if error is None:
        error = ConnectorError(fingerprint=fingerprint, message=message, first_seen=now, last_seen=now)
        announce = True
    else:
        announce = error.resolved_at is not None
        error.count += 1
        error.message = message
        error.last_seen = now
        error.resolved_at = None
    session.add(error)
    if announce:
        _announce(session, error, now)
    return error


def _announce(session: Session, error: ConnectorError, now: datetime) -> None:
    notice: ConnectorErrorNotice = {
        "kind": "connector-error",
        "fingerprint": error.fingerprint,
        "message": error.message,
        "first_seen": tenant.stamp(now),
    }
    event = hashlib.sha256(f"{error.fingerprint}@{tenant.stamp(now)}".encode()).hexdigest()[:16]
    targets = [(MAILTO + address, "email")] if (address := tenant.connector(session).error_email) else []
    targets += [(r.user_id, r.channel) for r in alerts.recipients(session, "connector-errors")]
    alerts.queue_to(
        session,
        targets,
        event=f"error:{event}",
        category="connector-errors",
        payload=notice,
        now=now,
        ttl=NOTICE_TTL,
    )


def resolve(session: Session, fingerprint: str, now: datetime) -> None:
    error = session.get(ConnectorError, fingerprint)
    if error is not None and error.resolved_at is None:
        error.resolved_at = now
        session.add(error)


def open_errors(session: Session) -> list[ConnectorError]:
    query = (
        select(ConnectorError)
        .where(col(ConnectorError.resolved_at).is_(None))
        .order_by(col(ConnectorError.last_seen).desc())
    )
    return list(session.exec(query).all())
