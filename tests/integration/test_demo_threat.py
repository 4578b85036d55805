"""`mesbot demo threat` reports threats as source events (applied by the caller, so they are alerted),
with the severity Lookout reports and the device's security status; it writes only its audit entry."""

import pytest
from sqlmodel import col, func, select

from integration import tenant
from integration.demo import threats
from integration.errors import InvalidInput
from integration.levels import RiskLevel
from integration.sync import DeviceReport, ThreatReport
from storage.engine import Store
from storage.models import AuditEntry, Classification, Device, Threat
from storage.states import ActivationStatus, SecurityStatus, ThreatStatus
from tests.conftest import NOW


def _secure_device(store: Store) -> str:
    with store.read() as session:
        query = select(Device.id).where(
            col(Device.activation_status) == ActivationStatus.ACTIVATED,
            col(Device.security_status) == SecurityStatus.SECURE,
        )
        return session.exec(query.order_by(col(Device.id))).first() or ""


def test_inject_returns_the_reports_and_writes_only_the_audit_entry(demo_store: Store) -> None:
    device_id = _secure_device(demo_store)
    with demo_store.write() as session:
        classification = session.get(Classification, "TROJAN")
        assert classification is not None
        classification.risk = RiskLevel.LOW  # mesbot's policy: Lookout still reports what it reports
        session.add(classification)
    with demo_store.write() as session:
        threats_before = session.exec(select(func.count()).select_from(Threat)).one()
        events = threats.inject(
            session,
            device_id=device_id,
            classification="trojan",
            app="Free VPN",
            count=3,
            numbered=True,
            now=NOW,
        )
        assert session.exec(select(func.count()).select_from(Threat)).one() == threats_before
        audited = session.exec(select(AuditEntry).where(AuditEntry.action == "demo.threat")).all()
        assert tenant.risk_levels(session)["TROJAN"] == RiskLevel.LOW

    reported = [e for e in events if isinstance(e, ThreatReport)]
    assert [t.app_name for t in reported] == ["Free VPN #1", "Free VPN #2", "Free VPN #3"]
    assert {(t.device_id, t.status, t.risk, t.type, t.detected_at) for t in reported} == {
        (device_id, ThreatStatus.OPEN, RiskLevel.HIGH, "APPLICATION", NOW)
    }
    assert events[-1] == DeviceReport(id=device_id, security_status=SecurityStatus.THREATS_HIGH)
    assert [a.after for a in audited] == [{"device": device_id, "classification": "TROJAN", "count": 3}]


def test_inject_refuses_a_device_that_is_not_activated(demo_store: Store) -> None:
    with demo_store.write() as session:
        pending = session.exec(
            select(Device.id).where(col(Device.activation_status) == ActivationStatus.PENDING)
        ).first()
        assert pending is not None
        with pytest.raises(InvalidInput, match="only activated devices report threats"):
            threats.inject(
                session,
                device_id=pending,
                classification="TROJAN",
                app=None,
                count=1,
                numbered=False,
                now=NOW,
            )
