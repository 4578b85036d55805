"""Names from phones and the directory are hostile (RELIABILITY.md, "terminal" and "injection"): whatever
a device, app, group or connector-error text holds, every renderer shows it without a control or bidi
character, on the lines mesbot meant, and Slack gets no markup from it."""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlmodel import col, func, select

from bot.console import Console
from bot.reply import Reply
from bot.slack import blocks
from integration import connector_errors
from integration.clock import FixedClock
from storage.engine import Store
from storage.models import Device, Threat
from tests.conftest import NOW, make_store, seed_demo
from tests.integration.test_text import FORBIDDEN

ADMIN = "admin@contoso.example"
ATTACKS = [
    "\x1b]0;pwned\x07",
    "\x1b[2J",
    "\r\nFAKE: Applied",
    "\nFAKE: Applied",
    "\x08\x08\x08",
    "\u202egnp.exe",
    "\u2066\u2067\u2068\u2069\u202a\u202b\u202c\u202d\u200e\u200f\u061c",
    "\x85\x9b2J\x7f",
    "\u2028FAKE\u2029",
    "<!channel> & <b>",
    "&amp;",
]
hostile_text = st.one_of(
    st.sampled_from(ATTACKS),
    st.text(max_size=40),
    st.lists(st.one_of(st.sampled_from(ATTACKS), st.text(max_size=5)), max_size=5).map("".join),
)
_ENTITY = re.compile(r"&(amp|lt|gt);")


@dataclass
class Tenant:
    console: Console
    device_id: str  # activated, with one open threat
    pending_id: str  # listed by `enrollment pending`
    lines: dict[str, int]  # how many lines each command answers with plain names

    def rename(self, device: str, app: str, error: str) -> None:
        """Both devices' names, the open threat's app and the open connector error's message."""
        with self.console.store.write() as session:
            found = [session.get(Device, self.device_id), session.get(Device, self.pending_id)]
            threat = session.exec(
                select(Threat).where(Threat.device_id == self.device_id, Threat.status == "OPEN")
            ).one()
            for each in found:
                assert each is not None
                each.name = device
                session.add(each)
            threat.app_name = app
            session.add(threat)
            connector_errors.record(session, "graph:hostile", f"Graph said: {error}", NOW)

    def commands(self) -> dict[str, str]:
        return {
            "status": f"status {self.device_id}",
            "connector": "connector",
            "enrollment pending": "enrollment pending",
        }


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenant]:
    store: Store = make_store("sqlite", tmp_path_factory.mktemp("hostile"))
    seed_demo(store)
    with store.read() as session:
        one_threat = (
            select(Threat.device_id)
            .where(Threat.status == "OPEN")
            .group_by(col(Threat.device_id))
            .having(func.count() == 1)
        )
        device_id = session.exec(one_threat).first()
        pending = session.exec(select(Device).where(Device.activation_status == "PENDING")).first()
    assert device_id is not None and pending is not None
    made = Tenant(Console(store, FixedClock(NOW)), device_id, pending.id, {})
    made.rename("plain", "plain", "plain")
    made.lines = {
        name: len(made.console.run(ADMIN, text).text.split("\n")) for name, text in made.commands().items()
    }
    yield made
    store.dispose()


def assert_shown_safely(reply: Reply, lines: int) -> None:
    """The plain text (terminal, `--json` text) and every Slack text of one reply."""
    assert reply.ok, reply.text
    assert len(reply.text.split("\n")) == lines, reply.text  # no value started a line of its own
    assert not FORBIDDEN & set(reply.text.replace("\n", "")), repr(reply.text)
    assert_slack_texts_safe(blocks.message(reply), lines)


def assert_slack_texts_safe(message: dict[str, Any], lines: int) -> None:
    texts = [message["text"]] + [
        element["text"]
        for block in message["blocks"]
        for element in ([block["text"]] if "text" in block else block.get("elements", []))
    ]
    for text in texts:
        assert not FORBIDDEN & set(text.replace("\n", "")), repr(text)
        assert "<" not in text and ">" not in text, text
        assert "&" not in _ENTITY.sub("", text), text  # every & starts an escape Slack undoes
    assert message["text"].count("\n") <= lines - 1  # no value started a line of its own
    assert sum(t.count("\n") for t in texts[1:]) <= lines - 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(device=hostile_text, app=hostile_text, error=hostile_text)
@example(
    device="\x1b]0;pwned\x07\x1b[2J\r\nFAKE: Applied\x08\u202e",
    app="\r\nFAKE: Applied\u2066",
    error="\x1b[2J\nFAKE: resolved",
)
def test_names_from_phones_and_upstream_errors_are_shown_safely_everywhere(
    tenant: Tenant, device: str, app: str, error: str
) -> None:
    tenant.rename(device, app, error)
    for name, text in tenant.commands().items():
        assert_shown_safely(tenant.console.run(ADMIN, text), tenant.lines[name])
    [shown] = tenant.console.run(ADMIN, f"status {tenant.device_id}").data["devices"]
    assert (shown["name"], shown["open_threats"][0]["app"]) == (device, app)  # JSON keeps raw values


@given(lines=st.lists(hostile_text, min_size=1, max_size=8), ok=st.booleans())
def test_block_kit_never_carries_a_control_or_bidi_character_whatever_the_reply_holds(
    lines: list[str], ok: bool
) -> None:
    """Slack's own safety net: text a handler left raw is neutralised by `slack_markup.escape` (its newlines
    are all taken as mesbot's own here)."""
    text = "\n".join(lines)
    assert_slack_texts_safe(blocks.message(Reply(ok=ok, text=text)), text.count("\n") + 1)
