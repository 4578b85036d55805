"""Compliance: disconnected or an open threat at/above the policy level ⇒ noncompliant."""

import pytest
from sqlmodel import Session, col

from integration import compliance, devices, tenant
from integration.levels import POLICY_LEVELS, RiskLevel, intune_threat_level
from storage.engine import Store
from storage.models import CompliancePolicy, Device
from tests.conftest import NOW
from tests.integration.domain_facts import FACTS
from tests.integration.factories import device, threat

# Catalogue defaults used below: TROJAN high, NO_DEVICE_LOCK medium, ADWARE low, VPN_NOT_ENABLED none.
CASES = {
    "clean": [],
    "high": ["TROJAN"],
    "medium": ["NO_DEVICE_LOCK"],
    "low": ["ADWARE"],
    "none": ["VPN_NOT_ENABLED"],
    "medium+low": ["NO_DEVICE_LOCK", "ADWARE"],
    "resolved-high": [],  # a RESOLVED trojan only
}
NONCOMPLIANT_AT = {
    RiskLevel.HIGH: {"high"},
    RiskLevel.MEDIUM: {"high", "medium", "medium+low"},
    RiskLevel.LOW: {"high", "medium", "low", "medium+low"},
}


def _tenant(session: Session) -> dict[str, str]:
    ids = {}
    for name, classes in CASES.items():
        row = device(session)
        for cls in classes:
            threat(session, row, cls)
        if name == "resolved-high":
            threat(session, row, "TROJAN", status="RESOLVED")
        ids[name] = row.id
    ids["pending"] = device(session, activation="PENDING", checkin=None).id
    ids["disconnected"] = device(session, protection="DISCONNECTED").id
    ids["uninstalled"] = device(session, protection="UNINSTALLED").id
    ids["deactivated"] = device(session, activation="DEACTIVATED").id
    return ids


def _set_policy(store: Store, level: RiskLevel) -> None:
    with store.write() as session:
        policy = session.get(CompliancePolicy, 1)
        assert policy is not None
        policy.noncompliant_at = level.value


@pytest.mark.parametrize("level", [RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW])
def test_compliance_at_each_policy_level(store: Store, level: RiskLevel) -> None:
    with store.write() as session:
        ids = _tenant(session)
    _set_policy(store, level)
    with store.read() as session:
        loaded = devices.load(session, col(Device.id).in_(list(ids.values())), level)
        by_id = {s.device.id: s.compliance for s in loaded}
        counts = compliance.enrollment_counts(session, tenant.risk_levels(session), level)
    expected_threat = NONCOMPLIANT_AT[level]
    for name in CASES:
        assert by_id[ids[name]] == ("noncompliant" if name in expected_threat else "compliant"), name
    assert by_id[ids["pending"]] == "pending"
    assert by_id[ids["disconnected"]] == "noncompliant"
    assert by_id[ids["uninstalled"]] == "noncompliant"
    assert by_id[ids["deactivated"]] == "not enrolled"
    # the aggregate query agrees with the per-device rule
    assert counts.noncompliant == len(expected_threat) + 2
    assert counts.compliant == len(CASES) - len(expected_threat)
    assert counts.pending == 1
    assert counts.disconnected == 1
    assert counts.deactivated == 1


def test_a_classification_at_none_never_makes_a_device_noncompliant() -> None:
    levels = {"VPN_NOT_ENABLED": RiskLevel.NONE, "ADWARE": RiskLevel.LOW}
    assert compliance.hot_classifications(levels, RiskLevel.LOW) == {"ADWARE"}


# A device's Intune threat level is its worst open threat's risk; a threat at none leaves it secure
# (DOMAIN.md, "Threats": "a classification set to None … leaves the device secure").
INTUNE_LEVEL_OF_WORST_THREAT = {"none": "secured", "low": "low", "medium": "medium", "high": "high"}
INTUNE_ORDER: list[str] = FACTS["intune_threat_levels"]  # lowest first, as DOMAIN.md lists them


@pytest.mark.parametrize("policy", POLICY_LEVELS)
@pytest.mark.parametrize("worst", list(RiskLevel))
def test_the_intune_setting_blocks_exactly_the_devices_mesbot_calls_noncompliant(
    policy: RiskLevel, worst: RiskLevel
) -> None:
    """Intune, set to "at or under intune_threat_level(policy)", blocks a device whose level is above
    that setting; mesbot's own rule must call the same devices noncompliant."""
    device_level = INTUNE_LEVEL_OF_WORST_THREAT[worst.value]
    blocked_by_intune = INTUNE_ORDER.index(device_level) > INTUNE_ORDER.index(intune_threat_level(policy))
    protected = Device(
        id="d",
        owner_email="o@contoso.example",
        platform="IOS",
        activation_status="ACTIVATED",
        protection_status="PROTECTED",
        security_status="SECURE",
        enrolled_at=NOW,
    )
    verdict = compliance.device_compliance(protected, [worst], policy)
    assert (verdict == "noncompliant") == blocked_by_intune


def test_device_security_follows_current_risk_levels(store: Store) -> None:
    with store.write() as session:
        row = device(session)
        threat(session, row, "ADWARE")
    with store.read() as session:
        status = devices.by_id(session, row.id, tenant.policy_level(session))
    assert status is not None
    assert status.security == "THREATS_LOW"
    assert [t.risk for t in status.open_threats] == [RiskLevel.LOW]


def test_counts_can_be_scoped_to_a_group(demo_store: Store) -> None:
    from integration.enrollment import find_group

    with demo_store.read() as session:
        levels, policy = tenant.risk_levels(session), tenant.policy_level(session)
        everyone = compliance.enrollment_counts(session, levels, policy)
        pilot = compliance.enrollment_counts(session, levels, policy, find_group(session, "Lookout Pilot"))
        mobile = compliance.enrollment_counts(session, levels, policy, find_group(session, "Mobile Users"))
    assert 0 < pilot.activated < everyone.activated
    # every device owner in the demo is in exactly one enrollment group
    assert pilot.activated + mobile.activated == everyone.activated
    assert pilot.noncompliant + mobile.noncompliant == everyone.noncompliant
