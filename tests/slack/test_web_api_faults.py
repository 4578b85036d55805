"""Slack Web API faults: 429 and 5xx are retried; permanent errors are recorded as connector errors."""

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from integration import connector_errors
from notifications.slack_retry import RateLimitRetry, ServerErrorRetry
from tests.slack.conftest import SlackClient
from tests.slack.fake_slack import RESET, Failure, FakeSlack


class RecordedSleep:
    """Stands in for asyncio.sleep: remembers each wait instead of spending it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _client(fake: FakeSlack, handler: AsyncRetryHandler) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=f"{fake.url}/api/", retry_handlers=[handler])


async def _publish_home(slack: SlackClient, event_id: str) -> None:
    await slack.event({"type": "app_home_opened", "user": "UADMIN", "tab": "home"}, event_id=event_id)
    await slack.services.drain()


async def test_rate_limit_is_retried(slack: SlackClient) -> None:
    slack.fake.fail("views.publish", Failure(status=429, retry_after=0))
    await _publish_home(slack, "Ev1")
    assert len(slack.fake.called("views.publish")) == 2


async def test_a_rate_limit_waits_exactly_the_retry_after_slack_sent(fake_slack: FakeSlack) -> None:
    sleep = RecordedSleep()
    client = _client(fake_slack, RateLimitRetry(max_retry_count=2, sleep=sleep))
    fake_slack.fail("chat.postMessage", Failure(status=429, retry_after=7))
    fake_slack.fail("chat.postMessage", Failure(status=429, retry_after=30))
    response = await client.chat_postMessage(channel="C1", text="x")
    assert response["ok"] and len(fake_slack.called("chat.postMessage")) == 3
    assert sleep.waits == [7, 30]


async def test_a_rate_limit_asking_for_more_than_a_minute_is_not_waited_for(fake_slack: FakeSlack) -> None:
    sleep = RecordedSleep()
    client = _client(fake_slack, RateLimitRetry(max_retry_count=2, sleep=sleep))
    fake_slack.fail("chat.postMessage", Failure(status=429, retry_after=3_600))
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C1", text="x")
    assert sleep.waits == [] and len(fake_slack.called("chat.postMessage")) == 1


async def test_a_rate_limit_without_retry_after_waits_a_second(fake_slack: FakeSlack) -> None:
    sleep = RecordedSleep()
    client = _client(fake_slack, RateLimitRetry(max_retry_count=2, sleep=sleep))
    fake_slack.fail("chat.postMessage", Failure(status=429))
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]
    assert sleep.waits == [1]


async def test_rate_limit_retries_stop_at_the_maximum(fake_slack: FakeSlack) -> None:
    sleep = RecordedSleep()
    client = _client(fake_slack, RateLimitRetry(max_retry_count=2, sleep=sleep))
    fake_slack.fail("chat.postMessage", Failure(status=429, retry_after=5, times=3))
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C1", text="x")
    assert len(fake_slack.called("chat.postMessage")) == 3 and sleep.waits == [5, 5]


async def test_server_errors_are_retried(slack: SlackClient) -> None:
    slack.fake.fail("views.publish", Failure(status=503))
    await _publish_home(slack, "Ev1")
    assert len(slack.fake.called("views.publish")) == 2


async def test_server_errors_back_off_before_each_retry(fake_slack: FakeSlack) -> None:
    sleep = RecordedSleep()
    client = _client(fake_slack, ServerErrorRetry(max_retry_count=2, sleep=sleep))
    fake_slack.fail("chat.postMessage", Failure(status=503))
    fake_slack.fail("chat.postMessage", Failure(status=500))
    assert (await client.chat_postMessage(channel="C1", text="x"))["ok"]
    assert len(fake_slack.called("chat.postMessage")) == 3
    assert len(sleep.waits) == 2 and all(wait > 0 for wait in sleep.waits)


async def test_a_dropped_connection_is_retried(slack: SlackClient) -> None:
    slack.fake.fail("views.publish", Failure(status=RESET))
    await _publish_home(slack, "Ev1")
    assert len(slack.fake.called("views.publish")) == 2
    with slack.services.console.store.read() as session:
        assert connector_errors.open_errors(session) == []


async def test_permanent_errors_are_recorded_not_swallowed(slack: SlackClient) -> None:
    slack.fake.fail("views.publish", Failure(status=200, error="invalid_auth"))
    await _publish_home(slack, "Ev1")
    assert len(slack.fake.called("views.publish")) == 1  # not retried
    with slack.services.console.store.read() as session:
        fingerprints = [e.fingerprint for e in connector_errors.open_errors(session)]
    assert fingerprints == ["slack:views.publish:invalid_auth"]
    metrics = (await slack.http.get("/metrics")).text
    assert 'mesbot_slack_api_errors_total{error="invalid_auth",method="views.publish"} 1.0' in metrics


async def test_channel_not_found_on_announce_is_recorded(slack: SlackClient) -> None:
    slack.fake.fail("chat.postMessage", Failure(status=200, error="channel_not_found"))
    await slack.services.call(
        "chat.postMessage", lambda: slack.services.client.chat_postMessage(channel="CGONE", text="x")
    )
    with slack.services.console.store.read() as session:
        assert [e.fingerprint for e in connector_errors.open_errors(session)] == [
            "slack:chat.postMessage:channel_not_found"
        ]
