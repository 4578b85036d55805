"""Confirm-before-change from Slack: preview with buttons, apply once on click, re-checked access."""

import json
from typing import Any

import httpx
from sqlmodel import select

from bot.console import ALREADY_DONE
from bot.serve import build
from bot.slack.actions import USED
from bot.slack.blocks import CANCEL_ACTION, CONFIRM_ACTION
from storage.models import AuditEntry
from tests.slack.conftest import SlackClient, settings_for
from tests.slack.fake_slack import Failure


def _confirm_value(message: dict[str, Any]) -> str:
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    [button] = [e for e in actions["elements"] if e["action_id"] == CONFIRM_ACTION]
    return str(button["value"])


def _risk_audits(slack: SlackClient) -> list[AuditEntry]:
    with slack.services.console.store.read() as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.action == "risk.set")).all())


def _trojan_level(slack: SlackClient) -> str:
    reply = slack.services.console.run("analyst@contoso.example", "risk list")
    return next(c["risk"] for c in reply.data["classifications"] if c["name"] == "TROJAN")


async def test_preview_shows_buttons_and_changes_nothing(slack: SlackClient) -> None:
    response = await slack.command("risk set TROJAN low", user="UADMIN")
    message = response.json()
    assert "Preview: TROJAN high → low" in message["blocks"][0]["text"]["text"]
    assert json.loads(_confirm_value(message))["command"] == "risk set TROJAN low --yes"
    assert _trojan_level(slack) == "high" and _risk_audits(slack) == []


async def test_confirm_applies_once_even_when_replayed_or_double_clicked(slack: SlackClient) -> None:
    value = _confirm_value((await slack.command("risk set TROJAN low", user="UADMIN")).json())
    body = slack.action_body(CONFIRM_ACTION, value, user="UADMIN")
    for _ in range(2):  # the same signed request replayed
        assert (await slack.signed(body, "application/x-www-form-urlencoded")).status_code == 200
    assert (await slack.action(CONFIRM_ACTION, value, user="UADMIN")).status_code == 200  # a second click
    await slack.services.drain()

    assert _trojan_level(slack) == "low"
    assert len(_risk_audits(slack)) == 1
    applied = [r for r in slack.fake.responses() if r.get("replace_original")]
    assert len(applied) == 1
    assert "Applied: TROJAN high → low" in applied[0]["text"]
    assert "Applied by <@UADMIN>" in json.dumps(applied[0]["blocks"])
    others = [r["text"] for r in slack.fake.responses() if not r.get("replace_original")]
    assert len(others) == 2
    assert all(text in (USED, ALREADY_DONE) for text in others)


async def test_access_is_checked_again_at_click_time(slack: SlackClient) -> None:
    value = _confirm_value((await slack.command("policy set low", user="UADMIN")).json())
    await slack.action(CONFIRM_ACTION, value, user="UANALYST")  # a restricted user clicks it
    await slack.services.drain()
    [refusal] = slack.fake.responses()
    assert "restricted (read-only)" in refusal["text"]
    assert (
        slack.services.console.run("analyst@contoso.example", "policy").data["policy"]["noncompliant_at"]
        == "high"
    )
    # the refused click did not use up the button: the admin can still confirm
    await slack.action(CONFIRM_ACTION, value, user="UADMIN")
    await slack.services.drain()
    assert (
        slack.services.console.run("analyst@contoso.example", "policy").data["policy"]["noncompliant_at"]
        == "low"
    )


async def test_forged_button_values_change_nothing(slack: SlackClient) -> None:
    for value in [
        "not json",
        json.dumps({"command": "connector set heartbeat 5", "nonce": "x"}),
        json.dumps({"command": "risk set TROJAN low", "nonce": "x"}),
    ]:  # not a confirmed change
        await slack.action(CONFIRM_ACTION, value, user="UADMIN")
    await slack.services.drain()
    assert all("not one mesbot made" in r["text"] for r in slack.fake.responses())
    assert _trojan_level(slack) == "high"


async def test_cancel_replaces_the_preview(slack: SlackClient) -> None:
    await slack.command("risk set TROJAN low", user="UADMIN")
    await slack.action(CANCEL_ACTION, "cancel:abc", user="UADMIN")
    await slack.services.drain()
    [cancelled] = slack.fake.responses()
    assert cancelled["replace_original"] is True and "nothing was changed" in cancelled["text"]
    assert _trojan_level(slack) == "high"


