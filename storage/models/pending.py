"""Previewed changes waiting for a click: a Confirm button carries only the random nonce, and the
change it stands for (who asked, the exact command, the impact shown, until when) is kept here."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


class PendingChange(SQLModel, table=True):
    nonce: str = Field(primary_key=True)  # secrets.token_urlsafe(16)
    actor_email: str  # the directory user who saw the preview
    slack_user_id: str
    command: str  # built by mesbot, canonical: ends in " --yes"
    impact: dict[str, Any] = Field(sa_type=JSON)  # the preview the user saw
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)
