"""The audit trail: every change, and every refused attempt to change, leaves an entry."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, SQLModel, col, select

from storage.models import AuditEntry
from storage.states import AuditOutcome


@dataclass(frozen=True)
class Change:
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def record(
    session: Session,
    *,
    at: datetime,
    actor: str,
    change: Change,
    outcome: AuditOutcome = AuditOutcome.APPLIED,
) -> None:
    session.add(
        AuditEntry(
            at=at,
            actor=actor,
            action=change.action,
            outcome=outcome,
            before=change.before,
            after=change.after,
        )
    )


def set_field(
    session: Session, row: SQLModel, field: str, value: Any, *, action: str, actor: str, at: datetime
) -> bool:
    """Set one setting and audit it; False (and nothing written) when it already had that value."""
    before = getattr(row, field)
    if before == value:
        return False
    setattr(row, field, value)
    session.add(row)
    record(session, at=at, actor=actor, change=Change(action, {field: before}, {field: value}))
    return True


def recent(session: Session, limit: int) -> list[AuditEntry]:
    query = select(AuditEntry).order_by(col(AuditEntry.id).desc()).limit(limit)
    return list(session.exec(query).all())
