"""Once-only keys: a Slack event delivered again or a confirm button clicked twice is handled once."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


class Claim(SQLModel, table=True):
    key: str = Field(primary_key=True)  # e.g. "event:Ev123", "confirm:<nonce>"
    claimed_at: datetime = Field(sa_type=UTCDateTime, index=True)
