"""`mesbot serve`: the HTTP server (Starlette + uvicorn) with Slack over HTTP or Socket Mode."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from signal import SIGINT, SIGTERM

import uvicorn
from slack_bolt.async_app import AsyncApp
from starlette.applications import Starlette

from bot.console import Console
from bot.metrics import Metrics
from bot.slack.app import create_app, create_services
from bot.slack.services import SlackServices
from bot.web import create_web
from integration.clock import Clock, SystemClock
from integration.config import Settings
from notifications import wiring
from notifications.scheduler import Scheduler
from notifications.send_now import send_now
from notifications.unsubscribe import KeyProvider
from storage import claims
from storage.engine import Store
from storage.errors import StoreError

log = logging.getLogger(__name__)


def build(
    settings: Settings,
    store: Store,
    clock: Clock | None = None,
    *,
    metrics: Metrics | None = None,
    scheduler: Scheduler | None = None,
    alert_key: KeyProvider | None = None,
) -> tuple[Starlette, AsyncApp | None, SlackServices | None]:
    """The web app and (when Slack is configured) the Bolt app and its services. `alert_key`: the key
    that signs alerts' "Turn off these alerts" buttons (default: the unsubscribe key)."""
    metrics = metrics or Metrics()
    clock = clock or SystemClock()  # the one clock: commands, clicks, signatures, sweeps, jobs
    console = Console(store, clock, send_now=partial(send_now, settings, store, clock))
    slack = services = None
    if settings.slack_bot_token and (settings.slack_signing_secret or settings.slack_app_token):
        services = create_services(settings, console, metrics, alert_key=alert_key)
        slack = create_app(settings, services)
    http_slack = slack if settings.slack_app_token is None else None
    web = create_web(
        settings,
        store,
        metrics,
        http_slack,
        scheduler_state=lambda: scheduler.state if scheduler else "off",
        leading=lambda: scheduler.leading if scheduler else False,
        now=lambda: clock.now().timestamp(),
        clock=clock,
    )
    return web, slack, services


CLAIM_SWEEP_SECONDS = 3_600
SHUTDOWN_GRACE_SECONDS = 10.0


async def forget_old_claims(
    store: Store, *, clock: Clock | None = None, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> None:
    """Once-only keys are needed for minutes (Slack retries, double clicks); drop them after a day."""
    clock = clock or SystemClock()
    while True:
        cutoff = clock.now() - claims.RETENTION
        try:
            await asyncio.to_thread(claims.forget_before, store, cutoff)
        except StoreError as error:  # busy, or the store went away: the sweep must outlive it
            log.warning("old claims kept until the next sweep: %s", error)
        await sleep(CLAIM_SWEEP_SECONDS)


async def serve(settings: Settings, store: Store, clock: Clock, role: str = "all") -> None:
    """`all`: HTTP, scheduler and deliverer in one process; `web`: HTTP only; `worker`: the scheduler
    and the deliverer only (no port)."""
    metrics = Metrics()
    scheduler = None
    if role in ("all", "worker"):
        deps = wiring.deps(settings, store, clock)
        deps.metrics = metrics.notifier
        scheduler = Scheduler(deps)
        scheduler.start()
    sweeper = asyncio.create_task(forget_old_claims(store, clock=clock))
    try:
        if role == "worker":
            await _until_stopped()
        else:
            await _serve_http(settings, store, clock, metrics, scheduler)
    finally:
        sweeper.cancel()
        if scheduler is not None:
            await scheduler.stop()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal in (SIGINT, SIGTERM):
        loop.add_signal_handler(signal, stop.set)
    await stop.wait()


async def _serve_http(
    settings: Settings, store: Store, clock: Clock, metrics: Metrics, scheduler: Scheduler | None
) -> None:
    web, slack, services = build(settings, store, clock, metrics=metrics, scheduler=scheduler)
    server = uvicorn.Server(
        uvicorn.Config(
            web, host=settings.http_host, port=settings.http_port, log_level="warning", access_log=False
        )
    )
    if slack is None:
        log.warning("Slack is off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN)")
    if slack is not None and settings.slack_app_token is not None:
        from slack_bolt.adapter.socket_mode.websockets import AsyncSocketModeHandler

        socket = AsyncSocketModeHandler(slack, settings.slack_app_token.get_secret_value())
        await asyncio.gather(server.serve(), socket.start_async())  # type: ignore[no-untyped-call]
    else:
        await server.serve()
    if services is not None:
        await services.drain(timeout=SHUTDOWN_GRACE_SECONDS)  # let "Working on it" follow-ups finish
