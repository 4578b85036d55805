"""Slack Web API retry handlers that wait through an injected `sleep`, so a test can see the wait
instead of spending it. Otherwise they retry what slack_sdk's built-in handlers retry."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.http_retry.async_handler import HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)

Sleep = Callable[[float], Awaitable[None]]
DEFAULT_RETRY_AFTER = 1.0  # Slack sends Retry-After with every 429; this is for when it does not
# A longer wait is not waited for: the answer or alert would be stale, and a task would be held for
# it. The call fails instead (counted, and the caller decides: a reply is lost, an outbox row retries).
MAX_RETRY_AFTER = 60.0


class RateLimitRetry(AsyncRateLimitErrorRetryHandler):
    """Retries a 429 after exactly the `Retry-After` seconds Slack asked for."""

    def __init__(self, max_retry_count: int = 1, *, sleep: Sleep = asyncio.sleep) -> None:
        super().__init__(max_retry_count)
        self.sleep = sleep

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:  # only a response can be a 429; as in slack_sdk, re-raise anything else
            raise error or RuntimeError("rate-limit retry without a response")
        wait = retry_after(response)
        if wait > MAX_RETRY_AFTER:
            return  # no next attempt: the 429 is the answer
        state.next_attempt_requested = True
        await self.sleep(wait)
        state.increment_current_attempt()


class _BackoffSleep:
    """slack_sdk's exponential backoff with jitter, waited through an injectable `sleep` (tests pass
    one that records the wait instead of spending it)."""

    interval_calculator: Any

    def __init__(self, max_retry_count: int = 1, *, sleep: Sleep = asyncio.sleep) -> None:
        super().__init__(max_retry_count)  # type: ignore[call-arg]  # the slack_sdk handler's
        self.sleep = sleep

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        await self.sleep(self.interval_calculator.calculate_sleep_duration(state.current_attempt))
        state.increment_current_attempt()


class ServerErrorRetry(_BackoffSleep, AsyncServerErrorRetryHandler):
    """Retries a 500 or 503 after slack_sdk's exponential backoff with jitter."""


class ConnectionErrorRetry(_BackoffSleep, AsyncConnectionErrorRetryHandler):
    """Retries a refused, reset or dropped connection after slack_sdk's exponential backoff."""


def retry_after(response: HttpResponse) -> float:
    """The response's `Retry-After` in seconds (whole seconds, as Slack sends it)."""
    for name, values in response.headers.items():
        if name.lower() == "retry-after":
            value = values[0] if isinstance(values, list) else values
            if value.strip().isdigit():
                return float(value.strip())
    return DEFAULT_RETRY_AFTER
