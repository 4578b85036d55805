"""Policy drift (DESIGN §8): a classification Lookout reports at another severity than mesbot's catalogue
is shown by `risk list` with the console change to make, and kept as a connector error until mended."""

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlmodel import col, select

from bot.console import Console
from integration import connector_work, sync
from integration.demo.data import ADMIN
from integration.sources import lookout_events
from integration.sync import ThreatReport
from storage.engine import Store
from storage.models import ConnectorError, OutboxMessage
from storage.states import RiskLevel
from tests.conftest import NOW
from tests.integration.test_sync import clean_device, opened

FIXTURES = Path(__file__).parent / "fixtures" / "lookout-events"
ERROR_EMAIL = "mailto:mobile-ops@contoso.example"


def drift_errors(store: Store) -> dict[str, ConnectorError]:
    with store.read() as session:
        rows = session.exec(
            select(ConnectorError).where(col(ConnectorError.fingerprint).startswith("policy-drift:"))
        )
        return {e.fingerprint: e for e in rows.all()}


def notices(store: Store) -> list[OutboxMessage]:
    with store.read() as session:
        query = select(OutboxMessage).where(OutboxMessage.category == "connector-errors")
        return [r for r in session.exec(query).all() if r.recipient_id == ERROR_EMAIL]


def test_a_severity_lookout_reports_differently_is_drift_with_the_console_change_to_make(
    console: Console, demo_store: Store
) -> None:
    with demo_store.write() as session:
        # OUT_OF_DATE_OS is medium in mesbot's catalogue; this Lookout console reports it as high
        sync.apply(session, [opened(clean_device(session).id, "OUT_OF_DATE_OS")], now=NOW)

    reply = console.run(ADMIN, "risk list")
    assert reply.data["drift"] == [
        {
            "name": "OUT_OF_DATE_OS",
            "reported": "high",
            "risk": "medium",
            "seen_at": reply.data["drift"][0]["seen_at"],
            "change": "in the Lookout console (Mobile Risk Policy), set OUT_OF_DATE_OS to medium "
            "(it reports high)",
        }
    ]
    assert "Policy drift" in reply.text and "set OUT_OF_DATE_OS to medium" in reply.text
    assert list(drift_errors(demo_store)) == ["policy-drift:OUT_OF_DATE_OS"]
    assert len(notices(demo_store)) == 1  # announced once to the error address


def test_drift_is_announced_once_and_resolved_when_the_catalogue_follows_lookout(
    console: Console, demo_store: Store
) -> None:
    with demo_store.write() as session:
        device = clean_device(session).id
        sync.apply(session, [opened(device, "OUT_OF_DATE_OS")], now=NOW)
        sync.apply(session, [opened(device, "OUT_OF_DATE_OS")], now=NOW + timedelta(minutes=5))
        connector_work.heartbeat(session, NOW + timedelta(hours=1))
    assert len(notices(demo_store)) == 1
    assert drift_errors(demo_store)["policy-drift:OUT_OF_DATE_OS"].resolved_at is None

    assert console.run(ADMIN, "risk set OUT_OF_DATE_OS high --yes").ok
    assert console.run(ADMIN, "risk list").data["drift"] == []  # shown live
    with demo_store.write() as session:
        connector_work.heartbeat(session, NOW + timedelta(hours=2))  # the errors follow at the next heartbeat
    assert drift_errors(demo_store)["policy-drift:OUT_OF_DATE_OS"].resolved_at is not None


def test_lookout_moving_to_mesbots_level_ends_the_drift(demo_store: Store) -> None:
    with demo_store.write() as session:
        device = clean_device(session).id
        sync.apply(session, [opened(device, "OUT_OF_DATE_OS")], now=NOW)
        fixed = opened(device, "OUT_OF_DATE_OS", at=NOW + timedelta(hours=1))
        sync.apply(session, [replace(fixed, risk=RiskLevel.MEDIUM)], now=NOW + timedelta(hours=1))
    assert drift_errors(demo_store)["policy-drift:OUT_OF_DATE_OS"].resolved_at is not None


def test_lookouts_advisory_counts_as_none(console: Console, demo_store: Store) -> None:
    """The real `aspl_advisory_open` sample: OUT_OF_DATE_ASPL at ADVISORY, which mesbot's catalogue has
    at low, so Lookout's console is one step laxer than mesbot wants."""
    event = json.loads((FIXTURES / "aspl_advisory_open.json").read_text())
    reports = lookout_events.parse(event)
    with demo_store.write() as session:
        device = clean_device(session).id
        named = [replace(r, device_id=device) for r in reports if isinstance(r, ThreatReport)]
        sync.apply(session, named, now=NOW)
    drift = console.run(ADMIN, "risk list").data["drift"]
    assert [(d["name"], d["reported"], d["risk"]) for d in drift] == [("OUT_OF_DATE_ASPL", "none", "low")]
