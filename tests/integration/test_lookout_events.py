"""Every real Lookout event sample (fixtures/lookout-events/, copied from ../shared so the tests read
nothing outside the repository) parses, and what mesbot tracks applies through `sync.apply`."""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from integration import sync
from integration.sources.lookout_events import MalformedEvent, parse
from integration.sync import DeviceReport, ThreatReport
from storage.engine import Store
from storage.models import Device, Threat
from storage.states import ActivationStatus, Platform, ProtectionStatus, RiskLevel, ThreatStatus
from tests.conftest import NOW

FIXTURES = Path(__file__).parent / "fixtures" / "lookout-events"
SAMPLES = sorted(FIXTURES.glob("*.json"))


def sample(name: str) -> dict[str, Any]:
    return dict(json.loads((FIXTURES / name).read_text(encoding="utf-8")))


def test_there_are_the_fifteen_real_samples() -> None:
    assert len(SAMPLES) == 15


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_real_sample_parses(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    events = parse(event)
    if event["type"] in ("AUDIT", "SMISHING_ALERT"):
        assert events == []
    else:
        assert len(events) == 1


def test_a_threat_names_its_device_by_the_actor_and_reads_advisory_as_none() -> None:
    [threat] = parse(sample("app_risk_created.json"))
    assert isinstance(threat, ThreatReport)
    assert (threat.id, threat.device_id) == (
        "a8da3393-7896-431b-875d-945993cfdbf3",
        "951294c6-d9c9-482b-955c-8879410a76b1",
    )
    assert (threat.status, threat.classification, threat.risk, threat.type) == (
        ThreatStatus.OPEN,
        "RISKWARE",
        RiskLevel.LOW,
        "APPLICATION",
    )
    assert threat.app_name == "دعا و قرآن و ادعیه منتخب" and threat.package_name == "com.doa.start"
    assert threat.resolved_at is None
    [advisory] = parse(sample("aspl_advisory_open.json"))
    assert isinstance(advisory, ThreatReport) and advisory.risk == RiskLevel.NONE
    [resolved] = parse(sample("app_risk_resolved.json"))
    assert isinstance(resolved, ThreatReport)
    assert resolved.status == ThreatStatus.RESOLVED and resolved.resolved_at == resolved.detected_at
    [web] = parse(sample("malicious_content.json"))
    assert isinstance(web, ThreatReport) and web.url is not None


def test_a_system_actor_names_no_device_and_the_stored_threat_keeps_its_own() -> None:
    [threat] = parse(sample("pcp_paused_detected_4.json"))
    assert isinstance(threat, ThreatReport) and threat.device_id == ""


def test_a_device_update_reads_the_nested_status() -> None:
    [device] = parse(sample("device_update.json"))
    assert isinstance(device, DeviceReport)
    assert (device.id, device.platform, device.activation_status, device.protection_status) == (
        "f1557f3b-f90a-4260-a7c5-5a7bf975524c",
        Platform.ANDROID,
        ActivationStatus.ACTIVATED,
        ProtectionStatus.PROTECTED,
    )
    assert (device.os_version, device.security_patch_level, device.manufacturer, device.model) == (
        "14",
        "2025-02-01",
        "samsung",
        "sm-a346b",
    )
    assert device.client_version == "9.1.1.1517"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda e: e.update(type="MYSTERY"), "unknown event type"),
        (lambda e: e.pop("threat"), "without a `threat` object"),
        (lambda e: e["threat"].update(classifications=[]), "no classification"),
        (lambda e: e["threat"].update(classifications=["NOT_A_THING"]), "unknown threat classification"),
        (lambda e: e["threat"].update(severity="CATASTROPHIC"), "unknown threat severity"),
        (lambda e: e["threat"].update(status="MAYBE"), "unknown threat status"),
        (lambda e: e.update(created_time="yesterday"), "is not ISO 8601"),
        (lambda e: e.update(created_time="2025-02-20T09:55:18"), "has no time zone"),
        (lambda e: e["threat"].update(guid="<script>"), "threat guid is missing or not a guid"),
    ],
)
def test_a_malformed_event_says_what_is_wrong(change: Any, says: str) -> None:
    event = sample("app_risk_created.json")
    change(event)
    with pytest.raises(MalformedEvent, match=says):
        parse(event)


def test_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="not a JSON object"):
        parse([1, 2])  # type: ignore[arg-type]


def test_the_real_threat_samples_apply_and_an_unknown_device_is_skipped_with_the_reason(
    demo_store: Store,
) -> None:
    events = [e for path in SAMPLES for e in parse(json.loads(path.read_text(encoding="utf-8")))]
    threats = [e for e in events if isinstance(e, ThreatReport)]
    with demo_store.write() as session:  # the samples' devices, as the enrollment would have added them
        for device_id in {t.device_id for t in threats if t.device_id}:
            session.add(
                Device(
                    id=device_id,
                    owner_email="owner@contoso.example",
                    platform=Platform.ANDROID,
                    activation_status=ActivationStatus.ACTIVATED,
                    protection_status=ProtectionStatus.PROTECTED,
                    security_status="SECURE",
                    checkin_time=NOW - timedelta(hours=1),
                    enrolled_at=NOW - timedelta(days=10),
                )
            )
    with demo_store.write() as session:
        applied = sync.apply(session, events, now=NOW)
    with demo_store.read() as session:
        stored = {t.id for t in session.exec(select(Threat)).all()}
    assert {t.id for t in threats if t.device_id} <= stored
    # a device event without an owner cannot create a device; the SYSTEM-actor update names no device
    # and its threat was never seen: both skipped, saying why
    assert applied.skipped == [
        "device f1557f3b-f90a-4260-a7c5-5a7bf975524c: new, but the report lacks owner_email",
        "threat 755c874a-48a9-4157-af4b-e5c41bb592aa: no device is named or known",
    ]
    assert len(applied.threats_opened) == len([t for t in threats if t.device_id and t.status == "OPEN"])
