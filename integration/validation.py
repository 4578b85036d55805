"""Validation of every setting: each failure names the field and what is allowed."""

import re
import uuid

from integration.errors import InvalidInput
from integration.levels import POLICY_LEVELS, RiskLevel
from integration.text import neutralise

HEARTBEAT_MINUTES = range(5, 1441)  # 5 minutes … 24 hours
DISCONNECTED_DAYS = range(1, 91)  # the seed: 1–90 days
GROUP_NAME_MAX = 256  # Entra's displayName limit

# Deliberately plain: a local part and a dotted domain, no spaces, quotes or angle brackets, so the
# address can never smuggle a second header or recipient into a mail.
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")


def show(value: str, limit: int = 60) -> str:
    """User input quoted back in a message: control and bidi characters made visible, shortened."""
    cleaned = neutralise(value)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _whole_number(field: str, text: str, allowed: range, unit: str) -> int:
    rule = f"{field} must be a whole number of {unit} from {allowed.start} to {allowed.stop - 1}"
    if not re.fullmatch(r"[+-]?[0-9]{1,9}", text.strip()):
        raise InvalidInput(f"{rule}; got `{show(text)}`.")
    value = int(text)
    if value not in allowed:
        raise InvalidInput(f"{rule}; got {value}.")
    return value


def heartbeat_minutes(text: str) -> int:
    return _whole_number("Heartbeat frequency", text, HEARTBEAT_MINUTES, "minutes")


def disconnected_days(text: str) -> int:
    return _whole_number("Disconnected status", text, DISCONNECTED_DAYS, "days")


def guid(field: str, text: str) -> str:
    """An Entra object/directory ID, returned in its canonical lower-case form."""
    try:
        value = uuid.UUID(text.strip())
    except ValueError:
        value = None
    if value is None or len(text.strip()) not in (32, 36, 38):
        raise InvalidInput(
            f"{field} must be a GUID like `00000000-0000-0000-0000-000000000000` "
            f"(copy it from the Entra admin center); got `{show(text)}`."
        )
    return str(value)


def is_email(text: str) -> bool:
    return len(text) <= 254 and _EMAIL.fullmatch(text) is not None


def email(field: str, text: str) -> str:
    value = text.strip()
    if not is_email(value):
        raise InvalidInput(f"{field} must be an e-mail address like `name@example.com`; got `{show(text)}`.")
    return value.lower()


def risk_level(text: str) -> RiskLevel:
    try:
        return RiskLevel(text.strip().lower())
    except ValueError:
        raise InvalidInput(
            f"Risk level must be one of high, medium, low or none; got `{show(text)}`."
        ) from None


def policy_level(text: str) -> RiskLevel:
    level = text.strip().lower()
    if level not in POLICY_LEVELS:
        allowed = ", ".join(level.value for level in POLICY_LEVELS)
        raise InvalidInput(f"Policy level must be one of {allowed}; got `{show(text)}`.")
    return RiskLevel(level)


def group_name(text: str) -> str:
    if not text or not text.strip() or len(text) > GROUP_NAME_MAX or not text.isprintable():
        raise InvalidInput(
            f"Group name must be 1–{GROUP_NAME_MAX} printable characters, in quotes when it has "
            f'spaces (e.g. "Mobile Users"); got `{show(text)}`.'
        )
    return text


def clock_time(field: str, text: str) -> str:
    if not _HHMM.fullmatch(text):
        raise InvalidInput(f"{field} must be a 24-hour time HH:MM like 22:00; got `{show(text)}`.")
    return text


def time_zone(text: str) -> str:
    """An IANA time zone name (`Europe/Stockholm`, `UTC`), as the tz database spells it."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            "Time zone must be an IANA name like Europe/Stockholm, America/New_York or UTC; "
            f"got `{show(text)}`."
        ) from None
    return text
