"""The enrollment lifecycle and the exact-name rule for enrollment groups."""

from datetime import timedelta

import pytest
from sqlmodel import select

from integration import enrollment, sync, tenant
from integration.clock import FixedClock
from integration.errors import InvalidInput, NotFound
from storage.engine import Store
from storage.models import AuditEntry, Device
from tests.conftest import NOW
from tests.integration.factories import device


def test_disconnected_by_age() -> None:
    assert not enrollment.is_disconnected(NOW - timedelta(days=29, hours=23), NOW, 30)
    assert enrollment.is_disconnected(NOW - timedelta(days=30), NOW, 30)
    assert enrollment.is_disconnected(None, NOW, 30)


def test_sweep_follows_the_clock(store: Store) -> None:
    """Devices drift into disconnected as an injected clock moves on, and come back on check-in."""
    clock = FixedClock(NOW)
    with store.write() as session:
        fresh = device(session, checkin=NOW - timedelta(days=1)).id
        older = device(session, checkin=NOW - timedelta(days=20)).id
        pending = device(session, activation="PENDING", checkin=None).id

    def sweep() -> enrollment.SweepResult:
        with store.write() as session:
            return enrollment.sweep(session, clock.now(), days=30)

    def protection(device_id: str) -> str:
        with store.read() as session:
            row = session.get(Device, device_id)
            assert row is not None
            return row.protection_status

    assert sweep() == enrollment.SweepResult(0, 0)
    clock.at = NOW + timedelta(days=10)  # `older` is now 30 days silent
    assert sweep() == enrollment.SweepResult(disconnected=1, reconnected=0, flips=1)  # it was compliant
    assert (protection(fresh), protection(older), protection(pending)) == (
        "PROTECTED",
        "DISCONNECTED",
        "PROTECTED",
    )

    with store.write() as session:  # the source reports it checked in
        sync.apply(session, [sync.DeviceReport(id=older, checkin_time=clock.now())], now=clock.now())
    assert protection(older) == "PROTECTED"

    clock.at = NOW + timedelta(days=29)
    assert sweep() == enrollment.SweepResult(disconnected=1, reconnected=0, flips=1)  # `fresh` went silent
    assert protection(fresh) == "DISCONNECTED"


def test_a_disconnected_device_that_checks_in_again_is_swept_back(store: Store) -> None:
    with store.write() as session:
        row = device(session, protection="DISCONNECTED", checkin=NOW - timedelta(hours=1))
    with store.write() as session:
        assert enrollment.sweep(session, NOW, days=30) == enrollment.SweepResult(0, 1, flips=1)
        assert session.get(Device, row.id).protection_status == "PROTECTED"  # type: ignore[union-attr]


def test_pending_becomes_activated(store: Store) -> None:
    with store.write() as session:
        row = device(session, activation="PENDING", checkin=None)
        enrollment.activate(row, NOW)
        assert (row.activation_status, row.protection_status, row.checkin_time) == (
            "ACTIVATED",
            "PROTECTED",
            NOW,
        )
        with pytest.raises(InvalidInput, match="not pending"):
            enrollment.activate(row, NOW)
        enrollment.deactivate(row)
        assert row.activation_status == "DEACTIVATED"


def test_changing_disconnected_days_resweeps_and_is_audited(store: Store) -> None:
    with store.write() as session:
        device(session, checkin=NOW - timedelta(days=10))
    with store.write() as session:
        result = enrollment.set_disconnected_days(session, 7, actor="admin@contoso.example", at=NOW)
        assert result == enrollment.SweepResult(disconnected=1, reconnected=0, flips=1)
        assert enrollment.set_disconnected_days(session, 7, actor="admin@contoso.example", at=NOW) is None
    with store.read() as session:
        assert tenant.enrollment_settings(session).disconnected_days == 7
        entries = session.exec(select(AuditEntry)).all()
    assert [(e.action, e.before, e.after) for e in entries] == [
        (
            "enrollment.disconnected_days",
            {"disconnected_days": 30},
            {"disconnected_days": 7, "disconnected": 1, "reconnected": 0},
        )
    ]


def test_groups_match_exactly(demo_store: Store) -> None:
    with demo_store.read() as session:
        assert enrollment.find_group(session, "Mobile Users").name == "Mobile Users"
        with pytest.raises(NotFound, match='case-sensitive: did you mean "Mobile Users"'):
            enrollment.find_group(session, "mobile users")
        with pytest.raises(NotFound, match='no group named "Nope"') as refused:
            enrollment.find_group(session, "Nope")
        assert "did you mean" not in str(refused.value)
