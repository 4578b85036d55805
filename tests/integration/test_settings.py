"""Connector, subscription and notification settings: each change audited, no-ops write nothing."""

import pytest
from sqlmodel import col, select

from integration import connector, connector_errors, preferences, subscription, tenant
from integration.errors import InvalidInput, NotFound
from storage.engine import Store
from storage.models import AuditEntry, DirectoryUser
from tests.conftest import NOW

ADMIN = "admin@contoso.example"


def _actions(store: Store) -> list[str]:
    with store.read() as session:
        return list(session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id))).all())


def test_connector_fields_are_audited_and_idempotent(demo_store: Store) -> None:
    with demo_store.write() as session:
        assert connector.set_field(session, "heartbeat_minutes", 15, actor=ADMIN, at=NOW)
        assert not connector.set_field(session, "heartbeat_minutes", 15, actor=ADMIN, at=NOW)
    with demo_store.read() as session:
        assert connector.snapshot(session)["heartbeat_minutes"] == 15
    assert _actions(demo_store)[-1:] == ["connector.heartbeat_minutes"]
    assert _actions(demo_store).count("connector.heartbeat_minutes") == 1


def test_turning_sync_off_records_a_connector_error_and_on_resolves_it(demo_store: Store) -> None:
    with demo_store.write() as session:
        connector.set_sync(session, "threat", False, actor=ADMIN, at=NOW)
    with demo_store.read() as session:
        errors = connector.snapshot(session)["errors"]
    assert [e["fingerprint"] for e in errors] == ["sync-off:threat"]
    assert "Both syncs must be on" in errors[0]["message"]
    with demo_store.write() as session:
        connector.set_sync(session, "threat", True, actor=ADMIN, at=NOW)
    with demo_store.read() as session:
        assert connector.snapshot(session)["errors"] == []


def test_connector_errors_count_recurrences(store: Store) -> None:
    with store.write() as session:
        connector_errors.record(session, "fp", "first", NOW)
        connector_errors.record(session, "fp", "second", NOW)
    with store.read() as session:
        [error] = connector_errors.open_errors(session)
    assert (error.count, error.message) == (2, "second")


def test_enrollment_groups_case_rule(demo_store: Store) -> None:
    with demo_store.write() as session:
        with pytest.raises(NotFound, match='did you mean "Sales"'):
            connector.add_group(session, "sales", actor=ADMIN, at=NOW)
        assert connector.add_group(session, "Sales", actor=ADMIN, at=NOW) == "Sales"
        with pytest.raises(InvalidInput, match="already an enrollment group"):
            connector.add_group(session, "Sales", actor=ADMIN, at=NOW)
        with pytest.raises(InvalidInput, match='did you mean "Mobile Users"'):
            connector.remove_group(session, "mobile users", actor=ADMIN, at=NOW)
        connector.remove_group(session, "Lookout Pilot", actor=ADMIN, at=NOW)
    with demo_store.read() as session:
        assert connector.groups(session) == ["Mobile Users", "Sales"]


def test_subscription_fields(demo_store: Store) -> None:
    with demo_store.write() as session:
        with pytest.raises(InvalidInput, match="required and cannot be `none`"):
            subscription.set_field(session, "full-group", "none", actor=ADMIN, at=NOW)
        with pytest.raises(InvalidInput, match="Tenant directory ID must be a GUID"):
            subscription.set_field(session, "tenant", "contoso", actor=ADMIN, at=NOW)
        assert subscription.set_field(session, "restricted-group", "none", actor=ADMIN, at=NOW)
    with demo_store.read() as session:
        snap = subscription.snapshot(session)
    assert snap["restricted_access_group"] is None
    assert snap["full_access_group"]["name"] == "Lookout Admins"
    assert snap["consent"]["granted"] is True


def test_consent_is_recorded_once(demo_store: Store) -> None:
    with demo_store.write() as session:
        sub = tenant.subscription(session)
        sub.consent_granted = False
    with demo_store.write() as session:
        assert subscription.grant_consent(session, actor=ADMIN, at=NOW)
        assert not subscription.grant_consent(session, actor=ADMIN, at=NOW)
    with demo_store.read() as session:
        snap = subscription.snapshot(session)
    assert snap["consent"] == {"granted": True, "by": ADMIN, "at": "2026-11-26T12:00:00Z"}
    assert _actions(demo_store).count("subscription.consent") == 1


def test_notification_preferences_default_off(demo_store: Store) -> None:
    with demo_store.write() as session:
        analyst = session.exec(
            select(DirectoryUser).where(DirectoryUser.email == "analyst@contoso.example")
        ).one()
        assert preferences.preferences(session, analyst.id) == {
            c: {"email": False, "slack": False} for c in preferences.CATEGORIES
        }
        preferences.set_preferences(session, analyst.id, ("digest",), ("slack",), True, actor="a", at=NOW)
        preferences.set_quiet_hours(session, analyst.id, ("22:00", "07:00"), actor="a", at=NOW)
        snap = preferences.snapshot(session, analyst.id)
    assert snap["preferences"]["digest"] == {"email": False, "slack": True}
    assert snap["quiet_hours"] == "22:00-07:00 UTC"
    assert _actions(demo_store)[-2:] == ["notify", "notify.quiet"]
