"""The Slack Web API policy that the Slack app and the notifier's Slack sender both follow: which
failures are retried (connection errors; 429, honouring `Retry-After`; 5xx) and which are permanent
and recorded as connector errors, so on-call sees them in `connector` and the digest."""

import asyncio
import logging
from typing import Any

from integration import connector_errors
from integration.clock import Clock
from integration.errors import StoreError
from notifications.slack_retry import ConnectionErrorRetry, RateLimitRetry, ServerErrorRetry, Sleep
from storage.engine import Store

log = logging.getLogger(__name__)

# Errors that retrying will not fix.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "not_in_channel",
        "is_archived",
        "missing_scope",
        "user_not_found",
        "users_not_found",  # users.lookupByEmail: no Slack account has that address
    }
)


def retry_handlers(sleep: Sleep = asyncio.sleep) -> list[Any]:
    """slack_sdk retries only connection errors by default; add rate limits and server errors.
    `sleep` spends the waits (a test passes one that records them instead)."""
    return [
        ConnectionErrorRetry(max_retry_count=2, sleep=sleep),
        RateLimitRetry(max_retry_count=2, sleep=sleep),  # waits exactly Retry-After
        ServerErrorRetry(max_retry_count=2, sleep=sleep),
    ]


def is_permanent(code: str) -> bool:
    """`code` is Slack's `error` string, or `http_NNN` for a bare HTTP status (response_url)."""
    return code in PERMANENT_ERRORS or code.startswith("http_4")


def record_failure(store: Store, clock: Clock, method: str, code: str) -> None:
    """Record a permanent failure as a connector error (one fingerprint per method and error).
    Blocking: call it from a worker thread. A busy or broken store loses this one record, not the caller."""
    try:
        with store.write() as session:
            connector_errors.record(
                session, f"slack:{method}:{code}", f"Slack {method} failed: {code}", clock.now()
            )
    except StoreError as error:
        log.warning("Slack error %s %s not recorded: %s", method, code, error)