async def test_applied_changes_are_announced(slack: SlackClient) -> None:
    web, _app, services = build(
        settings_for(slack.fake, MESBOT_RISK_ANNOUNCE_CHANNEL="CANNOUNCE"), slack.services.console.store
    )
    assert services is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://mesbot") as http:
        client = SlackClient(http, services, slack.fake)
        value = _confirm_value((await client.command("risk set TROJAN medium", user="UADMIN")).json())
        await client.action(CONFIRM_ACTION, value, user="UADMIN")
        await services.drain()
    [post] = slack.fake.called("chat.postMessage")
    assert post.body["channel"] == "CANNOUNCE"
    assert post.body["text"].startswith("<@UADMIN> Applied: TROJAN high → medium")


async def test_a_preview_whose_impact_changed_is_not_applied(slack: SlackClient) -> None:
    value = _confirm_value((await slack.command("risk set OUT_OF_DATE_OS high", user="UADMIN")).json())
    slack.services.console.run("admin@contoso.example", "policy set low --yes")  # someone else acts first
    await slack.action(CONFIRM_ACTION, value, user="UADMIN")
    await slack.services.drain()
    [reply] = slack.fake.responses()
    assert reply["text"].startswith("The impact changed since your preview; nothing was applied.")
    assert any(b["type"] == "actions" for b in reply["blocks"])  # a fresh preview to confirm instead
    levels = slack.services.console.run("analyst@contoso.example", "risk list").data["classifications"]
    assert next(c["risk"] for c in levels if c["name"] == "OUT_OF_DATE_OS") == "medium"


async def test_an_expired_preview_is_not_applied(slack: SlackClient) -> None:
    value = json.loads(_confirm_value((await slack.command("risk set TROJAN low", user="UADMIN")).json()))
    value["issued"] -= 16 * 60
    await slack.action(CONFIRM_ACTION, json.dumps(value), user="UADMIN")
    await slack.services.drain()
    assert "expired" in slack.fake.responses()[0]["text"]
    assert _trojan_level(slack) == "high"


async def test_confirming_what_is_already_in_place_is_not_called_applied(slack: SlackClient) -> None:
    first = _confirm_value((await slack.command("risk set TROJAN low", user="UADMIN")).json())
    second = _confirm_value((await slack.command("risk set TROJAN low", user="UADMIN")).json())
    await slack.action(CONFIRM_ACTION, first, user="UADMIN")
    await slack.services.drain()
    await slack.action(CONFIRM_ACTION, second, user="UADMIN")
    await slack.services.drain()
    texts = [json.dumps(r) for r in slack.fake.responses()]
    assert sum("Applied by" in t for t in texts) == 1
    assert len(_risk_audits(slack)) == 1


async def test_a_failure_at_click_time_tells_the_user_and_keeps_the_button(slack: SlackClient) -> None:
    value = _confirm_value((await slack.command("risk set TROJAN low", user="UADMIN")).json())
    slack.services.identity._cache.clear()
    slack.fake.fail("users.info", Failure(status=200, error="fatal_error"))
    await slack.action(CONFIRM_ACTION, value, user="UADMIN")
    await slack.services.drain()
    assert "could not look up your Slack profile" in slack.fake.responses()[0]["text"]
    assert _trojan_level(slack) == "high"
    await slack.action(CONFIRM_ACTION, value, user="UADMIN")  # the same button still works
    await slack.services.drain()
    assert _trojan_level(slack) == "low"


async def test_cancel_then_confirm_changes_nothing(slack: SlackClient) -> None:
    message = (await slack.command("risk set TROJAN low", user="UADMIN")).json()
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    cancel_value = next(e["value"] for e in actions["elements"] if e["action_id"] == CANCEL_ACTION)
    await slack.action(CANCEL_ACTION, cancel_value, user="UADMIN")
    await slack.services.drain()
    await slack.action(CONFIRM_ACTION, _confirm_value(message), user="UADMIN")
    await slack.services.drain()
    assert [r["text"] for r in slack.fake.responses()] == ["Cancelled: nothing was changed.", USED]
    assert _trojan_level(slack) == "high"
