"""Request verification: forged, stale, future and malformed requests get 401/400, never 500; the
listener never runs and the rejected body is never logged."""

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import urlencode

import httpx
import pytest

from bot.slack.verify import sign
from bot.web import create_web
from tests.conftest import NOW
from tests.slack.conftest import SECRET, SlackClient, settings_for

BODY = urlencode(
    {"command": "/lookout", "text": "audit secret-marker", "user_id": "UADMIN", "team_id": "T1"}
).encode()
# The web app's clock in these tests: timestamps are judged against it, not against real time.
PINNED = int(NOW.timestamp())


@pytest.fixture
async def pinned(slack: SlackClient) -> AsyncIterator[SlackClient]:
    """The Slack client, with the web app's clock (and the signing time) fixed at PINNED."""
    store = slack.services.console.store
    assert slack.app is not None
    web = create_web(settings_for(slack.fake), store, slack.services.metrics, slack.app, now=lambda: PINNED)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://mesbot") as http:
        yield replace(slack, http=http, now=lambda: PINNED)


def _signed_at(timestamp: int) -> dict[str, str]:
    return {
        "x-slack-request-timestamp": str(timestamp),
        "x-slack-signature": sign(SECRET, str(timestamp), BODY),
    }


CASES: dict[str, dict[str, str | bytes]] = {
    "wrong secret": {
        "x-slack-request-timestamp": str(PINNED),
        "x-slack-signature": sign("wrong", str(PINNED), BODY),
    },
    "flipped body byte": {
        "x-slack-request-timestamp": str(PINNED),
        "x-slack-signature": sign(SECRET, str(PINNED), BODY[:-1] + bytes([BODY[-1] ^ 1])),
    },
    "missing signature": {"x-slack-request-timestamp": str(PINNED)},
    "missing timestamp": {"x-slack-signature": sign(SECRET, str(PINNED), BODY)},
    "no headers": {},
    "stale timestamp": _signed_at(PINNED - 301),
    "future timestamp": _signed_at(PINNED + 301),
    "non-numeric timestamp": {
        "x-slack-request-timestamp": "abc",
        "x-slack-signature": sign(SECRET, "abc", BODY),
    },
    "negative timestamp": {
        "x-slack-request-timestamp": "-1",
        "x-slack-signature": sign(SECRET, "-1", BODY),
    },
    "huge timestamp": {"x-slack-request-timestamp": "9" * 40, "x-slack-signature": "v0=00"},
    "non-ASCII signature": {
        "x-slack-request-timestamp": str(PINNED),
        "x-slack-signature": "v0=\u00e9".encode("latin-1"),
    },
}
EXPECTED = {"non-numeric timestamp": 400, "negative timestamp": 400, "huge timestamp": 400}


@pytest.mark.parametrize("case", list(CASES))
async def test_rejected_requests(pinned: SlackClient, case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"content-type": "application/x-www-form-urlencoded", **CASES[case]}
    response = await pinned.http.post("/slack/events", content=BODY, headers=headers)
    await pinned.services.drain()
    assert response.status_code == EXPECTED.get(case, 401)
    assert pinned.fake.calls == []  # the listener never ran: no users.info, no reply
    assert "secret-marker" not in caplog.text


@pytest.mark.parametrize("skew", [0, -300, 300])
async def test_a_valid_signature_within_five_minutes_is_accepted(pinned: SlackClient, skew: int) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded", **_signed_at(PINNED + skew)}
    response = await pinned.http.post("/slack/events", content=BODY, headers=headers)
    assert response.status_code == 200
    assert [c.method for c in pinned.fake.calls] == ["users.info"]  # the listener ran


async def test_a_signed_but_malformed_body_is_a_400_not_a_500(slack: SlackClient) -> None:
    response = await slack.signed(b"payload=%7Bnot-json", "application/x-www-form-urlencoded")
    assert response.status_code == 400
    response = await slack.signed(b"\xff\xfe", "application/x-www-form-urlencoded")
    assert response.status_code == 400


async def test_an_oversized_body_is_refused_before_it_is_read(slack: SlackClient) -> None:
    body = b"x" * 1_000_001
    response = await slack.signed(body, "application/x-www-form-urlencoded")
    assert response.status_code == 413 and slack.fake.calls == []
    huge_claim = {"content-type": "application/x-www-form-urlencoded", "content-length": str(10**10)}
    response = await slack.http.post("/slack/events", content=b"", headers=huge_claim)
    assert response.status_code == 413


async def test_signed_requests_missing_fields_are_answered_not_crashed(slack: SlackClient) -> None:
    response = await slack.signed(
        urlencode({"command": "/lookout", "text": "help"}).encode(), "application/x-www-form-urlencoded"
    )
    assert response.status_code == 200 and "named no Slack user" in response.json()["text"]
    for payload in (
        {"type": "block_actions", "actions": [{"action_id": "mesbot_confirm"}]},
        {"type": "block_actions", "user": {"id": "UADMIN"}, "actions": [{"action_id": "mesbot_cancel"}]},
    ):
        body = urlencode({"payload": json.dumps(payload)}).encode()
        assert (await slack.signed(body, "application/x-www-form-urlencoded")).status_code == 200
    await slack.services.drain()
    assert slack.fake.responses() == []
