"""Column types that behave the same on SQLite and PostgreSQL."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_T = TypeVar("_T")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    SQLite has no timezone type and returns naive values; this keeps every datetime in the
    code aware, whichever database is behind it.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StrEnumType(TypeDecorator[StrEnum]):
    """A `StrEnum` stored as its plain string value (no database enum type: a new Lookout state
    needs a code change, not a schema migration) and read back as the enum member."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum]) -> None:
        super().__init__()
        self.enum = enum
        # Dict lookups, not `enum(value)` (which cost 6% of applying a stream of threats). A member
        # hashes and compares as its value, so both find a member or a plain string.
        self.members: dict[str, StrEnum] = {member.value: member for member in enum}
        self.stored: dict[str, str] = {member.value: member.value for member in enum}

    def process_bind_param(self, value: StrEnum | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self._found(self.stored, value)

    def process_result_value(self, value: Any, dialect: Dialect) -> StrEnum | None:
        return None if value is None else self._found(self.members, value)

    def _found(self, table: dict[str, _T], value: Any) -> _T:
        found = table.get(value)
        if found is None:
            raise ValueError(f"{value!r} is not a valid {self.enum.__name__}")
        return found
