"""Claiming a periodic job's run across processes: a leader that just took over, or two that overlap
for a moment while one notices it lost its lock, must not both run a job in one period."""

from datetime import datetime

from sqlalchemy import Insert, or_, update
from sqlmodel import Session, col

from storage.models import JobRun


def claim_run(session: Session, name: str, now: datetime, *, unless_started_after: datetime) -> bool:
    """Stamp the job started at `now` — unless a run (by any process) started after
    `unless_started_after`. True when this caller may run it. One conditional UPDATE: of two callers
    at once, one wins."""
    session.execute(_insert_absent(session).values(name=name, runs=0))
    query = (
        update(JobRun)
        .where(
            col(JobRun.name) == name,
            or_(col(JobRun.last_started_at).is_(None), col(JobRun.last_started_at) <= unless_started_after),
        )
        .values(last_started_at=now)
    )
    return int(session.execute(query).rowcount or 0) > 0  # type: ignore[attr-defined]


def _insert_absent(session: Session) -> Insert:
    from sqlalchemy.dialects import postgresql, sqlite

    table = JobRun.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["name"])
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=["name"])
