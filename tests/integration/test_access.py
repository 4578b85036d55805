"""Console access: roles from group membership, read-only restricted access, and the consent gate."""

import pytest
from sqlmodel import Session, select

from integration import tenant
from integration.access import CONSENT_INSTRUCTIONS, Permission, Role, UnknownUser, authorize, sign_in
from integration.errors import ConsentRequired, PermissionDenied
from storage.engine import Store
from storage.models import DirectoryUser, Subscription

ADMIN, ANALYST, ALICE = "admin@contoso.example", "analyst@contoso.example", "alice@contoso.example"


@pytest.mark.parametrize(
    ("email", "role"), [(ADMIN, Role.FULL), (ANALYST, Role.RESTRICTED), (ALICE, Role.NONE)]
)
def test_roles_come_from_group_membership(demo_store: Store, email: str, role: Role) -> None:
    with demo_store.read() as session:
        assert sign_in(session, email.upper())[0].role is role


def test_unknown_user_is_refused(demo_store: Store) -> None:
    with demo_store.read() as session, pytest.raises(UnknownUser, match="not a user in the directory"):
        sign_in(session, "nobody@contoso.example")


def test_no_groups_configured_means_no_access(demo_store: Store) -> None:
    with demo_store.write() as session:
        sub = tenant.subscription(session)
        sub.full_access_group_id = sub.restricted_access_group_id = None
    with demo_store.read() as session:
        assert sign_in(session, ADMIN)[0].role is Role.NONE


ALLOWED = {
    # permission: roles that pass once consent is granted
    Permission.ANYONE: {Role.FULL, Role.RESTRICTED, Role.NONE},
    Permission.OWN: {Role.FULL, Role.RESTRICTED, Role.NONE},
    Permission.READ: {Role.FULL, Role.RESTRICTED},
    Permission.CHANGE: {Role.FULL},
}


def _check(session: Session, email: str, needs: Permission) -> None:
    actor, subscription = sign_in(session, email)
    authorize(session, actor, needs, subscription, "do that")


@pytest.mark.parametrize("needs", list(ALLOWED))
@pytest.mark.parametrize(
    ("email", "role"), [(ADMIN, Role.FULL), (ANALYST, Role.RESTRICTED), (ALICE, Role.NONE)]
)
def test_permission_matrix(demo_store: Store, needs: Permission, email: str, role: Role) -> None:
    with demo_store.read() as session:
        if role in ALLOWED[needs]:
            _check(session, email, needs)
        else:
            with pytest.raises(PermissionDenied, match="cannot do that") as refused:
                _check(session, email, needs)
            assert "Lookout Admins" in str(refused.value)  # says how to get access


def test_restricted_is_read_only(demo_store: Store) -> None:
    with demo_store.read() as session, pytest.raises(PermissionDenied, match="restricted \\(read-only\\)"):
        _check(session, ANALYST, Permission.CHANGE)


def _revoke_consent(store: Store) -> None:
    with store.write() as session:
        sub = session.get(Subscription, 1)
        assert sub is not None
        sub.consent_granted, sub.consent_by, sub.consent_at = False, None, None


@pytest.mark.parametrize("needs", [Permission.OWN, Permission.READ, Permission.CHANGE])
@pytest.mark.parametrize("email", [ADMIN, ANALYST, ALICE])
def test_everything_but_help_and_subscription_waits_for_consent(
    demo_store: Store, needs: Permission, email: str
) -> None:
    _revoke_consent(demo_store)
    with demo_store.read() as session, pytest.raises(ConsentRequired) as refused:
        _check(session, email, needs)
    assert str(refused.value) == CONSENT_INSTRUCTIONS
    assert "subscription consent" in CONSENT_INSTRUCTIONS


def test_subscription_works_before_consent_for_full_access_or_global_admin(demo_store: Store) -> None:
    _revoke_consent(demo_store)
    with demo_store.write() as session:  # the global admin is in no group at all: still allowed
        sub = tenant.subscription(session)
        sub.full_access_group_id = sub.restricted_access_group_id = None
    with demo_store.read() as session:
        _check(session, ADMIN, Permission.SUBSCRIPTION)
        _check(session, ADMIN, Permission.CONSENT)
        with pytest.raises(PermissionDenied, match="global administrator"):
            _check(session, ANALYST, Permission.SUBSCRIPTION)


def test_only_a_global_administrator_grants_consent(demo_store: Store) -> None:
    with demo_store.write() as session:  # the admin keeps full access but is no longer a global admin
        user = session.exec(select(DirectoryUser).where(DirectoryUser.email == ADMIN)).one()
        user.is_global_admin = False
    with demo_store.read() as session:
        _check(session, ADMIN, Permission.SUBSCRIPTION)
        with pytest.raises(PermissionDenied, match="Only a directory global administrator"):
            _check(session, ADMIN, Permission.CONSENT)
