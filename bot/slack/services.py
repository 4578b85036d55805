"""Everything the Slack listeners need, built once by the app factory and passed in (no globals)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.console import Console
from bot.metrics import Metrics
from bot.reply import Reply
from bot.slack.identity import SlackIdentity
from integration.config import Settings
from notifications import slack_api
from notifications.unsubscribe import KeyProvider

log = logging.getLogger(__name__)


@dataclass
class SlackServices:
    settings: Settings
    console: Console
    client: AsyncWebClient
    identity: SlackIdentity
    metrics: Metrics
    alert_key: KeyProvider  # signs alerts' "Turn off these alerts" buttons (blocking: it may read the store)
    # Answer in the HTTP response when done within this, else ack and follow up via response_url
    # (Slack allows 3 s for the ack).
    inline_budget: float = 2.0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._api_origin = _origin(self.settings.slack_api_url)  # checked against every response_url

    async def run(self, email: str, text: str, *, once: str | None = None, zone: str | None = None) -> Reply:
        """Run a command and count it. The store is synchronous: a read on SQLite runs right here on
        the event loop (a few indexed rows, under a millisecond; no lock to wait for in WAL mode),
        because handing it to a thread costs more than the query — the worker and the loop trade
        the GIL, up to a 5 ms switch interval each way. Changes (which may wait for the write
        lock) and everything on PostgreSQL (a network round trip) run in a worker thread."""
        started = time.perf_counter()
        if self.runs_inline(text):
            reply = self.console.run(email, text, once=once, zone=zone, held=True)
        else:
            reply = await asyncio.to_thread(self.console.run, email, text, once=once, zone=zone)
        self.metrics.answered(reply.command or "refused", reply.ok, time.perf_counter() - started)
        return reply

    def runs_inline(self, text: str) -> bool:
        """Whether `run` answers `text` on the event loop (a read on SQLite), not in a worker thread."""
        return self.console.store.is_sqlite and self.console.reads_only(text)

    def background(self, work: Awaitable[Any]) -> None:
        """Keep a reference to fire-and-forget work so it is not garbage-collected mid-flight."""
        task: asyncio.Task[Any] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: "asyncio.Task[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("background Slack work failed: %s", type(error).__name__, exc_info=error)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for background work (tests, and shutdown so follow-ups are not cut off)."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while self._tasks:
            left = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if left is not None and left <= 0:
                log.warning("shutting down with %d Slack follow-ups unfinished", len(self._tasks))
                return
            await asyncio.wait(list(self._tasks), timeout=left)

    def may_respond(self, response_url: str) -> bool:
        """Whether mesbot posts to this `response_url`: only Slack's hooks host over HTTPS, or the scheme,
        host and port of MESBOT_SLACK_API_URL (tests, staging). A payload must not make mesbot post
        wherever it names; anything else is logged once here and not posted to."""
        origin = _origin(response_url)
        if origin is not None and origin in (SLACK_HOOKS, self._api_origin):
            return True
        log.warning("not posting to a response_url outside Slack: %.100r", response_url)
        return False

    async def respond(self, response_url: str, payload: dict[str, Any]) -> None:
        if not self.may_respond(response_url):
            return
        webhook = AsyncWebhookClient(response_url, retry_handlers=slack_api.retry_handlers())
        try:
            response = await webhook.send_dict(payload)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:  # still failing after the retries
            self.metrics.slack_errors.labels("response_url", "connection").inc()
            log.warning("could not post to response_url: %s", type(error).__name__)
            return
        if response.status_code >= 400:
            await self._record_error("response_url", f"http_{response.status_code}")

    async def call(self, method: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """A Web API call whose failure is counted and, when permanent, recorded for on-call."""
        try:
            return await call()
        except SlackApiError as error:
            code = str(error.response.get("error", "unknown"))
            await self._record_error(method, code)
            log.warning("Slack %s failed: %s", method, code)
            return None

    async def _record_error(self, method: str, code: str) -> None:
        self.metrics.slack_errors.labels(method, code).inc()
        if slack_api.is_permanent(code):
            await asyncio.to_thread(
                slack_api.record_failure, self.console.store, self.console.clock, method, code
            )


SLACK_HOOKS = ("https", "hooks.slack.com", 443)
DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, or None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme]
