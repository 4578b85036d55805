"""What the notifier keeps besides the outbox: job runs, compliance flips for the digest, and small
named values (the generated unsubscribe key, the demo simulator's seed, the last digest's time)."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


class JobRun(SQLModel, table=True):
    """The last run of each scheduled job, whichever process ran it (`jobs list`, `/healthz`)."""

    name: str = Field(primary_key=True)
    runs: int = 0
    last_started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_outcome: str | None = None  # ok | failed
    last_detail: str | None = None  # a one-line summary, or the failure
    last_success_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ComplianceFlip(SQLModel, table=True):
    """A device that turned compliant or noncompliant (the digest lists those since the last one)."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_type=UTCDateTime, index=True)
    device_id: str
    owner_email: str
    became: str  # compliant | noncompliant
    why: str | None = None


class StoredValue(SQLModel, table=True):
    name: str = Field(primary_key=True)  # e.g. "unsubscribe-key", "demo-seed", "digest-until"
    value: str
