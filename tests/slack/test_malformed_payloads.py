"""Signed interaction payloads of the wrong shape are answered 400 with one log line: never a 500, never
a traceback, and no listener runs."""

import json
import logging
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.slack.conftest import SlackClient


def _click(**changes: Any) -> str:
    payload = {
        "type": "block_actions",
        "user": {"id": "UADMIN", "team_id": "T1"},
        "team": {"id": "T1"},
        "api_app_id": "A1",
        "response_url": "https://hooks.slack.com/actions/T1/1/x",
        "actions": [{"action_id": "mesbot_confirm", "block_id": "b", "type": "button", "value": "v"}],
    }
    return json.dumps(payload | changes)


CASES = {
    "actions a string": _click(actions="zz"),
    "actions [null]": _click(actions=[None]),
    "actions []": _click(actions=[]),
    "action without action_id": _click(actions=[{"value": "v"}]),
    "user a string": _click(user="UADMIN"),
    "user id not a string": _click(user={"id": ["UADMIN"]}),
    "team a number": _click(team=5),
    "type not a string": _click(type=["block_actions"]),
    "not JSON": "{",
    "a JSON list": "[]",
    "a JSON string": '"block_actions"',
}


EVENTS = {
    "event a string": json.dumps({"type": "event_callback", "event": "zz", "event_id": "Ev1"}),
    "event without type": json.dumps({"type": "event_callback", "event": {}, "event_id": "Ev1"}),
    "a JSON list": "[]",
}


@pytest.mark.parametrize("case", list(CASES))
async def test_a_malformed_interaction_payload_is_a_400_with_one_log_line(
    slack: SlackClient, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    body = urlencode({"payload": CASES[case]}).encode()
    response = await slack.signed(body, "application/x-www-form-urlencoded")
    await slack.services.drain()
    _assert_refused_quietly(slack, response, caplog)


@pytest.mark.parametrize("case", list(EVENTS))
async def test_a_malformed_event_is_a_400_with_one_log_line(
    slack: SlackClient, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await slack.signed(EVENTS[case].encode(), "application/json")
    await slack.services.drain()
    _assert_refused_quietly(slack, response, caplog)


def _assert_refused_quietly(
    slack: SlackClient, response: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    assert response.status_code == 400
    assert "Traceback" not in caplog.text and all(r.exc_info is None for r in caplog.records)
    [line] = [r for r in caplog.records if r.name != "httpx"]  # the test's own client logs too
    assert line.levelno == logging.WARNING and "malformed" in line.getMessage()
    assert slack.fake.calls == []  # no listener ran: no users.info, no reply


async def test_a_well_formed_click_still_reaches_its_listener(slack: SlackClient) -> None:
    response = await slack.action("mesbot_confirm", "not-a-nonce")
    await slack.services.drain()
    assert response.status_code == 200
    [refusal] = slack.fake.responses()
    assert "not one mesbot made" in refusal["text"]
