"""Request verification: forged, stale, future and malformed requests get 401/400, never 500; the
listener never runs and the rejected body is never logged."""

import json
import logging
import time
from urllib.parse import urlencode

import pytest

from bot.slack.verify import sign
from tests.slack.conftest import SECRET, SlackClient

BODY = urlencode(
    {"command": "/lookout", "text": "audit secret-marker", "user_id": "UADMIN", "team_id": "T1"}
).encode()


def _now() -> str:
    return str(int(time.time()))


CASES = {
    "wrong secret": lambda: {
        "x-slack-request-timestamp": (t := _now()),
        "x-slack-signature": sign("wrong", t, BODY),
    },
    "flipped body byte": lambda: {
        "x-slack-request-timestamp": (t := _now()),
        "x-slack-signature": sign(SECRET, t, BODY[:-1] + bytes([BODY[-1] ^ 1])),
    },
    "missing signature": lambda: {"x-slack-request-timestamp": _now()},
    "missing timestamp": lambda: {"x-slack-signature": sign(SECRET, _now(), BODY)},
    "no headers": lambda: {},
    "stale timestamp": lambda: {
        "x-slack-request-timestamp": (t := str(int(time.time()) - 301)),
        "x-slack-signature": sign(SECRET, t, BODY),
    },
    "future timestamp": lambda: {
        "x-slack-request-timestamp": (t := str(int(time.time()) + 301)),
        "x-slack-signature": sign(SECRET, t, BODY),
    },
    "non-numeric timestamp": lambda: {
        "x-slack-request-timestamp": "abc",
        "x-slack-signature": sign(SECRET, "abc", BODY),
    },
    "negative timestamp": lambda: {
        "x-slack-request-timestamp": "-1",
        "x-slack-signature": sign(SECRET, "-1", BODY),
    },
    "huge timestamp": lambda: {"x-slack-request-timestamp": "9" * 40, "x-slack-signature": "v0=00"},
    "non-ASCII signature": lambda: {
        "x-slack-request-timestamp": _now(),
        "x-slack-signature": "v0=\u00e9".encode("latin-1"),
    },
}
EXPECTED = {"non-numeric timestamp": 400, "negative timestamp": 400, "huge timestamp": 400}


@pytest.mark.parametrize("case", list(CASES))
async def test_rejected_requests(slack: SlackClient, case: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"content-type": "application/x-www-form-urlencoded", **CASES[case]()}
    response = await slack.http.post("/slack/events", content=BODY, headers=headers)
    await slack.services.drain()
    assert response.status_code == EXPECTED.get(case, 401)
    assert slack.fake.calls == []  # the listener never ran: no users.info, no reply
    assert "secret-marker" not in caplog.text


async def test_a_valid_signature_is_accepted(slack: SlackClient) -> None:
    response = await slack.signed(BODY, "application/x-www-form-urlencoded")
    assert response.status_code == 200


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
