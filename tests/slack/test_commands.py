"""`/lookout` from Slack: every grammar row as each demo identity, identity mapping, 3-second acks."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bot.serve import build
from bot.slack.blocks import fallback
from integration import sync
from integration.demo import threats
from storage.engine import Store
from storage.models import Device
from tests.conftest import NOW
from tests.slack.conftest import SlackClient, settings_for
from tests.slack.fake_slack import FakeSlack

# (text, identities that may run it); everyone else is refused with a reason.
ROWS = [
    ("help", {"UADMIN", "UANALYST", "UALICE"}),
    ("status me", {"UADMIN", "UANALYST", "UALICE"}),
    ("status alice@contoso.example", {"UADMIN", "UANALYST"}),
    ("enrollment", {"UADMIN", "UANALYST"}),
    ('enrollment pending group "Mobile Users"', {"UADMIN", "UANALYST"}),
    ("enrollment disconnected", {"UADMIN", "UANALYST"}),
    ("risk list", {"UADMIN", "UANALYST"}),
    ("risk set TROJAN low", {"UADMIN"}),
    ("risk reset all", {"UADMIN"}),
    ("policy", {"UADMIN", "UANALYST"}),
    ("policy set medium", {"UADMIN"}),
    ("connector", {"UADMIN", "UANALYST"}),
    ("connector set heartbeat 30", {"UADMIN"}),
    ("connector set error-email ops@contoso.example", {"UADMIN"}),
    ('connector groups add "Sales"', {"UADMIN"}),
    ("connector sync device on", {"UADMIN"}),
    ("enrollment settings", {"UADMIN", "UANALYST"}),
    ("enrollment settings disconnected-days 14", {"UADMIN"}),
    ("subscription", {"UADMIN"}),
    ("subscription set restricted-group none", {"UADMIN"}),
    ("subscription consent", {"UADMIN"}),
    ("notify", {"UADMIN", "UANALYST"}),
    ("notify threat-medium on slack", {"UADMIN", "UANALYST"}),
    ("notify quiet 22:00-07:00", {"UADMIN", "UANALYST"}),
    ("audit 5", {"UADMIN"}),
]


def _texts(message: dict[str, Any]) -> list[str]:
    found = []
    for block in message.get("blocks", []):
        if "text" in block:
            found.append(block["text"]["text"])
        for element in block.get("elements", []):
            if isinstance(element.get("text"), str):
                found.append(element["text"])
    return found


@pytest.mark.parametrize("user", ["UADMIN", "UANALYST", "UALICE"])
@pytest.mark.parametrize(("text", "allowed"), ROWS, ids=[row[0] for row in ROWS])
async def test_every_grammar_row_as_each_identity(
    slack: SlackClient, text: str, allowed: set[str], user: str
) -> None:
    response = await slack.command(text, user=user)
    assert response.status_code == 200
    message = response.json()
    assert message["response_type"] == "ephemeral"
    assert 1 <= len(message["blocks"]) <= 50
    first = _texts(message)[0]
    if user in allowed:
        assert not first.startswith(":no_entry:"), first
    else:
        assert first.startswith(":no_entry:")
        assert "cannot" in first or "only" in first.lower()


async def test_reply_matches_the_shared_grammar(slack: SlackClient) -> None:
    """Slack shows what `mesbot ask` shows: same handler, only the rendering differs."""
    response = await slack.command("status alice@contoso.example", user="UANALYST")
    reply = slack.services.console.run("analyst@contoso.example", "status alice@contoso.example")
    assert response.json()["text"] == fallback(reply.text)


async def test_identity_comes_from_the_verified_user_id_not_user_name(slack: SlackClient) -> None:
    response = await slack.command("audit", user="UALICE")  # the body's user_name says "spoofable"
    assert _texts(response.json())[0].startswith(":no_entry:")
    assert [c.body["user"] for c in slack.fake.called("users.info")] == ["UALICE"]


async def test_users_info_is_cached(slack: SlackClient) -> None:
    for _ in range(3):
        await slack.command("help", user="UANALYST")
        await slack.command("status me", user="UANALYST")
    assert len(slack.fake.called("users.info")) == 1


@pytest.mark.parametrize(
    ("user", "says"),
    [
        ("UNOMAIL", "no e-mail address"),
        ("USTRANGER", "not a user in the directory"),
        ("UGHOST", "could not look up"),
    ],
)
async def test_unmapped_slack_users_get_a_clear_reply(slack: SlackClient, user: str, says: str) -> None:
    response = await slack.command("status me", user=user)
    assert response.status_code == 200
    assert says in response.json()["text"]


async def test_slow_work_acks_at_once_and_answers_through_response_url(slack: SlackClient) -> None:
    slack.services.inline_budget = 0.0  # as if the store were slow
    response = await slack.command("enrollment", user="UADMIN")
    assert "Working on it" in response.json()["text"]
    await slack.services.drain()
    [follow_up] = slack.fake.responses()
    assert follow_up["text"].startswith("Enrollment (all devices)")
    assert follow_up["replace_original"] is False


async def test_hostile_names_are_escaped(slack: SlackClient) -> None:
    store = slack.services.console.store
    status = slack.services.console.run("alice@contoso.example", "status me")
    device_id = next(d["id"] for d in status.data["devices"] if d["compliance"] == "compliant")
    with store.write() as session:
        events = threats.inject(
            session,
            device_id=device_id,
            classification="TROJAN",
            app="<!channel> & <b>pwn</b>\r\nFAKE: Applied\u202egnp.exe\u2066\x1b[2J",
            count=1,
            numbered=False,
            now=NOW,
        )
        sync.apply(session, events, now=NOW)
        device = session.get(Device, device_id)
        assert device is not None
        device.name = "Alice\u2028FAKE: Applied\x85\u200f"
        session.add(device)
    response = await slack.command("status alice@contoso.example", user="UADMIN")
    message = response.json()
    everything = " ".join(_texts(message)) + message["text"]
    assert "<!channel>" not in everything and "<b>" not in everything
    assert (
        "&lt;!channel&gt; &amp; &lt;b&gt;pwn&lt;/b&gt;␍␊FAKE: Applied⟨U+202E⟩gnp.exe⟨U+2066⟩␛[2J"
        in everything
    )
    assert "Alice⟨U+2028⟩FAKE: Applied⟨U+0085⟩⟨U+200F⟩" in everything
    for text in [*_texts(message), message["text"]]:  # CR/LF and bidi stay out of every text object
        assert not set(text) & set("\r\x1b\x85\u202e\u2066\u200f\u2028")
        assert not any(line.startswith("FAKE") for line in text.split("\n"))


async def test_a_reply_with_500_devices_stays_within_slack_limits(slack: SlackClient) -> None:
    with slack.services.console.store.write() as session:
        for n in range(500):
            session.add(
                Device(
                    id=f"bulk-{n:04d}",
                    owner_email="alice@contoso.example",
                    name=f"<!here> phone {n}",
                    platform="IOS",
                    activation_status="ACTIVATED",
                    protection_status="PROTECTED",
                    security_status="SECURE",
                    checkin_time=NOW - timedelta(hours=1),
                    enrolled_at=NOW - timedelta(days=10),
                )
            )
    response = await slack.command("status alice@contoso.example", user="UADMIN")
    message = response.json()
    assert len(message["blocks"]) <= 50
    assert all(len(text) <= 3000 for text in _texts(message))
    assert len(message["text"]) <= 3000
    assert "more lines not shown" in _texts(message)[-1]
    assert "<!here>" not in str(message)


async def test_healthz_and_metrics(slack: SlackClient) -> None:
    await slack.command("status me", user="UALICE")
    health = (await slack.http.get("/healthz")).json()
    assert health["db"] == "ok" and health["source"] == "demo" and health["connector"] == "enabled"
    assert "last_heartbeat" in health and health["scheduler"] == "off"
    metrics = (await slack.http.get("/metrics")).text
    assert 'mesbot_commands_total{command="status",outcome="ok"} 1.0' in metrics
    assert "mesbot_command_seconds_bucket" in metrics


async def test_socket_mode_takes_slack_off_the_http_endpoint(
    fake_slack: FakeSlack, slack_store: Store
) -> None:
    web, app, services = build(settings_for(fake_slack, SLACK_APP_TOKEN="xapp-test"), slack_store)
    assert app is not None and services is not None  # the Bolt app runs over the socket instead
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://mesbot") as http:
        client = SlackClient(http, services, fake_slack)
        response = await client.command("help")
    assert response.status_code == 404 and fake_slack.calls == []


def test_the_manifest_asks_for_what_the_app_uses() -> None:
    manifest = yaml.safe_load((Path(__file__).parents[2] / "slack" / "manifest.yml").read_text())
    assert {"commands", "chat:write", "users:read.email"} <= set(manifest["oauth_config"]["scopes"]["bot"])
    assert manifest["features"]["slash_commands"][0]["command"] == "/lookout"
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True


async def test_hostile_text_echoed_in_a_refusal_is_escaped(slack: SlackClient) -> None:
    response = await slack.command('connector groups add "<!channel> & <@U1>"', user="UADMIN")
    message = response.json()
    everything = " ".join(_texts(message)) + message["text"]
    assert _texts(message)[0].startswith(":no_entry: There is no group named")
    assert "<!channel>" not in everything and "<@U1>" not in everything
    assert "&lt;!channel&gt; &amp; &lt;@U1&gt;" in everything


async def test_a_command_mentioning_the_word_payload_reaches_its_listener(slack: SlackClient) -> None:
    # Bolt takes any form body containing "payload" for an interaction (and answers 404).
    response = await slack.command("status payload@contoso.example", user="UADMIN")

    assert response.status_code == 200
    assert "payload@contoso.example has no devices" in response.json()["text"]


async def test_quiet_hours_set_from_slack_default_to_the_profiles_time_zone(slack: SlackClient) -> None:
    slack.fake.zones["UANALYST"] = "Europe/Stockholm"
    await slack.command("notify quiet 22:00-07:00", user="UANALYST")
    await slack.command("notify quiet 23:00-06:00 America/New_York", user="UADMIN")
    console = slack.services.console
    assert (
        console.run("analyst@contoso.example", "notify").data["quiet_hours"] == "22:00-07:00 Europe/Stockholm"
    )
    assert (
        console.run("admin@contoso.example", "notify").data["quiet_hours"] == "23:00-06:00 America/New_York"
    )
    await slack.command("notify quiet 21:00-06:00", user="UADMIN")  # no profile zone known: UTC
    assert console.run("admin@contoso.example", "notify").data["quiet_hours"] == "21:00-06:00 UTC"


async def test_a_known_users_read_is_answered_in_the_ack_whatever_the_budget(slack: SlackClient) -> None:
    """Once the user's e-mail is cached, a read on SQLite awaits nothing (it runs on the event loop):
    it is answered in the ack itself, even with a budget that would otherwise follow up."""
    await slack.command("help", user="UADMIN")  # caches UADMIN's e-mail
    slack.services.inline_budget = 0.0
    response = await slack.command("enrollment", user="UADMIN")
    assert response.json()["text"].startswith("Enrollment (all devices)")
    await slack.services.drain()
    assert slack.fake.responses() == []


async def test_a_known_users_change_still_races_the_budget(slack: SlackClient) -> None:
    """A change may wait for the write lock: it keeps the budget and follows up, cached user or not."""
    await slack.command("help", user="UADMIN")
    slack.services.inline_budget = 0.0
    response = await slack.command("policy set high --yes", user="UADMIN")
    assert "Working on it" in response.json()["text"]
    await slack.services.drain()
    [follow_up] = slack.fake.responses()
    assert "high" in follow_up["text"]
