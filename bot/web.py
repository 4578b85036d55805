"""The HTTP surface (DESIGN.md §6): `POST /slack/events`, `GET /healthz`, `GET /metrics`,
`GET|POST /unsubscribe` (the mail's one-click link, notifications/unsubscribe.py)."""

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt.adapter.starlette.async_handler import to_starlette_response
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from sqlalchemy import text
from sqlmodel import select
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.metrics import Metrics
from bot.slack import payload
from bot.slack.verify import verify
from integration import tenant
from integration.clock import Clock, SystemClock
from integration.config import Settings
from notifications import leader, unsubscribe
from storage import fleet, outbox
from storage.engine import Store
from storage.errors import StoreError
from storage.models import JobRun

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_000_000
BODY_TIMEOUT_SECONDS = 10.0  # Slack sends a few kilobytes at once; a trickle is a stuck or hostile client


def create_web(
    settings: Settings,
    store: Store,
    metrics: Metrics,
    slack: AsyncApp | None,
    *,
    scheduler_state: Callable[[], str] = lambda: "off",
    leading: Callable[[], bool] = lambda: False,
    now: Callable[[], float] = time.time,
    clock: Clock | None = None,
    body_timeout: float = BODY_TIMEOUT_SECONDS,
) -> Starlette:
    clock = clock or SystemClock()
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None

    async def slack_events(request: Request) -> Response:
        if slack is None or secret is None:
            return PlainTextResponse("Slack is not configured (SLACK_SIGNING_SECRET).", status_code=404)
        body = await _bounded_body(request, body_timeout)
        if isinstance(body, Response):
            return body
        verdict = verify(
            secret,
            request.headers.get("x-slack-request-timestamp"),
            request.headers.get("x-slack-signature"),
            body,
            now(),
        )
        if verdict.status != 200:
            log.info("rejected Slack request: %s", verdict.reason)  # never the body
            return PlainTextResponse(verdict.reason, status_code=verdict.status)
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return PlainTextResponse("body is not UTF-8", status_code=400)
        bolt_request = _bolt_request(request, text)
        if isinstance(bolt_request, str):
            log.warning("refused a malformed signed Slack request: %s", bolt_request)  # never the body
            return PlainTextResponse(f"malformed request: {bolt_request}", status_code=400)
        try:
            return to_starlette_response(await slack.async_dispatch(bolt_request))
        except Exception:  # a signed but malformed payload must not become a 500 with a traceback
            log.exception("could not handle a signed Slack request")
            return PlainTextResponse("bad request", status_code=400)

    async def healthz(request: Request) -> Response:
        health = await asyncio.to_thread(_health, store)
        health |= {"scheduler": scheduler_state(), "source": settings.source}
        try:
            health["leader"] = await asyncio.to_thread(
                leader.leader_state, store, clock.now(), here=leading()
            )
        except StoreError:  # `db` already says what is wrong
            health["leader"] = {"this_process": leading(), "process": None, "current": False}
        return JSONResponse(health, status_code=200 if health["db"] == "ok" else 503)

    async def metrics_endpoint(request: Request) -> Response:
        try:
            await asyncio.to_thread(_read_store_metrics, store, metrics, clock.now())
        except StoreError as error:  # the rest of the metrics still answer
            log.warning("outbox and fleet metrics not read: %s", error)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            *unsubscribe.routes(settings, store, clock),
        ]
    )


def _bolt_request(request: Request, text: str) -> AsyncBoltRequest | str:
    """The request as Bolt's Starlette adapter builds it, or what is wrong with its shape. The body is
    parsed once, by Bolt, and the shape checked on what it parsed (parsing twice was a twentieth of
    every ack)."""
    content_type = request.headers.get("content-type")
    shielded = payload.shielded(text, content_type)
    try:
        # the raw query string: Bolt parses it (Starlette's parse into QueryParams cost more)
        query = request.scope["query_string"].decode("latin-1")
        parsed = AsyncBoltRequest(body=shielded, query=query, headers=request.headers)  # type: ignore[arg-type]
    except Exception:  # Bolt reads fields out of what it parsed (a JSON list, `"team": 5`…): say which
        return payload.problem(shielded, content_type) or "the payload is not a Slack request"
    return payload.shape(parsed.body) or parsed


async def _bounded_body(request: Request, timeout: float) -> bytes | Response:
    """The body, or the answer that refuses it: 413 once it passes MAX_BODY_BYTES (read no further: it
    is not signed yet), 408 when it takes longer than `timeout`, 400 when the client hangs up mid-body."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return PlainTextResponse("request too large", status_code=413)
    try:
        async with asyncio.timeout(timeout):  # not wait_for: no task of its own per request
            body = await _read(request)
    except TimeoutError:
        log.info("Slack request body not received within %g s", timeout)
        return PlainTextResponse("request body too slow", status_code=408)
    except ClientDisconnect:  # nobody is left to answer; not an error of mesbot's
        log.debug("client hung up before sending the whole body")
        return PlainTextResponse("client disconnected", status_code=400)
    if body is None:
        return PlainTextResponse("request too large", status_code=413)
    return body


async def _read(request: Request) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _health(store: Store) -> dict[str, Any]:
    try:
        with store.read() as session:
            session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            connector = tenant.connector(session)
            runs = session.exec(select(JobRun)).all()
            return {
                "db": "ok",
                "connector": connector.state,
                "last_heartbeat": tenant.stamp(connector.last_heartbeat),
                "jobs": {
                    run.name: {
                        "last_success": tenant.stamp(run.last_success_at),
                        "last_outcome": run.last_outcome,
                    }
                    for run in runs
                },
            }
    except Exception as error:  # health must answer whatever the store does
        return {"db": f"error: {type(error).__name__}", "connector": None, "last_heartbeat": None, "jobs": {}}


def _read_store_metrics(store: Store, metrics: Metrics, now: datetime) -> None:
    """What every process shares: outbox depth and age, the fleet's counters, the leader's last word."""
    with store.read() as session:
        metrics.notifier.outbox_depth(outbox.depth(session))
        oldest = outbox.oldest_due(session, now)
        record = fleet.leader(session)
        counters = fleet.counters(session)
    board = metrics.notifier.fleet
    board.counters = counters
    board.oldest_due_seconds = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
    board.leader_seen_seconds = max((now - record.seen).total_seconds(), 0.0) if record else float("inf")
