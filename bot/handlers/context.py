"""What every handler gets: the open session, who is asking, and the time."""

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from integration.access import Actor


@dataclass(frozen=True)
class Request:
    session: Session
    actor: Actor
    now: datetime
    zone: str | None = None  # the asker's time zone when the front end knows it (Slack profile `tz`)
