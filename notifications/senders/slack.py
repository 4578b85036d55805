"""Slack direct messages and channel posts for the deliverer: `users.lookupByEmail` →
`conversations.open` → `chat.postMessage`, each answer mapped to an `Outcome` (never an exception).

The Web API client retries connection errors, 429 (waiting `Retry-After`) and 5xx itself
(`notifications.slack_api.retry_handlers`); what still fails afterwards becomes `Retry` (the outbox
backs off and tries later) or, for errors retrying will not fix, `Failed`, which is also recorded as a
connector error so on-call sees it in `connector` and the digest."""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from integration.clock import Clock
from integration.config import Settings
from notifications import slack_api
from notifications.outcome import Failed, Outcome, Retry, Sent
from notifications.slack_retry import Sleep
from storage.engine import Store

log = logging.getLogger(__name__)

TTL_SECONDS = 3_600.0  # a Slack account's id and DM channel change rarely; a stale one is dropped on error
MAX_CACHED = 50_000
TIMEOUT_SECONDS = 10.0  # per HTTP request; the retry handlers may add their waits on top
# Slack's own words for a transient failure (sent with HTTP 200 or 5xx): try again later. Every other
# refusal (`slack_api.PERMANENT_ERRORS`, but also `invalid_blocks`, `msg_too_long`, …) will not change
# by retrying the same message: it fails, and is recorded as a connector error.
TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class _Undeliverable(Exception):
    """A call failed in a way the whole send maps to `outcome`."""

    def __init__(self, outcome: Failed | Retry) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


@dataclass
class SlackSender:
    """Sends on Slack as the bot. Build it once per process (`from_settings`) and share it: it caches
    each address's Slack user id and DM channel for `ttl` seconds."""

    client: AsyncWebClient
    store: Store
    clock: Clock
    ttl: float = TTL_SECONDS
    monotonic: Callable[[], float] = time.monotonic
    max_cached: int = MAX_CACHED
    _channels: dict[str, tuple[str, float]] = field(default_factory=dict)  # e-mail → DM channel id

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        sleep: Sleep = asyncio.sleep,
        session: aiohttp.ClientSession | None = None,
    ) -> "SlackSender | None":
        """None when Slack is off (no `SLACK_BOT_TOKEN`). `session`: reuse one aiohttp session (made
        inside the running loop) for kept-alive connections instead of one connection per call."""
        if settings.slack_bot_token is None:
            return None
        client = AsyncWebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url,
            timeout=int(TIMEOUT_SECONDS),
            retry_handlers=slack_api.retry_handlers(sleep=sleep),
            session=session,
        )
        return cls(client, store, clock)

    async def send_dm(self, email: str, text: str, blocks: list[dict[str, Any]]) -> Outcome:
        """A direct message to the Slack user whose profile e-mail is `email`."""
        address = email.strip().lower()
        try:
            cached = self._cached(address)
            channel = cached or await self._open(address)
            try:
                return await self._post(channel, text, blocks)
            except _Undeliverable as error:
                if cached is None or error.outcome.reason != "channel_not_found":
                    raise
                self._channels.pop(address, None)  # the cached DM went away: look it up once more
                return await self._post(await self._open(address), text, blocks)
        except _Undeliverable as error:
            return error.outcome
        except Exception as error:  # the deliverer must get an Outcome, whatever broke
            log.exception("Slack DM failed unexpectedly")
            return Retry(f"unexpected {type(error).__name__}")

    async def post_channel(self, channel_id: str, text: str, blocks: list[dict[str, Any]]) -> Outcome:
        """A message to a channel the bot is in (the on-call channel)."""
        try:
            return await self._post(channel_id, text, blocks)
        except _Undeliverable as error:
            return error.outcome
        except Exception as error:
            log.exception("Slack channel post failed unexpectedly")
            return Retry(f"unexpected {type(error).__name__}")

    def forget(self, email: str) -> None:
        """Look the address up again next time."""
        self._channels.pop(email.strip().lower(), None)

    async def _open(self, address: str) -> str:
        client = self.client
        found = await self._call("users.lookupByEmail", lambda: client.users_lookupByEmail(email=address))
        user = found.get("user") or {}
        if user.get("deleted"):
            raise _Undeliverable(Failed("account_inactive"))
        user_id = user.get("id")
        if not isinstance(user_id, str):
            raise _Undeliverable(Retry("users.lookupByEmail answered without a user id"))
        opened = await self._call("conversations.open", lambda: client.conversations_open(users=user_id))
        channel = (opened.get("channel") or {}).get("id")
        if not isinstance(channel, str):
            raise _Undeliverable(Retry("conversations.open answered without a channel id"))
        self._remember(address, channel)
        return channel

    async def _post(self, channel: str, text: str, blocks: list[dict[str, Any]]) -> Sent:
        # No link_names, no parse: untrusted text is escaped, and Slack must not re-read it as markup.
        posted = await self._call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
            ),
        )
        ts = posted.get("ts")
        return Sent(ts if isinstance(ts, str) else None)

    async def _call(self, method: str, call: Callable[[], Any]) -> Any:
        """One Web API call (after the client's own retries), its failure raised as `_Undeliverable`."""
        try:
            return await call()
        except SlackApiError as error:
            outcome = _api_outcome(error)
        except (aiohttp.ClientError, TimeoutError, OSError, SlackClientError) as error:
            outcome = Retry(f"{method}: {type(error).__name__}")
        if isinstance(outcome, Failed):
            log.warning("Slack %s failed for good: %s", method, outcome.reason)
            await asyncio.to_thread(slack_api.record_failure, self.store, self.clock, method, outcome.reason)
        raise _Undeliverable(outcome)

    def _cached(self, address: str) -> str | None:
        cached = self._channels.get(address)
        return cached[0] if cached and cached[1] > self.monotonic() else None

    def _remember(self, address: str, channel: str) -> None:
        now = self.monotonic()
        if len(self._channels) >= self.max_cached:
            self._channels = {k: v for k, v in self._channels.items() if v[1] > now}
            if len(self._channels) >= self.max_cached:
                self._channels.clear()
        self._channels[address] = (channel, now + self.ttl)


def _api_outcome(error: SlackApiError) -> Failed | Retry:
    """What a Slack error answer (after the client's retries) means for the message."""
    status = error.response.status_code
    code = error.response.get("error") if isinstance(error.response.data, dict) else None
    code = code if isinstance(code, str) else f"http_{status}"
    if status == 429 or code == "ratelimited":
        return Retry("ratelimited", after_seconds=_retry_after(error.response.headers))
    if status >= 500:
        return Retry(f"http_{status}")
    if code in TRANSIENT:
        return Retry(code)
    return Failed(code)


def _retry_after(headers: Any) -> float | None:
    for name, value in dict(headers or {}).items():
        if name.lower() == "retry-after":
            text = value[0] if isinstance(value, list) else str(value)
            return float(text) if text.strip().isdigit() else None
    return None
