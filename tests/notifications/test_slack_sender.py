"""The Slack sender against the recording fake Web API: one DM per call, what reached Slack, and each
Slack fault of RELIABILITY.md mapped to Sent / Retry / Failed (permanent ones recorded for on-call)."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from integration.clock import FixedClock
from integration.config import Settings
from notifications.outcome import Failed, Retry, Sent
from notifications.senders.slack import SlackSender
from notifications.slack_blocks import TurnOff, alert_blocks
from storage.engine import Store
from storage.models import ConnectorError
from tests.conftest import NOW, make_store
from tests.notifications.conftest import RecordedSleep
from tests.notifications.slack_payloads import HOSTILE, threat
from tests.slack.fake_slack import RESET, Failure, FakeSlack

ADMIN = "admin@contoso.example"
TEXT, BLOCKS = alert_blocks(threat(), turn_off=None)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    made = make_store("sqlite", tmp_path)
    yield made
    made.dispose()


class Clock:
    """A monotonic clock a test moves by hand (the sender's cache TTL)."""

    def __init__(self) -> None:
        self.at = 1_000.0

    def __call__(self) -> float:
        return self.at


def sender_for(fake: FakeSlack, store: Store, sleep: RecordedSleep | None = None) -> SlackSender:
    settings = Settings(SLACK_BOT_TOKEN="xoxb-test", MESBOT_SLACK_API_URL=f"{fake.url}/api/")
    sender = SlackSender.from_settings(settings, store, FixedClock(NOW), sleep=sleep or RecordedSleep())
    assert sender is not None
    return sender


def errors(store: Store) -> dict[str, int]:
    with store.read() as session:
        return {e.fingerprint: e.count for e in session.exec(select(ConnectorError)).all()}


def test_no_sender_without_a_bot_token(sqlite_store: Store) -> None:
    assert SlackSender.from_settings(Settings(), sqlite_store, FixedClock(NOW)) is None


async def test_a_dm_looks_the_user_up_opens_the_dm_and_posts_once(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    sender = sender_for(fake_slack, sqlite_store)
    assert await sender.send_dm("Admin@Contoso.example", TEXT, BLOCKS) == Sent("1700000000.000100")
    assert [c.method for c in fake_slack.calls] == [
        "users.lookupByEmail",
        "conversations.open",
        "chat.postMessage",
    ]
    assert fake_slack.calls[0].body["email"] == ADMIN
    assert fake_slack.calls[1].body["users"] == "UADMIN"
    [post] = fake_slack.called("chat.postMessage")
    assert post.body["channel"] == "DUADMIN" and post.body["blocks"] == BLOCKS and post.body["text"] == TEXT
    assert "link_names" not in post.body and "parse" not in post.body


async def test_the_dm_channel_is_cached_per_address_until_the_ttl(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    sender = sender_for(fake_slack, sqlite_store)
    sender.monotonic = clock = Clock()
    for _ in range(3):
        assert isinstance(await sender.send_dm(ADMIN, TEXT, BLOCKS), Sent)
    assert len(fake_slack.called("users.lookupByEmail")) == 1
    assert len(fake_slack.called("chat.postMessage")) == 3
    clock.at += sender.ttl + 1
    assert isinstance(await sender.send_dm(ADMIN, TEXT, BLOCKS), Sent)
    assert len(fake_slack.called("users.lookupByEmail")) == 2


async def test_hostile_names_reach_slack_escaped(fake_slack: FakeSlack, sqlite_store: Store) -> None:
    text, blocks = alert_blocks(
        threat(name=HOSTILE, app=HOSTILE, owner=HOSTILE, device_id=HOSTILE),
        turn_off=TurnOff("threat-high", "token"),
    )
    assert isinstance(await sender_for(fake_slack, sqlite_store).send_dm(ADMIN, text, blocks), Sent)
    [post] = fake_slack.called("chat.postMessage")
    sent = json.dumps(post.body)  # what reached Slack, as Slack parsed it
    for raw in ("<!channel>", "<@U123>", "<script>", "<https://evil.example|click>"):
        assert raw not in sent
    assert "&lt;!channel&gt; &lt;@U123&gt; &amp; &lt;script&gt;" in sent
    assert "link_names" not in post.body and "parse" not in post.body


async def test_429_waits_retry_after_then_sends(fake_slack: FakeSlack, sqlite_store: Store) -> None:
    sleep = RecordedSleep()
    fake_slack.fail("chat.postMessage", Failure(429, retry_after=7))
    assert isinstance(await sender_for(fake_slack, sqlite_store, sleep).send_dm(ADMIN, TEXT, BLOCKS), Sent)
    assert sleep.waits == [7] and len(fake_slack.called("chat.postMessage")) == 2


async def test_429_still_rate_limited_after_the_retries_is_retried_later_after_retry_after(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    sleep = RecordedSleep()
    fake_slack.fail("chat.postMessage", Failure(429, retry_after=30, times=3))
    outcome = await sender_for(fake_slack, sqlite_store, sleep).send_dm(ADMIN, TEXT, BLOCKS)
    assert outcome == Retry("ratelimited", after_seconds=30.0)
    assert sleep.waits == [30, 30] and errors(sqlite_store) == {}


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_retried_with_backoff_then_later(
    fake_slack: FakeSlack, sqlite_store: Store, status: int
) -> None:
    sleep = RecordedSleep()
    fake_slack.fail("chat.postMessage", Failure(status, times=3))
    outcome = await sender_for(fake_slack, sqlite_store, sleep).send_dm(ADMIN, TEXT, BLOCKS)
    assert outcome == Retry(f"http_{status}")
    assert len(sleep.waits) == 2 and all(wait > 0 for wait in sleep.waits)
    assert len(fake_slack.called("chat.postMessage")) == 3 and errors(sqlite_store) == {}


async def test_one_server_error_is_absorbed_by_the_client_retry(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    fake_slack.fail("conversations.open", Failure(503))
    assert isinstance(await sender_for(fake_slack, sqlite_store).send_dm(ADMIN, TEXT, BLOCKS), Sent)


async def test_a_reset_connection_is_retried_then_later(fake_slack: FakeSlack, sqlite_store: Store) -> None:
    sleep = RecordedSleep()
    fake_slack.fail("chat.postMessage", Failure(RESET, times=3))
    outcome = await sender_for(fake_slack, sqlite_store, sleep).send_dm(ADMIN, TEXT, BLOCKS)
    assert outcome == Retry("chat.postMessage: ServerDisconnectedError")
    assert len(sleep.waits) == 2 and len(fake_slack.called("chat.postMessage")) == 3
    assert errors(sqlite_store) == {}


async def test_a_lookup_whose_connection_keeps_dropping_is_retried_later(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    fake_slack.fail("users.lookupByEmail", Failure(RESET, times=100))  # aiohttp also retries a GET once
    outcome = await sender_for(fake_slack, sqlite_store).send_dm(ADMIN, TEXT, BLOCKS)
    assert isinstance(outcome, Retry) and outcome.reason.startswith("users.lookupByEmail: ")
    assert fake_slack.called("conversations.open") == [] and errors(sqlite_store) == {}


async def test_one_reset_connection_is_absorbed_by_the_client_retry(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    fake_slack.fail("chat.postMessage", Failure(RESET))
    assert isinstance(await sender_for(fake_slack, sqlite_store).send_dm(ADMIN, TEXT, BLOCKS), Sent)


@pytest.mark.parametrize(
    ("method", "code"),
    [
        ("chat.postMessage", "channel_not_found"),
        ("chat.postMessage", "is_archived"),
        ("users.lookupByEmail", "invalid_auth"),
        ("conversations.open", "missing_scope"),
        ("chat.postMessage", "token_revoked"),
        ("users.lookupByEmail", "account_inactive"),
        ("chat.postMessage", "not_authed"),
    ],
)
async def test_permanent_errors_fail_and_are_recorded_as_connector_errors(
    fake_slack: FakeSlack, store: Store, method: str, code: str
) -> None:
    sleep = RecordedSleep()
    fake_slack.fail(method, Failure(200, error=code))
    assert await sender_for(fake_slack, store, sleep).send_dm(ADMIN, TEXT, BLOCKS) == Failed(code)
    assert errors(store) == {f"slack:{method}:{code}": 1}
    assert len(fake_slack.called(method)) == 1 and sleep.waits == []  # not retried


async def test_an_address_without_a_slack_account_fails_and_is_recorded(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    outcome = await sender_for(fake_slack, sqlite_store).send_dm("nobody@contoso.example", TEXT, BLOCKS)
    assert outcome == Failed("users_not_found")
    assert errors(sqlite_store) == {"slack:users.lookupByEmail:users_not_found": 1}
    assert fake_slack.called("chat.postMessage") == []


async def test_a_cached_dm_channel_that_went_away_is_opened_again(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    sender = sender_for(fake_slack, sqlite_store)
    assert isinstance(await sender.send_dm(ADMIN, TEXT, BLOCKS), Sent)
    fake_slack.fail("chat.postMessage", Failure(200, error="channel_not_found"))
    assert isinstance(await sender.send_dm(ADMIN, TEXT, BLOCKS), Sent)
    assert len(fake_slack.called("conversations.open")) == 2
    assert len(fake_slack.called("chat.postMessage")) == 3


async def test_a_channel_post_goes_to_that_channel(fake_slack: FakeSlack, sqlite_store: Store) -> None:
    assert isinstance(await sender_for(fake_slack, sqlite_store).post_channel("C0NCALL", TEXT, BLOCKS), Sent)
    [post] = fake_slack.calls
    assert post.method == "chat.postMessage" and post.body["channel"] == "C0NCALL"


async def test_a_channel_post_that_fails_for_good_is_recorded(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    fake_slack.fail("chat.postMessage", Failure(200, error="not_in_channel"))
    outcome = await sender_for(fake_slack, sqlite_store).post_channel("C0NCALL", TEXT, BLOCKS)
    assert outcome == Failed("not_in_channel")
    assert errors(sqlite_store) == {"slack:chat.postMessage:not_in_channel": 1}


async def test_nothing_is_raised_to_the_deliverer(fake_slack: FakeSlack, sqlite_store: Store) -> None:
    unsendable = [{"type": "section", "text": object()}]  # not JSON: the client itself fails
    outcome = await sender_for(fake_slack, sqlite_store).send_dm(ADMIN, TEXT, unsendable)
    assert outcome == Retry("unexpected TypeError")


async def test_a_dm_channel_that_went_away_is_not_used_again_when_reopening_fails(
    fake_slack: FakeSlack, sqlite_store: Store
) -> None:
    sender = sender_for(fake_slack, sqlite_store)
    assert isinstance(await sender.send_dm(ADMIN, TEXT, BLOCKS), Sent)
    fake_slack.fail("chat.postMessage", Failure(200, error="channel_not_found"))
    fake_slack.fail("conversations.open", Failure(503, times=3))
    assert await sender.send_dm(ADMIN, TEXT, BLOCKS) == Retry("http_503")
    assert isinstance(await sender.send_dm(ADMIN, TEXT, BLOCKS), Sent)
    assert len(fake_slack.called("conversations.open")) == 5  # the first, three failed, one more


def test_the_manifest_asks_for_the_scopes_a_dm_needs() -> None:
    manifest = yaml.safe_load((Path(__file__).parents[2] / "slack" / "manifest.yml").read_text())
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"users:read.email", "im:write", "chat:write"} <= scopes  # lookupByEmail, open, postMessage
