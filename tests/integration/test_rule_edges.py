"""Edges of the rules that mutation testing showed no test would notice: deleted devices in the
counts, resolved threats in an impact, a policy already in place, group names that are only IDs."""

from sqlmodel import Session

from integration import compliance, impact, tenant
from integration.access import Permission, PermissionDenied, authorize, sign_in
from integration.actions import Action
from integration.impact import RiskChange
from integration.levels import RiskLevel
from storage.engine import Store
from tests.conftest import NOW
from tests.integration.factories import device, threat

ADMIN, ALICE = "admin@contoso.example", "alice@contoso.example"


def _counts(session: Session) -> compliance.EnrollmentCounts:
    return compliance.enrollment_counts(session, tenant.risk_levels(session), tenant.policy_level(session))


def test_deleted_devices_count_as_deactivated(store: Store) -> None:
    with store.write() as session:
        before = _counts(session).deactivated
        device(session, activation="DELETED")
        device(session, activation="DELETED")
        device(session, activation="DEACTIVATED")
        session.flush()
        assert _counts(session).deactivated == before + 3


def test_a_resolved_threat_does_not_hold_a_device_noncompliant(store: Store) -> None:
    with store.write() as session:
        phone = device(session)
        threat(session, phone, "ADWARE")  # open, low: compliant under the default policy (high)
        threat(session, phone, "TROJAN", status="RESOLVED")  # high, but resolved
        session.flush()
        # ADWARE → high: the phone turns noncompliant; its resolved TROJAN does not count as held
        result = impact.preview(session, RiskChange({"ADWARE": RiskLevel.HIGH}))
        assert result.newly_noncompliant == 1


def test_setting_the_policy_already_in_place_changes_nothing(store: Store) -> None:
    with store.write() as session:
        state = impact.current(session)
        same = RiskChange({}, policy=state.policy)
        assert not state.changes_anything(same)
        assert (
            impact.apply(session, same, state, actor=ADMIN, at=NOW, action=Action.POLICY_SET) == impact.ZERO
        )


def test_a_refusal_names_an_access_group_missing_from_the_directory_by_its_id(demo_store: Store) -> None:
    missing = "0b5e8f6a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"
    with demo_store.write() as session:
        tenant.subscription(session).full_access_group_id = missing
    with demo_store.read() as session:
        actor, subscription = sign_in(session, ALICE)
        try:
            authorize(session, actor, Permission.CHANGE, subscription, "change risk levels")
        except PermissionDenied as refusal:
            assert f"Ask an admin to add you to the group {missing}." in str(refusal)
        else:
            raise AssertionError("alice may not change risk levels")


def test_a_refusal_says_when_no_access_group_is_configured(demo_store: Store) -> None:
    with demo_store.write() as session:
        sub = tenant.subscription(session)
        sub.full_access_group_id = sub.restricted_access_group_id = None
    with demo_store.read() as session:
        actor, subscription = sign_in(session, ADMIN)
        try:
            authorize(session, actor, Permission.CHANGE, subscription, "change risk levels")
        except PermissionDenied as refusal:
            assert str(refusal).endswith(
                " No console access group is configured yet (`subscription set full-group GUID`)."
            )
        else:
            raise AssertionError("without groups nobody has console access")
