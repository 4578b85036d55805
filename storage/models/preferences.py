"""Each console user's notification opt-ins; everything is off until the user turns it on."""

from sqlmodel import Field, SQLModel


class NotificationPreference(SQLModel, table=True):
    user_id: str = Field(primary_key=True, foreign_key="directoryuser.id")
    category: str = Field(primary_key=True)  # threat-high | … | digest
    channel: str = Field(primary_key=True)  # email | slack
    enabled: bool = False


class QuietHours(SQLModel, table=True):
    user_id: str = Field(primary_key=True, foreign_key="directoryuser.id")
    start: str  # HH:MM in `zone`
    end: str
    zone: str = Field(default="UTC", sa_column_kwargs={"server_default": "UTC"})  # IANA name
