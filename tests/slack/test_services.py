"""SlackServices: shutdown does not wait forever for background work, and a Slack error that cannot be
recorded because the store is busy is logged instead of failing the work that met it."""

import asyncio
import logging

import pytest

from bot.console import Console
from bot.metrics import Metrics
from bot.slack.app import create_services
from integration import connector_errors
from integration.clock import FixedClock
from storage.engine import Store
from tests.conftest import NOW, OtherWriter, impatient
from tests.slack.conftest import SlackClient, settings_for
from tests.slack.fake_slack import RESET, Failure, FakeSlack


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


async def test_drain_gives_up_after_its_timeout_when_work_hangs(
    slack: SlackClient, caplog: pytest.LogCaptureFixture
) -> None:
    release, finished = asyncio.Event(), asyncio.Event()

    async def hanging_follow_up() -> None:
        await release.wait()
        finished.set()

    slack.services.background(hanging_follow_up())
    try:
        # a drain that ignored its timeout would hang here; wait_for turns that into a failure
        await asyncio.wait_for(slack.services.drain(timeout=0.01), timeout=10)
        assert not finished.is_set()
        assert _warnings(caplog) == ["shutting down with 1 Slack follow-ups unfinished"]
    finally:
        release.set()
    await slack.services.drain()
    assert finished.is_set()  # the work itself was not cut off by the drain giving up


async def test_a_slack_error_the_busy_store_cannot_record_is_logged(
    fake_slack: FakeSlack, slack_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store = impatient(slack_store)
    services = create_services(settings_for(fake_slack), Console(store, FixedClock(NOW)), Metrics())
    fake_slack.fail("chat.postMessage", Failure(status=200, error="channel_not_found"))
    with OtherWriter(store) as other:
        other.lock()
        posted = await services.call(
            "chat.postMessage", lambda: services.client.chat_postMessage(channel="CGONE", text="x")
        )
    store.dispose()
    assert posted is None  # the caller goes on, as for any failed call
    assert any(
        w.startswith("Slack error chat.postMessage channel_not_found not recorded: The store is busy")
        for w in _warnings(caplog)
    )
    assert 'mesbot_slack_api_errors_total{error="channel_not_found",method="chat.postMessage"} 1.0' in (
        services.metrics.render().decode()
    )
    with slack_store.read() as session:
        assert connector_errors.open_errors(session) == []


async def test_a_response_url_that_keeps_dropping_the_connection_is_one_warning(
    slack: SlackClient, caplog: pytest.LogCaptureFixture
) -> None:
    slack.fake.fail("gone", Failure(status=RESET, times=10))

    await slack.services.respond(f"{slack.fake.url}/response/gone", {"text": "late answer"})

    assert len(slack.fake.called("gone")) == 3  # the first try and two retries
    assert _warnings(caplog) == ["could not post to response_url: ServerDisconnectedError"]
    assert 'method="response_url"' in slack.services.metrics.render().decode()
