"""One-click unsubscribe (RFC 8058): the signed token in each alert mail's link, and the
`GET|POST /unsubscribe?token=…` routes that `bot/web.py` mounts.

The token is an HMAC-SHA256-signed (user, category, channel); nothing else authorises the change, so a
forged or altered token changes nothing. GET only shows a confirm page (mail scanners fetch links);
POST turns the one preference off, audited as the user's own change.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import quote

import jinja2
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from integration.clock import Clock
from integration.config import Settings
from integration.preferences import CATEGORIES, CHANNELS, set_preferences
from storage.engine import Store
from storage.models import DirectoryUser, StoredValue

KEY_NAME = "unsubscribe-key"
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_PURPOSE = b"mesbot unsubscribe v1\x00"  # a key used for anything else never yields a valid token
_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: no Referer carries it elsewhere
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
}


KeyProvider = Callable[[], bytes]  # blocking: it may read the store (`secret_key`)


def make_token(key: bytes, user_id: str, category: str, channel: str) -> str:
    body = _b64(json.dumps([user_id, category, channel], separators=(",", ":")).encode())
    return f"{body}.{_b64(_mac(key, body))}"


def read_token(key: bytes, token: str) -> tuple[str, str, str] | None:
    """(user id, category, channel), or None for anything not made by `make_token` with `key`."""
    body, dot, signature = token.partition(".")
    if not dot:
        return None
    try:
        given = _unb64(signature)
        if not hmac.compare_digest(given, _mac(key, body)):
            return None
        fields = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
        return None
    if not (isinstance(fields, list) and len(fields) == 3 and all(isinstance(f, str) for f in fields)):
        return None
    user_id, category, channel = fields
    if category not in CATEGORIES or channel not in CHANNELS:
        return None
    return user_id, category, channel


def unsubscribe_url(settings: Settings, key: bytes, user_id: str, category: str, channel: str) -> str:
    token = make_token(key, user_id, category, channel)
    return f"{settings.public_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"


def secret_key(settings: Settings, store: Store) -> bytes:
    """`MESBOT_SECRET_KEY`, or a random key made once and kept in the store. Insert-if-absent, so two
    processes starting together agree on one key (the loser of the insert reads the winner's)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    with store.write() as session:
        kept = session.get(StoredValue, KEY_NAME)
        if kept is None:
            try:
                with session.begin_nested():
                    session.add(StoredValue(name=KEY_NAME, value=secrets.token_urlsafe(32)))
            except IntegrityError:
                pass
            kept = session.get(StoredValue, KEY_NAME, populate_existing=True)
        assert kept is not None
        return kept.value.encode()


def routes(settings: Settings, store: Store, clock: Clock) -> list[Route]:
    """`GET /unsubscribe` (a confirm page) and `POST /unsubscribe` (the one-click unsubscribe)."""
    key_holder: list[bytes] = []

    async def key() -> bytes:
        if not key_holder:
            key_holder.append(await asyncio.to_thread(secret_key, settings, store))
        return key_holder[0]

    async def confirm(request: Request) -> Response:
        token = request.query_params.get("token", "")
        found = read_token(await key(), token)
        if found is None:
            return _bad_token()
        _, category, channel = found
        action = f"/unsubscribe?token={quote(token, safe='')}"
        return _page("confirm", category=category, channel=channel, action=action)

    async def unsubscribe(request: Request) -> Response:
        found = read_token(await key(), request.query_params.get("token", ""))
        if found is None:
            return _bad_token()
        user_id, category, channel = found
        done = await asyncio.to_thread(_turn_off, store, clock, user_id, category, channel)
        if not done:
            return _page("gone", status_code=400)
        return _page("done", category=category, channel=channel)

    return [
        Route("/unsubscribe", confirm, methods=["GET"]),
        Route("/unsubscribe", unsubscribe, methods=["POST"]),
    ]


def _turn_off(store: Store, clock: Clock, user_id: str, category: str, channel: str) -> bool:
    with store.write() as session:
        user = session.get(DirectoryUser, user_id)
        if user is None:
            return False
        set_preferences(session, user_id, (category,), (channel,), False, actor=user.email, at=clock.now())
        return True


def _bad_token() -> Response:
    return _page("bad-token", status_code=400)


def _page(name: str, *, status_code: int = 200, **context: Any) -> Response:
    html = _pages().get_template("unsubscribe.html").render(page=name, **context)
    return HTMLResponse(html, status_code=status_code, headers=_HEADERS)


@cache
def _pages() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("templates", "pages"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _mac(key: bytes, body: str) -> bytes:
    return hmac.digest(key, _PURPOSE + body.encode("ascii"), hashlib.sha256)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict: a character outside the URL-safe alphabet is an error, not something to skip."""
    if not _B64URL.fullmatch(text):
        raise ValueError("not URL-safe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
