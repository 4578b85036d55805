"""A signed slash command resent byte for byte (Slack's 5-minute window) is answered, not applied
again: keyed by `trigger_id`, or by the signature when there is none; reads and previews run again."""

import httpx
import pytest
from sqlmodel import func, select

from bot.serve import build
from bot.slack.answer import REPLAYED
from storage.models import AuditEntry
from tests.slack.conftest import SlackClient, settings_for

FORM = "application/x-www-form-urlencoded"


async def _send_twice(slack: SlackClient, body: bytes) -> tuple[httpx.Response, httpx.Response]:
    """The same bytes with the same timestamp and signature, as a captured request is replayed."""
    headers = slack.signed_headers(body, FORM)
    first = await slack.http.post("/slack/events", content=body, headers=headers)
    second = await slack.http.post("/slack/events", content=body, headers=headers)
    return first, second


def _audits(slack: SlackClient, action: str) -> int:
    with slack.services.console.store.read() as session:
        query = select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        return int(session.exec(query).one())


def _heartbeat(slack: SlackClient) -> int:
    reply = slack.services.console.run("analyst@contoso.example", "connector")
    return int(reply.data["connector"]["heartbeat_minutes"])


@pytest.mark.parametrize("trigger_id", [True, False], ids=["by trigger_id", "by signature"])
async def test_a_replayed_connector_change_is_not_applied_again(slack: SlackClient, trigger_id: bool) -> None:
    captured = slack.command_body("connector set heartbeat 45", trigger_id=trigger_id)
    headers = slack.signed_headers(captured, FORM)
    first = await slack.http.post("/slack/events", content=captured, headers=headers)
    assert "Heartbeat frequency set to 45 minutes" in first.json()["text"]
    await slack.command("connector set heartbeat 30")  # someone changes it again afterwards
    replayed = await slack.http.post("/slack/events", content=captured, headers=headers)

    assert replayed.status_code == 200 and replayed.json()["text"] == REPLAYED
    assert _heartbeat(slack) == 30  # the replay did not put 45 back
    assert _audits(slack, "connector.heartbeat_minutes") == 2


async def test_a_replayed_confirmed_risk_change_is_applied_once(slack: SlackClient) -> None:
    first, second = await _send_twice(slack, slack.command_body("risk set TROJAN low --yes"))
    assert first.json()["text"].startswith("Applied: TROJAN high → low")
    assert second.json()["text"] == REPLAYED
    assert _audits(slack, "risk.set") == 1


async def test_a_replay_sent_to_another_process_is_recognised_too(slack: SlackClient) -> None:
    captured = slack.command_body("risk set TROJAN low --yes")
    headers = slack.signed_headers(captured, FORM)
    first = await slack.http.post("/slack/events", content=captured, headers=headers)
    assert first.json()["text"].startswith("Applied: TROJAN high → low")
    # a second mesbot on the same store (another web process behind the load balancer)
    web, _app, services = build(settings_for(slack.fake), slack.services.console.store)
    assert services is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://mesbot") as other:
        replayed = await other.post("/slack/events", content=captured, headers=headers)
    assert replayed.json()["text"] == REPLAYED
    assert _audits(slack, "risk.set") == 1


@pytest.mark.parametrize(
    ("text", "user", "says"),
    [
        ("connector", "UADMIN", "Connector"),  # a read
        ("risk set TROJAN low", "UADMIN", "Preview: TROJAN high → low"),  # a preview changes nothing
        ("connector set heartbeat 45", "UANALYST", "restricted (read-only)"),  # refused: key left free
    ],
)
async def test_reads_previews_and_refusals_are_answered_again(
    slack: SlackClient, text: str, user: str, says: str
) -> None:
    first, second = await _send_twice(slack, slack.command_body(text, user))
    assert says in first.json()["text"]
    assert says in second.json()["text"]
    assert _heartbeat(slack) == 60
