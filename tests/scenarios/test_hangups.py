"""Clients that hang up mid-body or trickle it, against a real uvicorn server on port 0: a hang-up is
one debug line (no "Exception in ASGI application" traceback), a slow body is answered 408."""

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn

from bot.console import Console
from bot.metrics import Metrics
from bot.slack.app import create_app, create_services
from bot.web import create_web
from integration.clock import SystemClock
from tests.conftest import make_store
from tests.slack.conftest import settings_for
from tests.slack.fake_slack import FakeSlack, start

HEAD = (
    "POST /slack/events HTTP/1.1\r\nHost: mesbot\r\n"
    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
)
SLOW_BODY_TIMEOUT = 0.5


async def _served(tmp_path: Path, body_timeout: float) -> AsyncIterator[int]:
    """A real uvicorn server with the real app (Slack on, fake Web API); yields its port."""
    fake = FakeSlack(users={})
    fake_server = start(fake)
    store = make_store("sqlite", tmp_path)
    settings = settings_for(fake)
    metrics = Metrics()
    services = create_services(settings, Console(store, SystemClock()), metrics)
    web = create_web(settings, store, metrics, create_app(settings, services), body_timeout=body_timeout)
    # log_config=None: uvicorn's records reach the root logger (and caplog) instead of its own handler
    config = uvicorn.Config(
        web, host="127.0.0.1", port=0, log_config=None, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        await task
        store.dispose()
        fake_server.shutdown()
        fake_server.server_close()


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    async for served in _served(tmp_path, body_timeout=10.0):
        yield served


@pytest.fixture
async def slow_port(tmp_path: Path) -> AsyncIterator[int]:
    async for served in _served(tmp_path, body_timeout=SLOW_BODY_TIMEOUT):
        yield served


async def _until_logged(caplog: pytest.LogCaptureFixture, needles: tuple[str, ...], count: int) -> None:
    """Wait (at most 5 s) until the server has logged `count` records naming one of `needles`: its
    handling of the request is over, whichever way it went."""
    for _ in range(250):
        if sum(any(n in r.getMessage() for n in needles) for r in caplog.records) >= count:
            return
        await asyncio.sleep(0.02)


def _assert_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert "Exception in ASGI application" not in caplog.text
    assert "Traceback" not in caplog.text and all(r.exc_info is None for r in caplog.records)
    assert all(r.levelno < logging.WARNING for r in caplog.records)


async def test_a_client_hanging_up_mid_body_is_one_debug_line(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for attempt in range(3):
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(HEAD.format(length=999_999).encode() + b"x" * 1024)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await _until_logged(caplog, ("Exception in ASGI application", "hung up"), attempt + 1)
        hang_ups = [r for r in caplog.records if "hung up" in r.getMessage()]
        assert len(hang_ups) == attempt + 1 and all(r.levelno == logging.DEBUG for r in hang_ups)
    _assert_no_traceback(caplog)


async def test_a_slow_body_is_answered_408(slow_port: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", slow_port)
    try:
        writer.write(HEAD.format(length=100).encode() + b"payload=")  # and then nothing more
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout=SLOW_BODY_TIMEOUT + 5)
    finally:
        writer.close()
        await writer.wait_closed()
    assert status.startswith(b"HTTP/1.1 408")
    _assert_no_traceback(caplog)
