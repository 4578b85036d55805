"""Everything the Slack listeners need, built once by the app factory and passed in (no globals)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.console import Console
from bot.metrics import Metrics
from bot.reply import Reply
from bot.slack.identity import SlackIdentity
from integration import connector_errors
from integration.config import Settings
from notifications.slack_retry import RateLimitRetry, ServerErrorRetry
from storage.errors import StoreBusy

log = logging.getLogger(__name__)


# Errors that retrying will not fix: recorded as connector errors so on-call sees them.
PERMANENT_ERRORS = {
    "channel_not_found",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "not_in_channel",
    "is_archived",
    "missing_scope",
    "user_not_found",
}


def retry_handlers() -> list[Any]:
    return [
        AsyncConnectionErrorRetryHandler(max_retry_count=2),
        RateLimitRetry(max_retry_count=2),  # waits Retry-After
        ServerErrorRetry(max_retry_count=2),
    ]


@dataclass
class SlackServices:
    settings: Settings
    console: Console
    client: AsyncWebClient
    identity: SlackIdentity
    metrics: Metrics
    # Answer in the HTTP response when done within this, else ack and follow up via response_url
    # (Slack allows 3 s for the ack).
    inline_budget: float = 2.0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def run(self, email: str, text: str, *, once: str | None = None) -> Reply:
        """Run a command off the event loop (the store is synchronous) and count it."""
        started = time.perf_counter()
        reply = await asyncio.to_thread(self.console.run, email, text, once=once)
        name = reply.command or "refused"
        self.metrics.commands.labels(name, "ok" if reply.ok else "refused").inc()
        self.metrics.latency.labels(name).observe(time.perf_counter() - started)
        return reply

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

    async def respond(self, response_url: str, payload: dict[str, Any]) -> None:
        webhook = AsyncWebhookClient(response_url, retry_handlers=retry_handlers())
        response = await webhook.send_dict(payload)
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
        if code in PERMANENT_ERRORS or code.startswith("http_4"):
            await asyncio.to_thread(self._record_connector_error, method, code)

    def _record_connector_error(self, method: str, code: str) -> None:
        store, now = self.console.store, self.console.clock.now()
        try:
            with store.write() as session:
                connector_errors.record(
                    session, f"slack:{method}:{code}", f"Slack {method} failed: {code}", now
                )
        except StoreBusy:
            log.warning("store busy: Slack error %s %s not recorded", method, code)
