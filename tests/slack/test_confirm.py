"""Confirm-before-change from Slack: preview with buttons that carry only a nonce (the change waits in
the store), apply once on click, re-checked access, forged values refused."""

import json
import secrets
import sqlite3
import time
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bot.console import ALREADY_DONE, Console
from bot.serve import build
from bot.slack.actions import NOT_OURS, NOT_YOURS, USED
from bot.slack.blocks import CANCEL_ACTION, CONFIRM_ACTION
from integration import tenant
from integration.clock import FixedClock
from storage.engine import Store
from storage.models import AuditEntry, DirectoryUser, GroupMembership, PendingChange
from tests.conftest import NOW
from tests.slack.conftest import SlackClient, settings_for
from tests.slack.fake_slack import Failure


def _button_value(message: dict[str, Any], action_id: str) -> str:
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    [button] = [e for e in actions["elements"] if e["action_id"] == action_id]
    return str(button["value"])


def _confirm_value(message: dict[str, Any]) -> str:
    return _button_value(message, CONFIRM_ACTION)


def _risk_audits(slack: SlackClient) -> list[AuditEntry]:
    with slack.services.console.store.read() as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.action == "risk.set")).all())


def _level(slack: SlackClient, name: str) -> str:
    reply = slack.services.console.run("analyst@contoso.example", "risk list")
    return str(next(c["risk"] for c in reply.data["classifications"] if c["name"] == name))


def _trojan_level(slack: SlackClient) -> str:
    return _level(slack, "TROJAN")


def _pinned_clock(slack: SlackClient) -> FixedClock:
    """Give the app a clock the test moves (the one every listener reads through `services.console`)."""
    clock = FixedClock(NOW)
    slack.services.console = Console(slack.services.console.store, clock)
    return clock


async def test_preview_shows_buttons_and_changes_nothing(slack: SlackClient) -> None:
    response = await slack.command("risk set TROJAN low", user="UADMIN")
    message = response.json()
    assert "Preview: TROJAN high → low" in message["blocks"][0]["text"]["text"]
    nonce = _confirm_value(message)
    assert len(nonce) == 22 and "TROJAN" not in nonce  # the button carries only the nonce
    assert _button_value(message, CANCEL_ACTION) == f"cancel:{nonce}"
    with slack.services.console.store.read() as session:
        stored = session.get(PendingChange, nonce)
    assert stored is not None
    assert (stored.command, stored.actor_email, stored.slack_user_id) == (
        "risk set TROJAN low --yes",
        "admin@contoso.example",
        "UADMIN",
    )
    shown = slack.services.console.run("admin@contoso.example", "risk set TROJAN low")
    assert stored.impact == shown.data["preview"]
    assert stored.expires_at - stored.created_at == timedelta(minutes=15)
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


def _old_style_value(command: str, issued: int, nonce: str | None = None) -> str:
    """A value as buttons used to carry it: the change itself, which a forger can rewrite."""
    impact = {"newly_noncompliant": 0, "newly_compliant": 0, "open_threats": 0}
    nonce = nonce or secrets.token_urlsafe(16)
    return json.dumps({"command": command, "nonce": nonce, "issued": issued, "impact": impact})


async def test_forged_button_values_change_nothing(slack: SlackClient) -> None:
    jailbreak = _level(slack, "ROOT_JAILBREAK")
    message = (await slack.command("risk set TROJAN low", user="UADMIN")).json()
    nonce, now = _confirm_value(message), int(time.time())
    forged = [
        (CONFIRM_ACTION, "risk set ROOT_JAILBREAK none --yes"),  # another command
        (CONFIRM_ACTION, _old_style_value("risk set ROOT_JAILBREAK none --yes", now)),
        (CONFIRM_ACTION, _old_style_value("risk set TROJAN low --yes", now + 10**8)),  # far-future issued
        (CONFIRM_ACTION, _old_style_value("risk set TROJAN low --yes", now, nonce=nonce)),
        (CONFIRM_ACTION, secrets.token_urlsafe(16)),  # a fresh random nonce mesbot never issued
        (CONFIRM_ACTION, nonce + "A"),  # longer than a nonce
        (CONFIRM_ACTION, "risk set TROJAN low -y"),  # the non-canonical confirm flag
        (CONFIRM_ACTION, _old_style_value("risk set TROJAN low -y", now)),
        (CANCEL_ACTION, f"cancel:{nonce}A"),
        (CANCEL_ACTION, f"cancel:{secrets.token_urlsafe(16)}"),
    ]
    for action_id, value in forged:
        assert (await slack.action(action_id, value, user="UADMIN")).status_code == 200
    await slack.services.drain()

    responses = slack.fake.responses()
    assert len(responses) == len(forged)
    assert all(r["text"] == NOT_OURS for r in responses)
    assert all(r["replace_original"] is False for r in responses)
    assert _trojan_level(slack) == "high" and _level(slack, "ROOT_JAILBREAK") == jailbreak
    assert _risk_audits(slack) == []
    # none of that used up the real button
    await slack.action(CONFIRM_ACTION, nonce, user="UADMIN")
    await slack.services.drain()
    assert _trojan_level(slack) == "low" and len(_risk_audits(slack)) == 1


