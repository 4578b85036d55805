"""Slack alerts rendered from outbox payloads: every untrusted string escaped whatever it holds,
within Slack's limits, and a threat alert that says what happened, what to do and why."""

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications.slack_blocks import TURN_OFF_ACTION, TurnOff, alert_blocks
from notifications.slack_markup import MAX_BLOCKS, MAX_TEXT
from tests.notifications import slack_payloads as payloads
from tests.notifications.slack_payloads import HOSTILE

DATE = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9: -]+ UTC>")  # mesbot's own markup
ENTITY = re.compile(r"&(amp|lt|gt);")
hostile = st.text(
    alphabet=st.sampled_from(list("<>&!@#|*_~`\n\r\x1b\u202e aZ9")) | st.characters(), max_size=300
)


def texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every text object's text in a message (sections, fields, contexts, headers, buttons)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("type") in ("mrkdwn", "plain_text"):
                found.append(value["text"])
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(blocks)
    return found


def assert_safe(text: str, blocks: list[dict[str, Any]]) -> None:
    for shown in [text, *texts(blocks)]:
        bare = DATE.sub("", shown)
        assert "<" not in bare and ">" not in bare, shown
        assert "&" not in ENTITY.sub("", bare), shown
        assert not any(ch in shown for ch in "\x1b\r\u202e"), repr(shown)


def assert_within_limits(text: str, blocks: list[dict[str, Any]]) -> None:
    assert len(blocks) <= MAX_BLOCKS
    assert all(len(shown) <= MAX_TEXT for shown in texts(blocks))
    assert all(len(b["text"]["text"]) <= 150 for b in blocks if b["type"] == "header")
    assert len(text) <= 300
    for block in blocks:
        assert len(block.get("fields", [])) <= 10
        assert all(len(field["text"]) <= 2_000 for field in block.get("fields", []))


def test_every_kind_renders_hostile_names_escaped() -> None:
    for payload in payloads.every_kind(HOSTILE):
        text, blocks = alert_blocks(payload, turn_off=TurnOff("threat-high", "tok"))
        assert_safe(text, blocks)
        assert_within_limits(text, blocks)
        shown = "\n".join(texts(blocks))
        if payload["kind"] != "test":  # the only kind without an untrusted string
            assert "&lt;!channel&gt; &lt;@U123&gt; &amp; &lt;script&gt;" in shown, payload["kind"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=hostile)
def test_whatever_a_phone_sends_no_markup_or_control_character_reaches_slack(text: str) -> None:
    for payload in payloads.every_kind(text):
        rendered, blocks = alert_blocks(payload, turn_off=None)
        assert_safe(rendered, blocks)
        assert_within_limits(rendered, blocks)


def test_a_threat_alert_says_what_happened_what_to_do_and_why() -> None:
    text, blocks = alert_blocks(payloads.threat(), turn_off=TurnOff("threat-high", "signed-token"))
    shown = "\n".join(texts(blocks))
    assert text == "High-risk threat TROJAN on Alice's iPhone (alice@contoso.example)"
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "High-risk threat: TROJAN", "emoji": False},
    }
    for expected in (
        "*Device*\nAlice's iPhone · IOS · dev-1",
        "*Owner*\nalice@contoso.example",
        "*Classification*\nTROJAN (app)",
        "*Current risk*\nhigh",
        "*App*\nFlashlight",
        "*Detected*\n<!date^1795694400^{date_short_pretty} {time}|2026-11-26 12:00 UTC>",
        "*What to do:* Ask the owner to remove the app",
        "`/lookout status dev-1`",
        "*Why you got this:* you turned on `threat-high` alerts on Slack.",
        "`/lookout notify threat-high off slack` turns them off.",
    ):
        assert expected in shown
    [button] = blocks[-1]["elements"]
    assert button["action_id"] == TURN_OFF_ACTION and button["value"] == "signed-token"
    assert button["text"]["text"] == "Turn off these alerts"


def test_no_button_without_a_turn_off() -> None:
    _, blocks = alert_blocks(payloads.threat(), turn_off=None)
    assert all(block["type"] != "actions" for block in blocks)


def test_a_threat_without_app_or_name_still_reads() -> None:
    _, blocks = alert_blocks(payloads.threat(name=None, app=None), turn_off=None)
    shown = "\n".join(texts(blocks))
    assert "*Device*\n(unnamed) · IOS · dev-1" in shown and "*App*\n—" in shown


def test_a_huge_digest_stays_within_slack_limits_and_says_what_was_left_out() -> None:
    text, blocks = alert_blocks(payloads.digest("x" * 5_000, items=10_000), turn_off=None)
    assert_within_limits(text, blocks)
    assert sum(len(t) for t in texts(blocks)) <= 16_000
    more = [t for t in texts(blocks) if t.endswith("more not shown")]
    assert len(more) == 7 and all(t.startswith("+") for t in more)
    assert text == "On-call digest: 10000 new, 10000 ongoing, 10000 resolved connector errors"
    assert "*Expired:* 10,000 alerts" in "\n".join(texts(blocks))
    assert "posts the on-call digest here" in texts(blocks)[-1]


def test_a_catchup_shows_what_fits_and_counts_the_rest() -> None:
    text, blocks = alert_blocks(payloads.catchup("&" * 500, count=5_000), turn_off=None)
    assert_within_limits(text, blocks)
    shown = texts(blocks)
    assert "+" in shown[-2] and shown[-2].endswith("more not shown")
    listed = sum(t.count("• ") for t in shown)
    assert int(shown[-2][1:].split()[0].replace(",", "")) == 5_000 - listed


def test_a_storm_counts_every_folded_threat() -> None:
    text, blocks = alert_blocks(payloads.storm(count=40), turn_off=TurnOff("threat-high", "t"))
    shown = "\n".join(texts(blocks))
    assert text == "40 high-risk TROJAN threats"
    assert "dev-1-9" in shown and "+30 more not shown" in shown


def test_an_empty_digest_list_is_left_out() -> None:
    digest = payloads.digest(items=0)
    _, blocks = alert_blocks(digest, turn_off=None)
    assert [b["type"] for b in blocks] == ["header", "context", "context"]
