"""The demo tenant: deterministic for a seed, with the fixed identities and a realistic mix."""

from collections import Counter
from typing import Any

from sqlmodel import col, select

from integration import devices, tenant
from storage.engine import Store
from storage.models import Device, DirectoryUser, NotificationPreference, Threat
from tests.conftest import seed_demo


def _fingerprint(store: Store) -> tuple[Any, ...]:
    with store.read() as session:
        device_rows = session.exec(select(Device).order_by(col(Device.id))).all()
        threat_rows = session.exec(select(Threat).order_by(col(Threat.id))).all()
        users = session.exec(select(DirectoryUser.email).order_by(col(DirectoryUser.email))).all()
        return (
            [d.model_dump() for d in device_rows],
            [t.model_dump() for t in threat_rows],
            list(users),
        )


def test_same_seed_same_tenant_different_seed_different_tenant(store: Store) -> None:
    seed_demo(store, seed=11)
    first = _fingerprint(store)
    seed_demo(store, seed=11)  # reseeding replaces, it does not add
    assert _fingerprint(store) == first
    seed_demo(store, seed=12)
    assert _fingerprint(store) != first


def test_fixed_identities(demo_store: Store) -> None:
    with demo_store.read() as session:
        alice = devices.by_owner(session, "alice@contoso.example", tenant.policy_level(session))
        admin = session.exec(
            select(DirectoryUser).where(DirectoryUser.email == "admin@contoso.example")
        ).one()
        prefs = session.exec(
            select(NotificationPreference).where(NotificationPreference.user_id == admin.id)
        ).all()
    assert admin.is_global_admin
    assert sorted(s.compliance for s in alice) == ["compliant", "noncompliant"]  # exactly her two
    assert {(p.category, p.channel, p.enabled) for p in prefs} == {
        ("threat-high", "email", True),
        ("threat-high", "slack", True),
    }


def test_realistic_mix(store: Store) -> None:
    seed_demo(store, users=800, devices=3000, seed=5)
    with store.read() as session:
        activation = Counter(session.exec(select(Device.activation_status)).all())
        platform = Counter(session.exec(select(Device.platform)).all())
        protection = Counter(
            session.exec(
                select(Device.protection_status).where(Device.activation_status == "ACTIVATED")
            ).all()
        )
        open_by_device = Counter(session.exec(select(Threat.device_id).where(Threat.status == "OPEN")).all())
        classes = Counter(session.exec(select(Threat.classification)).all())
    assert set(activation) == {"ACTIVATED", "PENDING", "DEACTIVATED", "DELETED"}
    assert activation["PENDING"] > 100 and activation["ACTIVATED"] > 2000
    assert platform["IOS"] > 1000 and platform["ANDROID"] > 1000
    assert protection["DISCONNECTED"] > 50
    assert sum(1 for n in open_by_device.values() if n > 1) > 20  # several threats on some devices
    common, rare = classes.most_common(1)[0][1], min(classes.values())
    assert len(classes) >= 20 and common > 20 * rare  # a long tail