async def test_cancel_by_someone_who_may_not_change_it_is_refused(slack: SlackClient) -> None:
    message = (await slack.command("risk set TROJAN low", user="UADMIN")).json()
    await slack.action(CANCEL_ACTION, _button_value(message, CANCEL_ACTION), user="UANALYST")
    await slack.services.drain()
    [refusal] = slack.fake.responses()
    assert NOT_YOURS in refusal["text"] and refusal["replace_original"] is False
    await slack.action(CONFIRM_ACTION, _confirm_value(message), user="UADMIN")  # still the admin's to confirm
    await slack.services.drain()
    assert _trojan_level(slack) == "low"
    with slack.services.console.store.read() as session:  # a refused cancel is not a change attempt
        assert session.exec(select(AuditEntry).where(AuditEntry.outcome == "denied")).all() == []


async def test_a_colleague_with_full_access_may_confirm_and_both_are_named(slack: SlackClient) -> None:
    store = slack.services.console.store
    with store.write() as session:
        session.add(DirectoryUser(id="u-bea", email="bea@contoso.example", display_name="Bea"))
        full_group = tenant.subscription(session).full_access_group_id
        assert full_group is not None
        session.add(GroupMembership(group_id=full_group, user_id="u-bea"))
    slack.fake.users["UBEA"] = "bea@contoso.example"
    value = _confirm_value((await slack.command("risk set TROJAN low", user="UADMIN")).json())
    await slack.action(CONFIRM_ACTION, value, user="UBEA")
    await slack.services.drain()
    [applied] = slack.fake.responses()
    assert "Applied by <@UBEA>" in json.dumps(applied["blocks"])
    assert "previewed by <@UADMIN>" in json.dumps(applied["blocks"])
    [entry] = _risk_audits(slack)
    assert entry.actor == "bea@contoso.example"


async def test_cancel_replaces_the_preview(slack: SlackClient) -> None:
    message = (await slack.command("risk set TROJAN low", user="UADMIN")).json()
    await slack.action(CANCEL_ACTION, _button_value(message, CANCEL_ACTION), user="UADMIN")
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
    clock = _pinned_clock(slack)
    late = _confirm_value((await slack.command("risk set TROJAN low", user="UADMIN")).json())
    clock.at += timedelta(minutes=14)
    in_time = _confirm_value((await slack.command("risk set ROOT_JAILBREAK low", user="UADMIN")).json())
    clock.at += timedelta(minutes=2)  # the first preview is 16 minutes old, the second 2
    await slack.action(CONFIRM_ACTION, late, user="UADMIN")
    await slack.services.drain()
    [expired] = slack.fake.responses()
    assert "expired" in expired["text"] and "nothing was changed" in expired["text"]
    assert _trojan_level(slack) == "high"
    await slack.action(CONFIRM_ACTION, in_time, user="UADMIN")
    await slack.services.drain()
    assert _level(slack, "ROOT_JAILBREAK") == "low"


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
    slack.services.identity.forget("UADMIN")
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
    await slack.action(CANCEL_ACTION, _button_value(message, CANCEL_ACTION), user="UADMIN")
    await slack.services.drain()
    await slack.action(CONFIRM_ACTION, _confirm_value(message), user="UADMIN")
    await slack.services.drain()
    assert [r["text"] for r in slack.fake.responses()] == ["Cancelled: nothing was changed.", USED]
    assert _trojan_level(slack) == "high"


async def test_a_busy_store_at_click_time_is_a_polite_refusal(
    slack: SlackClient, caplog: pytest.LogCaptureFixture
) -> None:
    message = (await slack.command("risk set TROJAN low", user="UADMIN")).json()
    store = slack.services.console.store
    impatient = Store(store.url, busy_timeout_ms=100)
    slack.services.console = Console(impatient, slack.services.console.clock)
    holder = sqlite3.connect(store.url.split("///", 1)[1], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        await slack.action(CANCEL_ACTION, _button_value(message, CANCEL_ACTION), user="UADMIN")
        await slack.services.drain()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        impatient.dispose()
    [busy] = slack.fake.responses()
    assert busy["text"].startswith("The store is busy") and busy["replace_original"] is False
    assert all(r.exc_info is None for r in caplog.records)
