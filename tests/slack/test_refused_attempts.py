"""Refused attempts to change something from Slack are audited under the command's own name, with
the command as typed — also when mesbot cannot tell who is asking (issue #6, item 8)."""

from sqlmodel import col, select

from bot.slack.blocks import CONFIRM_ACTION
from storage.models import AuditEntry
from tests.slack.conftest import SlackClient


def _audit(slack: SlackClient) -> list[tuple[str, str, str, dict[str, object] | None]]:
    with slack.services.console.store.read() as session:
        entries = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
        return [(e.actor, e.action, e.outcome.value, e.after) for e in entries if e.action != "demo.seed"]


async def test_a_slack_user_outside_the_directory_is_audited_by_address(slack: SlackClient) -> None:
    response = await slack.command("connector set heartbeat 45", user="USTRANGER")

    assert "not a user in the directory" in response.json()["text"]
    assert _audit(slack) == [
        (
            "stranger@elsewhere.example",
            "connector.heartbeat_minutes",
            "denied",
            {"command": "connector set heartbeat 45"},
        )
    ]


async def test_a_profile_without_e_mail_is_audited_by_slack_id(slack: SlackClient) -> None:
    response = await slack.command("risk set TROJAN none --yes", user="UNOMAIL")

    assert "no e-mail address" in response.json()["text"]
    assert _audit(slack) == [
        ("slack:UNOMAIL", "risk.set", "denied", {"command": "risk set TROJAN none --yes"})
    ]


async def test_reads_by_strangers_are_refused_but_not_audited(slack: SlackClient) -> None:
    await slack.command("risk list", user="UNOMAIL")
    await slack.command("policy", user="USTRANGER")

    assert _audit(slack) == []


async def test_a_denied_click_is_audited_as_the_command_not_a_python_repr(slack: SlackClient) -> None:
    preview = (await slack.command("risk set TROJAN low", user="UADMIN")).json()
    [actions] = [b for b in preview["blocks"] if b["type"] == "actions"]
    nonce = next(e["value"] for e in actions["elements"] if e["action_id"] == CONFIRM_ACTION)

    await slack.action(CONFIRM_ACTION, nonce, user="UANALYST")
    await slack.services.drain()

    [entry] = _audit(slack)
    assert entry[:3] == ("analyst@contoso.example", "risk.set", "denied")
    assert entry[3] is not None and str(entry[3]["command"]).startswith("risk set TROJAN low")
    assert "RiskSet(" not in str(entry[3])
