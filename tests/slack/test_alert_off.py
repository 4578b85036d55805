"""The "Turn off these alerts" button of a Slack alert: it turns the category off on Slack for the
person the alert was sent to, once, audited; a forged value, another person's click or a replayed
request changes nothing."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bot.serve import build
from bot.slack.alert_actions import FORGED, NOT_YOURS, REPLAYED
from integration import preferences
from notifications import unsubscribe
from notifications.slack_blocks import TURN_OFF_ACTION, TurnOff, alert_blocks
from storage.engine import Store
from storage.models import AuditEntry, DirectoryUser
from tests.notifications.payloads import threat
from tests.slack.conftest import SlackClient, settings_for
from tests.slack.fake_slack import FakeSlack

KEY = b"alert-key-for-tests"
ADMIN = "admin@contoso.example"
ANALYST = "analyst@contoso.example"
FORM = "application/x-www-form-urlencoded"
TURNED_OFF = "Turned off threat-high on Slack. `/lookout notify threat-high on slack` turns it back on."


@pytest.fixture
async def alerts(fake_slack: FakeSlack, slack_store: Store) -> AsyncIterator[SlackClient]:
    web, app, services = build(settings_for(fake_slack), slack_store, alert_key=lambda: KEY)
    assert services is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://mesbot") as http:
        yield SlackClient(http, services, fake_slack, app)
    await services.drain()


def user_id(slack: SlackClient, email: str) -> str:
    with slack.services.console.store.read() as session:
        user = session.exec(select(DirectoryUser).where(DirectoryUser.email == email)).one()
        return user.id


def slack_on(slack: SlackClient, email: str, category: str = "threat-high") -> dict[str, bool]:
    with slack.services.console.store.read() as session:
        return preferences.preferences(session, user_id(slack, email))[category]


def notify_audits(slack: SlackClient) -> list[AuditEntry]:
    with slack.services.console.store.read() as session:
        return list(session.exec(select(AuditEntry).where(AuditEntry.action == "notify")).all())


def button_value(email_user: str, slack: SlackClient, category: str = "threat-high") -> str:
    """The value on the button of the alert the deliverer would send to that user."""
    token = unsubscribe.make_token(KEY, user_id(slack, email_user), category, "slack")
    _, blocks = alert_blocks(threat(), turn_off=TurnOff(category, token))
    [button] = blocks[-1]["elements"]
    return str(button["value"])


def texts(slack: SlackClient) -> list[tuple[Any, str]]:
    return [(r.get("replace_original"), r["text"]) for r in slack.fake.responses()]


async def test_the_recipient_turns_the_category_off_on_slack_once_audited(alerts: SlackClient) -> None:
    assert slack_on(alerts, ADMIN) == {"email": True, "slack": True}  # the demo admin's opt-in
    value = button_value(ADMIN, alerts)
    body = alerts.action_body(TURN_OFF_ACTION, value, user="UADMIN")
    assert (await alerts.signed(body, FORM)).status_code == 200
    await alerts.services.drain()

    assert slack_on(alerts, ADMIN) == {"email": True, "slack": False}
    [entry] = notify_audits(alerts)
    assert entry.actor == ADMIN and entry.outcome == "applied"
    assert entry.before == {"threat-high": {"email": True, "slack": True}}
    assert entry.after == {"threat-high": {"email": True, "slack": False}}
    assert texts(alerts) == [(True, TURNED_OFF)]


async def test_a_replayed_click_changes_nothing_more(alerts: SlackClient) -> None:
    body = alerts.action_body(TURN_OFF_ACTION, button_value(ADMIN, alerts), user="UADMIN")
    await alerts.signed(body, FORM)
    await alerts.services.drain()
    alerts.services.console.run(ADMIN, "notify threat-high on slack")  # the admin turns it back on
    await alerts.signed(body, FORM)  # the same signed request, captured and sent again
    await alerts.services.drain()

    assert slack_on(alerts, ADMIN) == {"email": True, "slack": True}
    assert len(notify_audits(alerts)) == 2  # the click and the admin's own command
    assert texts(alerts) == [(True, TURNED_OFF), (False, REPLAYED)]


async def test_a_second_click_on_the_same_alert_changes_nothing(alerts: SlackClient) -> None:
    value = button_value(ADMIN, alerts)
    for _ in range(2):
        await alerts.action(TURN_OFF_ACTION, value, user="UADMIN")
        await alerts.services.drain()
    assert slack_on(alerts, ADMIN) == {"email": True, "slack": False}
    assert len(notify_audits(alerts)) == 1


async def test_someone_else_clicking_a_forwarded_alert_changes_nothing(alerts: SlackClient) -> None:
    alerts.services.console.run(ANALYST, "notify threat-high on slack")
    await alerts.action(TURN_OFF_ACTION, button_value(ADMIN, alerts), user="UANALYST")
    await alerts.services.drain()

    assert slack_on(alerts, ADMIN) == {"email": True, "slack": True}
    assert slack_on(alerts, ANALYST) == {"email": False, "slack": True}
    assert texts(alerts) == [(False, NOT_YOURS.format(command="/lookout"))]
    denied = [e for e in notify_audits(alerts) if e.outcome == "denied"]
    assert [(e.actor, e.after) for e in denied] == [
        (ANALYST, {"turn_off": "threat-high", "channel": "slack"})
    ]


@pytest.mark.parametrize(
    "forge",
    [
        lambda value: value[:-2] + ("AA" if not value.endswith("AA") else "BB"),
        lambda value: unsubscribe.make_token(b"not the key", value.split(".")[0], "threat-high", "slack"),
        lambda value: "threat-high:off:slack",
        lambda value: "",
    ],
)
async def test_a_forged_value_changes_nothing(alerts: SlackClient, forge: Any) -> None:
    await alerts.action(TURN_OFF_ACTION, forge(button_value(ADMIN, alerts)), user="UADMIN")
    await alerts.services.drain()
    assert slack_on(alerts, ADMIN) == {"email": True, "slack": True}
    assert texts(alerts) == [(False, FORGED)]
    assert [e.outcome for e in notify_audits(alerts)] == ["denied"]


async def test_a_token_for_another_category_turns_off_only_that_one(alerts: SlackClient) -> None:
    alerts.services.console.run(ADMIN, "notify digest on both")
    await alerts.action(TURN_OFF_ACTION, button_value(ADMIN, alerts, "digest"), user="UADMIN")
    await alerts.services.drain()
    assert slack_on(alerts, ADMIN, "digest") == {"email": True, "slack": False}
    assert slack_on(alerts, ADMIN) == {"email": True, "slack": True}
