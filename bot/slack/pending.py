"""Previews waiting for Confirm, kept server-side: offering one stores the exact command, who asked and
the impact shown under a fresh random nonce; a click names only that nonce."""

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col

from bot.grammar import parse
from integration.access import authorize, sign_in
from integration.errors import MesbotError
from storage.engine import Store
from storage.models import PendingChange

LIFETIME = timedelta(minutes=15)
KEPT_AFTER_EXPIRY = timedelta(days=1)  # so a late click is told "expired", not "not one mesbot made"
CONFIRM_FLAG = " --yes"
NONCE = re.compile(r"[A-Za-z0-9_-]{22}")  # what secrets.token_urlsafe(16) makes, and nothing longer


def offer(
    store: Store, *, email: str, user_id: str, command: str, impact: dict[str, Any], now: datetime
) -> str:
    """Store a preview the user may confirm and return its nonce; drop previews long expired."""
    if not command.endswith(CONFIRM_FLAG):
        raise ValueError(f"not a canonical confirmed command: {command!r}")
    nonce = secrets.token_urlsafe(16)
    with store.write() as session:
        session.execute(delete(PendingChange).where(col(PendingChange.expires_at) < now - KEPT_AFTER_EXPIRY))
        session.add(
            PendingChange(
                nonce=nonce,
                actor_email=email,
                slack_user_id=user_id,
                command=command,
                impact=impact,
                created_at=now,
                expires_at=now + LIFETIME,
            )
        )
    return nonce


def find(store: Store, nonce: str) -> PendingChange | None:
    """The preview a button names, or None when the value is not a nonce mesbot issued (or it expired
    long enough ago to have been dropped)."""
    if not NONCE.fullmatch(nonce):
        return None
    with store.read() as session:
        return session.get(PendingChange, nonce)


def claim_key(nonce: str) -> str:
    """The once-only key a confirm or cancel of this preview uses (see `storage.claims`)."""
    return f"confirm:{nonce}"


def may_change(store: Store, email: str, command: str) -> bool:
    """Whether the directory user may make the stored change: the Console's own access rule, checked
    read-only (a cancel click that is refused is not an attempt to change anything)."""
    try:
        parsed = parse(command)
        with store.read() as session:
            actor, subscription = sign_in(session, email)
            authorize(session, actor, parsed.needs(), subscription, parsed.what)
    except MesbotError:
        return False
    return True
