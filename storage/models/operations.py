"""What mesbot itself keeps: the audit trail, the outbox, connector errors, source cursors."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index
from sqlmodel import Field, SQLModel

from storage.states import AuditOutcome, OutboxState
from storage.types import StrEnumType, UTCDateTime


class AuditEntry(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    actor: str
    action: str
    outcome: AuditOutcome = Field(sa_type=StrEnumType(AuditOutcome))
    before: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSON)


class OutboxMessage(SQLModel, table=True):
    __table_args__ = (
        Index("ix_outbox_due", "state", "available_at"),
        Index("ix_outbox_fold", "fold_key", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(unique=True)  # event × recipient × channel
    recipient_id: str
    channel: str  # email | slack
    category: str
    # recipient × channel × classification of a threat alert: storm folding counts these per window
    fold_key: str | None = None
    payload: dict[str, Any] = Field(sa_type=JSON)
    state: OutboxState = Field(default=OutboxState.PENDING, sa_type=StrEnumType(OutboxState))
    attempts: int = 0
    created_at: datetime = Field(sa_type=UTCDateTime)
    available_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = None


class ConnectorError(SQLModel, table=True):
    fingerprint: str = Field(primary_key=True)
    message: str
    count: int = 1
    first_seen: datetime = Field(sa_type=UTCDateTime)
    last_seen: datetime = Field(sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reported_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SourceCursor(SQLModel, table=True):
    name: str = Field(primary_key=True)
    value: str
    updated_at: datetime = Field(sa_type=UTCDateTime)
