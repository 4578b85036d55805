"""App Home and Events API deliveries (retries deduplicated by event_id)."""

import json
import re
from typing import Any

from bot.slack.home import MAX_HOME_BLOCKS, cap_blocks
from integration import connector_errors
from notifications.slack_markup import MAX_TEXT
from tests.conftest import NOW
from tests.integration.factories import device
from tests.slack.conftest import SlackClient


def _home_opened(user: str) -> dict[str, Any]:
    return {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"}


def _published(slack: SlackClient, user: str | None = None) -> list[dict[str, Any]]:
    calls = [c for c in slack.fake.called("views.publish") if user in (None, c.body["user_id"])]
    return [json.loads(c.body["view"]) if isinstance(c.body["view"], str) else c.body["view"] for c in calls]


async def test_event_retries_are_handled_once(slack: SlackClient) -> None:
    for retry in (None, 1, 2):
        response = await slack.event(_home_opened("UADMIN"), event_id="Ev001", retry=retry)
        assert response.status_code == 200
    await slack.services.drain()
    assert len(slack.fake.called("views.publish")) == 1
    await slack.event(_home_opened("UADMIN"), event_id="Ev002")
    await slack.services.drain()
    assert len(slack.fake.called("views.publish")) == 2


async def test_home_for_a_full_access_user(slack: SlackClient) -> None:
    await slack.event(_home_opened("UADMIN"), event_id="Ev1")
    await slack.services.drain()
    [view] = _published(slack)
    text = json.dumps(view, ensure_ascii=False)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    assert "Enrollment (all devices)" in text and "Compliance" in text
    assert "Connector: enabled" in text and "last heartbeat" in text
    assert "threat-high · email: on" in text  # the demo admin's opt-in, as a toggle
    assert "Last entry:" in text or "entries:" in text  # the audit part


async def test_home_for_restricted_and_no_access_users(slack: SlackClient) -> None:
    await slack.event(_home_opened("UANALYST"), event_id="Ev1")
    await slack.event(_home_opened("UALICE"), event_id="Ev2")
    await slack.services.drain()
    [analyst] = [json.dumps(v, ensure_ascii=False) for v in _published(slack, "UANALYST")]
    [alice] = [json.dumps(v, ensure_ascii=False) for v in _published(slack, "UALICE")]
    assert "Enrollment (all devices)" in analyst and "audit entries" not in analyst
    assert "Enrollment (" not in alice and "Connector:" not in alice
    assert "You have 2 devices" in alice  # her own devices instead


async def test_toggle_changes_the_preference_and_republishes(slack: SlackClient) -> None:
    await slack.action("mesbot_notify_toggle:digest:slack", "digest:slack:on", user="UANALYST")
    await slack.services.drain()
    reply = slack.services.console.run("analyst@contoso.example", "notify")
    assert reply.data["preferences"]["digest"] == {"email": False, "slack": True}
    [view] = _published(slack)
    assert "digest · slack: on" in json.dumps(view, ensure_ascii=False)


async def test_a_forged_toggle_value_changes_nothing(slack: SlackClient) -> None:
    await slack.action("mesbot_notify_toggle:x", "digest:slack:on; audit", user="UANALYST")
    await slack.services.drain()
    reply = slack.services.console.run("analyst@contoso.example", "notify")
    assert not any(on for channels in reply.data["preferences"].values() for on in channels.values())


def _texts(view: dict[str, Any]) -> list[str]:
    """The text of every section, header and context note in a view."""
    found = []
    for block in view["blocks"]:
        for part in [block.get("text"), *block.get("elements", [])]:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                found.append(part["text"])
    return found


def _more_notes(texts: list[str]) -> list[str]:
    return [text for text in texts if re.fullmatch(r"\+[\d,]+ more lines not shown", text)]


async def test_a_home_too_long_for_slack_is_cut_with_a_note(slack: SlackClient) -> None:
    with slack.services.console.store.write() as session:
        for n in range(500):
            connector_errors.record(
                session, f"sync:{n}", f"device {n} <!channel> failed to sync " + "x" * 300, NOW
            )
    await slack.event(_home_opened("UADMIN"), event_id="Ev1")
    await slack.services.drain()
    [view] = _published(slack)
    texts = _texts(view)
    assert len(view["blocks"]) <= MAX_HOME_BLOCKS and all(len(text) <= MAX_TEXT for text in texts)
    assert _more_notes(texts) != []  # the connector's 500 errors end with "+N more lines not shown"
    assert any(text.startswith("Last ") and "entr" in text for text in texts)  # the audit part is still there


async def test_a_home_listing_hundreds_of_own_devices_is_cut_with_a_note(slack: SlackClient) -> None:
    with slack.services.console.store.write() as session:
        for _ in range(500):
            device(session, owner="alice@contoso.example")
    await slack.event(_home_opened("UALICE"), event_id="Ev1")
    await slack.services.drain()
    [view] = _published(slack)
    texts = _texts(view)
    assert len(view["blocks"]) <= MAX_HOME_BLOCKS and all(len(text) <= MAX_TEXT for text in texts)
    assert texts[1].startswith("You have 502 devices:") and _more_notes(texts) != []


def test_a_home_over_100_blocks_keeps_99_and_says_what_was_left_out() -> None:
    parts = [{"type": "divider"} for _ in range(130)]

    capped = cap_blocks(parts)

    assert len(capped) == MAX_HOME_BLOCKS
    assert capped[-1]["elements"][0]["text"] == "+31 more blocks not shown"
    assert cap_blocks(parts[:100]) == parts[:100]
