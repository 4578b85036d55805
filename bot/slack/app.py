"""`create_app`: the Bolt AsyncApp, built from settings and services; listeners registered explicitly."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.response import BoltResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.console import Console
from bot.metrics import Metrics
from bot.slack import actions, alert_actions, commands, home
from bot.slack.identity import SlackIdentity
from bot.slack.services import SlackServices
from integration.config import Settings
from notifications import unsubscribe
from notifications.slack_api import retry_handlers
from notifications.unsubscribe import KeyProvider
from storage import claims

log = logging.getLogger(__name__)


def create_services(
    settings: Settings, console: Console, metrics: Metrics, *, alert_key: KeyProvider | None = None
) -> SlackServices:
    """`alert_key`: what signs alerts' turn-off buttons (default: the key of the mail's unsubscribe
    links, `notifications.unsubscribe.secret_key`)."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = AsyncWebClient(token=token, base_url=settings.slack_api_url, retry_handlers=retry_handlers())
    return SlackServices(
        settings=settings,
        console=console,
        client=client,
        identity=SlackIdentity(client),
        metrics=metrics,
        alert_key=alert_key or partial(unsubscribe.secret_key, settings, console.store),
    )


def create_app(settings: Settings, services: SlackServices) -> AsyncApp:
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        raise ValueError("Slack needs SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)")
    token = services.client.token

    async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
        # One workspace, one bot token: no auth.test round trip before the first ack.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=token)

    app = AsyncApp(
        client=AsyncWebClient(base_url=services.client.base_url, retry_handlers=retry_handlers()),
        authorize=authorize,
        # bot/web.py verifies every HTTP request before Bolt sees it (Bolt's own check would log
        # the body of a request it rejects); Socket Mode needs no signature.
        request_verification_enabled=False,
        # Answer inline: the default runner polls for ack() every 10 ms (PERFORMANCE.md).
        process_before_response=True,
        # Only app_home_opened is subscribed; there are no own messages to ignore.
        ignoring_self_events_enabled=False,
    )
    app.middleware(EventsOnce(services))
    commands.register(app, services)
    actions.register(app, services)
    alert_actions.register(app, services)
    home.register(app, services)

    @app.error
    async def on_error(error: Exception) -> None:
        log.error("unhandled error in a Slack listener: %s", type(error).__name__, exc_info=error)

    return app


class EventsOnce(AsyncMiddleware):
    """Events API retries (`X-Slack-Retry-Num`) carry the same `event_id`: handle each once.

    A middleware class rather than a function: Bolt builds some thirty keyword arguments for a
    function middleware on every request, slash commands included, before it can pass them on."""

    def __init__(self, services: SlackServices) -> None:
        self.services = services

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str):
            store, now = self.services.console.store, self.services.console.clock.now()
            if not await asyncio.to_thread(claims.claim, store, f"event:{event_id}", now):
                return BoltResponse(status=200, body="")
        return await next()
