"""The token a Slack alert's "Turn off these alerts" button carries: an HMAC-SHA256-signed
(directory user id, category). Nothing else in the click authorises the change, so a forged or
altered value changes nothing; the click handler also checks that the clicking Slack user is the
token's user (a forwarded message must not turn off someone else's alerts)."""

import base64
import binascii
import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping

from integration.preferences import CATEGORIES

KeyProvider = Callable[[], bytes]
ENV_KEY = "MESBOT_SECRET_KEY"
_PURPOSE = b"mesbot slack alert-off v1\x00"  # the same key signing anything else never yields a valid token
_SIGNATURE_BYTES = 16


def signing_key(fallback: KeyProvider, environ: Mapping[str, str] = os.environ) -> bytes:
    """`MESBOT_SECRET_KEY` when set, else whatever `fallback` gives (e.g. the key kept in the store,
    `notifications.unsubscribe.secret_key(settings, store)`). Blocking when `fallback` reads the store."""
    configured = environ.get(ENV_KEY)
    return configured.encode() if configured else fallback()


def make(key: bytes, user_id: str, category: str) -> str:
    """The button value for `user_id`'s `category` alerts on Slack (≈ 90 characters; Slack allows 2,000)."""
    body = _b64(json.dumps([user_id, category], separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(key, body))}"


def read(key: bytes, token: str) -> tuple[str, str] | None:
    """(user id, category), or None for anything `make` did not produce with `key`."""
    body, dot, signature = token.partition(".")
    if not dot or len(token) > 1_000:
        return None
    try:
        if not hmac.compare_digest(_unb64(signature), _mac(key, body)):
            return None
        fields = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        return None
    if not (isinstance(fields, list) and len(fields) == 2 and all(isinstance(f, str) for f in fields)):
        return None
    user_id, category = fields
    return (user_id, category) if category in CATEGORIES else None


def _mac(key: bytes, body: str) -> bytes:
    return hmac.new(key, _PURPOSE + body.encode(), hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
