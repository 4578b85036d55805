"""Slack Web API faults: 429 and 5xx are retried; permanent errors are recorded as connector errors."""

from integration import connector_errors
from tests.slack.conftest import SlackClient
from tests.slack.fake_slack import RESET, Failure


async def _publish_home(slack: SlackClient, event_id: str) -> None:
    await slack.event({"type": "app_home_opened", "user": "UADMIN", "tab": "home"}, event_id=event_id)
    await slack.services.drain()


async def test_rate_limit_is_retried_after_retry_after(slack: SlackClient) -> None:
    slack.fake.fail("views.publish", Failure(status=429, retry_after=1))
    await _publish_home(slack, "Ev1")
    assert len(slack.fake.called("views.publish")) == 2


async def test_server_errors_are_retried(slack: SlackClient) -> None:
    slack.fake.fail("views.publish", Failure(status=503))
    slack.fake.fail("views.publish", Failure(status=500))
    await _publish_home(slack, "Ev1")
    assert len(slack.fake.called("views.publish")) == 3


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
