"""mesbot posts only to Slack's own `response_url` host (or MESBOT_SLACK_API_URL's, for tests and
staging): a payload naming any other URL gets its answer inline, or nothing, and one log line."""

import logging
from collections.abc import Iterator

import pytest

from bot.slack.blocks import CONFIRM_ACTION
from tests.slack.conftest import SlackClient
from tests.slack.fake_slack import FakeSlack, start

ELSEWHERE = [
    "https://evil.example/x",
    "x",
    "http://hooks.slack.com/x",  # Slack's host, but not over HTTPS
    "https://hooks.slack.com.evil.example/x",
    "https://hooks.slack.com@evil.example/x",
    "OTHER",  # a listening server on the fake Slack's host, another port
]


@pytest.fixture
def other_server() -> Iterator[FakeSlack]:
    other = FakeSlack(users={})
    server = start(other)
    yield other
    server.shutdown()
    server.server_close()


def _resolve(url: str, other: FakeSlack) -> str:
    return f"{other.url}/response/x" if url == "OTHER" else url


def _assert_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert "Traceback" not in caplog.text and all(r.exc_info is None for r in caplog.records)
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "outside Slack" in line.getMessage()


@pytest.mark.parametrize("url", ELSEWHERE)
async def test_a_slow_command_with_a_foreign_response_url_is_answered_inline(
    slack: SlackClient, other_server: FakeSlack, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    slack.services.inline_budget = 0.0  # would follow up through response_url
    response = await slack.command("enrollment", user="UADMIN", response_url=_resolve(url, other_server))
    await slack.services.drain()

    assert response.status_code == 200
    assert response.json()["text"].startswith("Enrollment (all devices)")  # the answer, not "Working on it"
    assert slack.fake.responses() == [] and other_server.calls == []
    _assert_one_warning(caplog)


@pytest.mark.parametrize("url", ELSEWHERE)
async def test_a_click_with_a_foreign_response_url_changes_nothing(
    slack: SlackClient, other_server: FakeSlack, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    message = (await slack.command("risk set TROJAN low", user="UADMIN")).json()
    [buttons] = [b for b in message["blocks"] if b["type"] == "actions"]
    nonce = buttons["elements"][0]["value"]
    response = await slack.action(CONFIRM_ACTION, nonce, response_url=_resolve(url, other_server))
    await slack.services.drain()

    assert response.status_code == 200
    assert slack.fake.responses() == [] and other_server.calls == []
    levels = slack.services.console.run("analyst@contoso.example", "risk list").data["classifications"]
    assert next(c["risk"] for c in levels if c["name"] == "TROJAN") == "high"
    _assert_one_warning(caplog)


async def test_slack_hooks_and_the_configured_api_host_are_posted_to(slack: SlackClient) -> None:
    assert slack.services.may_respond("https://hooks.slack.com/commands/T1/1/abc")
    assert slack.services.may_respond("https://HOOKS.slack.com:443/actions/T1/1/abc")
    assert slack.services.may_respond(f"{slack.fake.url}/response/abc")  # MESBOT_SLACK_API_URL's host
    assert slack.fake.calls == []
