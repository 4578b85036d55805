"""Connector errors, kept by fingerprint so a recurring failure is one entry with a count."""

from datetime import datetime

from sqlmodel import Session, col, select

from storage.models import ConnectorError


def record(session: Session, fingerprint: str, message: str, now: datetime) -> ConnectorError:
    """Count an occurrence; a resolved fingerprint that happens again is open again."""
    error = session.get(ConnectorError, fingerprint)
    if error is None:
        error = ConnectorError(fingerprint=fingerprint, message=message, first_seen=now, last_seen=now)
    else:
        error.count += 1
        error.message = message
        error.last_seen = now
        error.resolved_at = None
    session.add(error)
    return error


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
