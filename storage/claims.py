"""Claiming a key once, across processes: the insert either wins or finds the key taken."""

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage.engine import Store
from storage.models import Claim


def claim_in(session: Session, key: str, now: datetime) -> bool:
    """Claim `key` inside the caller's transaction (a savepoint): True for the first caller, False
    when it was taken. The claim commits or rolls back with the caller's change, so a failed change
    leaves the key free."""
    try:
        with session.begin_nested():
            session.add(Claim(key=key, claimed_at=now))
    except IntegrityError:
        return False
    return True


def claim(store: Store, key: str, now: datetime) -> bool:
    """`claim_in` in a transaction of its own: True for the first caller with `key` (any process)."""
    with store.write() as session:
        return claim_in(session, key, now)


def is_claimed(store: Store, key: str) -> bool:
    with store.read() as session:
        return session.get(Claim, key) is not None


def forget_before(store: Store, cutoff: datetime) -> int:
    """Drop claims older than `cutoff` (Slack retries within minutes; a day is plenty)."""
    with store.write() as session:
        result = session.execute(delete(Claim).where(Claim.claimed_at < cutoff))  # type: ignore[arg-type]
        return int(result.rowcount)  # type: ignore[attr-defined]


RETENTION = timedelta(days=1)
