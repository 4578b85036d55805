"""Confirm-before-change from Slack: preview with buttons, apply once on click, re-checked access."""

import json
from typing import Any

import httpx
from sqlmodel import select

from bot.serve import build
from bot.slack.blocks import CANCEL_ACTION, CONFIRM_ACTION
from storage.models import AuditEntry
from tests.slack.conftest import SlackClient, settings_for


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
    notes = [r for r in slack.fake.responses() if "already confirmed" in r.get("text", "")]
    assert len(notes) == 2


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
    await slack.action(CANCEL_ACTION, "cancel", user="UADMIN")
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
