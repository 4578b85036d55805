"""Each change command has one audit action name: a refused attempt and an applied change of the
same command are recorded under it."""

import pytest
from sqlmodel import col, select

from bot.console import Console
from storage.models import AuditEntry

NEW_GUID = "0b5e8f6a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
CHANGES = [
    "risk set TROJAN low --yes",
    "risk reset TROJAN --yes",
    "policy set medium --yes",
    "connector set heartbeat 30",
    "connector set error-email oncall@contoso.example",
    'connector groups remove "Lookout Pilot"',
    'connector groups add "Lookout Pilot"',
    "connector sync device off",
    "connector sync threat off",
    "enrollment settings disconnected-days 14",
    f"subscription set tenant {NEW_GUID}",
    f"subscription set restricted-group {NEW_GUID}",
]


def _last(console: Console) -> tuple[str, str]:
    with console.store.read() as session:
        entry = session.exec(select(AuditEntry).order_by(col(AuditEntry.id).desc())).first()
        assert entry is not None
        return entry.action, entry.outcome.value


# What must be in place first for the change to change something.
SETUP = {
    "risk reset TROJAN --yes": "risk set TROJAN low --yes",
    'connector groups add "Lookout Pilot"': 'connector groups remove "Lookout Pilot"',
}


@pytest.mark.parametrize("text", CHANGES)
def test_refused_and_applied_attempts_share_the_action_name(console: Console, text: str) -> None:
    if text in SETUP:
        assert console.run("admin@contoso.example", SETUP[text]).ok
    refused = console.run("alice@contoso.example", text)  # no console access
    assert not refused.ok
    denied_action, outcome = _last(console)
    assert outcome == "denied"

    applied = console.run("admin@contoso.example", text)
    assert applied.ok, applied.text

    assert _last(console) == (denied_action, "applied")
