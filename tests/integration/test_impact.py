"""Risk and policy changes: the preview changes nothing, and apply does exactly what it previewed."""

from collections import defaultdict

import pytest
from sqlmodel import col, select

from integration import compliance, devices, impact, tenant
from integration.catalogue import CATALOGUE
from integration.impact import RiskChange
from integration.levels import RiskLevel
from storage.engine import Store
from storage.models import AuditEntry, Classification, CompliancePolicy, Device, Threat
from tests.conftest import NOW, seed_demo
from tests.integration.factories import device, threat

H, M, L, N = RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW, RiskLevel.NONE

CHANGES = [
    RiskChange({"OUT_OF_DATE_OS": H}),
    RiskChange({"TROJAN": N}),
    RiskChange({"TROJAN": L, "ROOT_JAILBREAK": L}),
    RiskChange({"RISKWARE": H, "ADWARE": M}),
    RiskChange({}, policy=M),
    RiskChange({}, policy=L),
    RiskChange({"OUT_OF_DATE_OS": L}, policy=L),
    RiskChange({name: N for name in CATALOGUE}),
]


def _counts(store: Store) -> compliance.EnrollmentCounts:
    with store.read() as session:
        return compliance.enrollment_counts(
            session, tenant.risk_levels(session), tenant.policy_level(session)
        )


def _settings(store: Store) -> tuple[list[tuple[str, str]], str]:
    with store.read() as session:
        rows = session.exec(
            select(Classification.name, Classification.risk).order_by(Classification.name)
        ).all()
        policy = session.get(CompliancePolicy, 1)
        assert policy is not None
        return [tuple(r) for r in rows], policy.noncompliant_at  # type: ignore[misc]


def _compliance_from_rows(store: Store) -> dict[str, str]:
    """Every device's compliance, worked out in Python from the rows (not through `impact`)."""
    with store.read() as session:
        levels = {c.name: RiskLevel(c.risk) for c in session.exec(select(Classification))}
        policy = session.get(CompliancePolicy, 1)
        assert policy is not None
        open_risks: dict[str, list[RiskLevel]] = defaultdict(list)
        for row in session.exec(select(Threat).where(col(Threat.status) == "OPEN")):
            open_risks[row.device_id].append(levels[row.classification])
        return {
            d.id: compliance.device_compliance(d, open_risks[d.id], RiskLevel(policy.noncompliant_at))
            for d in session.exec(select(Device))
        }


def _open_threats_in(store: Store, classes: set[str]) -> int:
    with store.read() as session:
        threats = session.exec(select(Threat).where(col(Threat.status) == "OPEN")).all()
    return sum(1 for t in threats if t.classification in classes)


@pytest.mark.parametrize("change", CHANGES, ids=repr)
def test_preview_changes_nothing_and_apply_does_what_it_previewed(store: Store, change: RiskChange) -> None:
    seed_demo(store, users=200, devices=600, seed=3)
    settings, before, each_before = _settings(store), _counts(store), _compliance_from_rows(store)
    with store.read() as session:
        preview = impact.preview(session, change)
    assert _settings(store) == settings and _counts(store) == before

    with store.write() as session:
        applied = impact.apply(session, change, actor="admin@contoso.example", at=NOW, action="risk.set")
    each_after = _compliance_from_rows(store)

    def flipped(was: str, now: str) -> int:
        return sum(1 for d, state in each_before.items() if state == was and each_after[d] == now)

    rerated = {
        name for (name, risk), (_, new) in zip(settings[0], _settings(store)[0], strict=True) if risk != new
    }
    happened = impact.Impact(
        newly_noncompliant=flipped("compliant", "noncompliant"),
        newly_compliant=flipped("noncompliant", "compliant"),
        open_threats=_open_threats_in(store, rerated),
    )
    assert applied == happened and preview == happened
    after = _counts(store)  # the aggregate agrees with the per-device count
    assert after.noncompliant - before.noncompliant == happened.newly_noncompliant - happened.newly_compliant


def test_the_demo_change_is_not_trivial(store: Store) -> None:
    """Guard for the test above: at least one change really flips devices."""
    seed_demo(store, users=200, devices=600, seed=3)
    with store.read() as session:
        result = impact.preview(session, RiskChange({"OUT_OF_DATE_OS": H}))
    assert result.newly_noncompliant > 0 and result.open_threats > 0


def test_newly_compliant_only_when_no_other_hot_threat(store: Store) -> None:
    with store.write() as session:
        trojan_only = device(session)
        threat(session, trojan_only, "TROJAN")
        trojan_and_spyware = device(session)
        threat(session, trojan_and_spyware, "TROJAN")
        threat(session, trojan_and_spyware, "SPYWARE")
        disconnected = device(session, protection="DISCONNECTED")
        threat(session, disconnected, "TROJAN")
    with store.read() as session:
        result = impact.preview(session, RiskChange({"TROJAN": L}))
    # only the first device turns compliant; the disconnected one stays noncompliant
    assert (result.newly_noncompliant, result.newly_compliant, result.open_threats) == (0, 1, 3)


def test_apply_rerates_open_threats_at_once_and_is_audited(store: Store) -> None:
    with store.write() as session:
        row = device(session)
        threat(session, row, "ADWARE")
    with store.write() as session:
        impact.apply(
            session, RiskChange({"ADWARE": H}), actor="admin@contoso.example", at=NOW, action="risk.set"
        )
    with store.read() as session:
        status = devices.by_id(session, row.id, tenant.policy_level(session))
        entries = session.exec(select(AuditEntry)).all()
    assert status is not None and status.compliance == "noncompliant" and status.security == "THREATS_HIGH"
    assert len(entries) == 1
    entry = entries[0]
    assert (entry.actor, entry.action, entry.outcome) == ("admin@contoso.example", "risk.set", "applied")
    assert entry.before == {"ADWARE": "low"}
    assert entry.after is not None and entry.after["ADWARE"] == "high"
    assert entry.after["impact"] == {"newly_noncompliant": 1, "newly_compliant": 0, "open_threats": 1}


def test_an_apply_that_changes_nothing_writes_no_audit(store: Store) -> None:
    with store.write() as session:
        impact.apply(session, RiskChange({"TROJAN": H}), actor="a@b.example", at=NOW, action="risk.set")
    with store.read() as session:
        assert session.exec(select(AuditEntry)).all() == []
