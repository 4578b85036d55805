"""The Lookout application key's age (DOMAIN.md: a key lives one year; Lookout mails admins from 30
days before it expires, often to someone who has left). mesbot warns in its own channels: from 30 days
before the expiry a connector error `lookout-key:expiry` is open, announced once and in every digest,
until a new key is set.

The key's creation date is `LOOKOUT_APP_KEY_CREATED` when given, else the day mesbot first saw the key.
The key itself is never stored: a truncated SHA-256 of it tells a new key from the old one.
"""

import hashlib
import json
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from integration import connector_errors, tenant
from integration.errors import InvalidInput
from integration.text import neutralise
from storage.models import StoredValue

KEY_LIFETIME = timedelta(days=365)
WARN_BEFORE = timedelta(days=30)
FINGERPRINT = "lookout-key:expiry"
_SEEN = "lookout-app-key"  # StoredValue: {"digest": …, "first_seen": ISO time}


def created_date(text: str | None) -> date | None:
    """`LOOKOUT_APP_KEY_CREATED` as a date; a clear message when it is not one."""
    if text is None or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"LOOKOUT_APP_KEY_CREATED `{neutralise(text)[:40]}` is not a date: give the day the Lookout "
            "application key was made as YYYY-MM-DD (e.g. 2026-03-01), or leave it unset."
        ) from None


def check_key(session: Session, key: str, created: date | None, now: datetime) -> datetime:
    """Note the key, open or resolve the expiry warning, and return when the key expires."""
    born = (
        _first_seen(session, key, now)
        if created is None
        else datetime.combine(created, datetime.min.time(), UTC)
    )
    expires = born + KEY_LIFETIME
    if now >= expires - WARN_BEFORE:
        days = (expires - now).days
        when = (
            f"expired on {tenant.stamp(expires)}"
            if now >= expires
            else f"expires on {tenant.stamp(expires)} ({days} day(s) left)"
        )
        source = (
            "LOOKOUT_APP_KEY_CREATED"
            if created is not None
            else "first seen by mesbot; set LOOKOUT_APP_KEY_CREATED for the real date"
        )
        connector_errors.record(
            session,
            FINGERPRINT,
            f"The Lookout application key {when}; it was made on {tenant.stamp(born)} ({source}). "
            "Make a new key in the Lookout console (System → Application Keys), set LOOKOUT_APP_KEY and "
            "LOOKOUT_APP_KEY_CREATED, and restart mesbot.",
            now,
        )
    else:
        connector_errors.resolve(session, FINGERPRINT, now)
    return expires


def _first_seen(session: Session, key: str, now: datetime) -> datetime:
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    row = session.get(StoredValue, _SEEN)
    if row is not None:
        seen = json.loads(row.value)
        if seen.get("digest") == digest:
            return datetime.fromisoformat(seen["first_seen"])
    session.merge(
        StoredValue(name=_SEEN, value=json.dumps({"digest": digest, "first_seen": now.isoformat()}))
    )
    return now
