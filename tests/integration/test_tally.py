"""The device counts the store keeps (triggers, migration 0004) against an independent recount.

After each kind of change — seed, new devices, activation, sweeps and check-ins, threats opened,
resolved, reclassified and deleted, risk and policy changes, bulk statements, group membership and
address changes, a new classification — every count `enrollment` shows, for all devices and for each
group, must equal a count made device by device in Python with the per-device rule (`status`), on
SQLite and PostgreSQL; so must the listings' totals and first rows, and the tally's own buckets.
"""

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, insert, text, update
from sqlmodel import Session, col, select

from integration import compliance, devices, enrollment, impact, sync, tenant
from integration.actions import Action
from integration.compliance import Compliance, EnrollmentCounts
from integration.demo import threats
from integration.impact import RiskChange
from integration.levels import RiskLevel
from storage.engine import Store
from storage.models import (
    Classification,
    Device,
    DeviceTally,
    DirectoryGroup,
    DirectoryUser,
    GroupMembership,
    OpenThreatTally,
    Threat,
)
from storage.models.tally import EVERY_DEVICE
from storage.states import ActivationStatus, Platform, ProtectionStatus, ThreatStatus
from tests.conftest import NOW, seed_demo
from tests.integration.factories import device, threat

A, P = ActivationStatus, ProtectionStatus


Tallies = tuple[Counter[tuple[str, str, str]], Counter[tuple[str, int]]]


def _truth(session: Session) -> tuple[dict[str, EnrollmentCounts], Tallies]:
    """Counts per group ("" = every device) and the tallies' rows, device by device, from the rows alone."""
    levels, policy = tenant.risk_levels(session), tenant.policy_level(session)
    bits = tenant.classification_bits(session)
    risks: dict[str, list[RiskLevel]] = defaultdict(list)
    masks: dict[str, int] = defaultdict(int)
    for t in session.exec(select(Threat).where(Threat.status == ThreatStatus.OPEN)).all():
        risks[t.device_id].append(levels.get(t.classification, RiskLevel.NONE))
        masks[t.device_id] |= bits.get(t.classification, 0)
    user_of = {u.email: u.id for u in session.exec(select(DirectoryUser)).all()}
    groups_of: dict[str, list[str]] = defaultdict(list)
    for m in session.exec(select(GroupMembership)).all():
        groups_of[m.user_id].append(m.group_id)
    seen: dict[str, Counter[str]] = defaultdict(Counter)
    states: Counter[tuple[str, str, str]] = Counter()
    exposed: Counter[tuple[str, int]] = Counter()
    for d in session.exec(select(Device)).all():
        assert d.open_classifications == masks[d.id], f"open_classifications of {d.id}"
        rule = compliance.device_compliance(d, risks[d.id], policy)
        for group_id in [EVERY_DEVICE, *groups_of.get(user_of.get(d.owner_email, ""), [])]:
            seen[group_id].update([d.activation_status.value, rule.value])
            if d.activation_status == A.ACTIVATED and d.protection_status == P.DISCONNECTED:
                seen[group_id]["disconnected"] += 1
            states[(group_id, d.activation_status, d.protection_status)] += 1
            if (d.activation_status, d.protection_status) == (A.ACTIVATED, P.PROTECTED) and masks[d.id]:
                exposed[(group_id, masks[d.id])] += 1
    counts = {
        group_id: EnrollmentCounts(
            pending=c[A.PENDING],
            activated=c[A.ACTIVATED],
            deactivated=c[A.DEACTIVATED] + c[A.DELETED],
            disconnected=c["disconnected"],
            compliant=c[Compliance.COMPLIANT],
            noncompliant=c[Compliance.NONCOMPLIANT],
        )
        for group_id, c in seen.items()
    }
    return counts, (states, exposed)


def _first(session: Session, state: str, group: DirectoryGroup | None, limit: int) -> list[str]:
    """The ids a listing must show: devices in `state` whose owner is in `group`, oldest first."""
    members = None
    if group is not None:
        query = select(DirectoryUser.email).join(GroupMembership).where(GroupMembership.group_id == group.id)
        members = set(session.exec(query).all())
    rows = [
        d
        for d in session.exec(select(Device).where(devices.in_state(state))).all()
        if members is None or d.owner_email in members
    ]
    key = (lambda d: (d.enrolled_at, d.id)) if state == "pending" else (lambda d: (d.checkin_time, d.id))
    return [d.id for d in sorted(rows, key=key)[:limit]]


def check(store: Store, after: str) -> None:
    with store.read() as session:
        counts, (states, exposed) = _truth(session)
        zero = EnrollmentCounts(0, 0, 0, 0, 0, 0)
        levels, policy = tenant.risk_levels(session), tenant.policy_level(session)
        for group in [None, *session.exec(select(DirectoryGroup)).all()]:
            expected = counts.get(group.id if group else EVERY_DEVICE, zero)
            label = f"after {after}, {group.name if group else 'every device'}"
            assert compliance.enrollment_counts(session, levels, policy, group) == expected, label
            for state, total in (("pending", expected.pending), ("disconnected", expected.disconnected)):
                for limit in (3, 50):  # a small limit makes large groups walk, small ones list members
                    rows, listed_total = devices.listing(session, state, group, limit)
                    assert listed_total == total, f"{label}, {state} total"
                    assert [d.id for d in rows] == _first(session, state, group, limit), f"{label}, {state}"
        kept = session.exec(select(DeviceTally).where(DeviceTally.devices != 0)).all()
        assert {(t.group_id, t.activation_status, t.protection_status): t.devices for t in kept} == dict(
            states
        ), f"device tally after {after}"
        kept_open = session.exec(select(OpenThreatTally).where(OpenThreatTally.devices != 0)).all()
        assert {(t.group_id, t.open_classifications): t.devices for t in kept_open} == dict(exposed), (
            f"open threat tally after {after}"
        )


def _one(session: Session, *where: object) -> Device:
    return session.exec(select(Device).where(*where).order_by(col(Device.id))).first()  # type: ignore[arg-type,return-value]


def _member_email(session: Session, group: str) -> str:
    query = (
        select(DirectoryUser.email)
        .join(GroupMembership)
        .join(DirectoryGroup)
        .where(DirectoryGroup.name == group)
        .order_by(col(DirectoryUser.email))
    )
    return session.exec(query).first()  # type: ignore[return-value]


def _open_threat(session: Session, offset: int = 0) -> Threat:
    query = select(Threat).where(Threat.status == ThreatStatus.OPEN).order_by(col(Threat.id)).offset(offset)
    return session.exec(query).first()  # type: ignore[return-value]


Change = Callable[[Session], object]


def _new_devices(session: Session) -> None:
    device(session, owner=_member_email(session, "Finance"))
    device(session, owner=_member_email(session, "Lookout Pilot"), activation=A.PENDING, checkin=None)
    device(session, owner="nobody-in-the-directory@contoso.example")
    session.flush()
    threat(session, device(session, owner=_member_email(session, "Sales")), "TROJAN")


def _activate(session: Session) -> None:
    enrollment.activate(_one(session, Device.activation_status == A.PENDING), NOW)


def _deactivate(session: Session) -> None:
    enrollment.deactivate(
        _one(session, Device.activation_status == A.ACTIVATED, Device.open_classifications != 0)
    )


def _check_in(session: Session) -> None:
    device = _one(session, Device.protection_status == P.DISCONNECTED)
    at = NOW + timedelta(days=10)
    sync.apply(session, [sync.DeviceReport(id=device.id, checkin_time=at)], now=at)


def _inject(session: Session) -> None:
    target = _one(session, Device.activation_status == A.ACTIVATED, Device.protection_status == P.PROTECTED)
    events = threats.inject(
        session,
        device_id=target.id,
        classification="ROOT_JAILBREAK",
        app=None,
        count=3,
        numbered=True,
        now=NOW,
    )
    sync.apply(session, events, now=NOW)


def _set(**values: object) -> Change:
    def change(session: Session) -> None:
        found = _open_threat(session, offset=2)
        for name, value in values.items():
            setattr(found, name, value)
        session.add(found)

    return change


def _move_threat(session: Session) -> None:
    found = _open_threat(session, offset=1)
    found.device_id = _one(session, Device.id != found.device_id, Device.open_classifications == 0).id
    session.add(found)


def _delete_threat(session: Session) -> None:
    """The only open threat of its device: the device's open classifications must empty."""
    alone = (
        select(Threat.device_id)
        .where(Threat.status == ThreatStatus.OPEN)
        .group_by(col(Threat.device_id))
        .having(func.count() == 1)
    )
    query = select(Threat).where(Threat.status == ThreatStatus.OPEN, col(Threat.device_id).in_(alone))
    session.delete(session.exec(query.order_by(col(Threat.id))).first())


def _move_membership(session: Session) -> None:
    """A Sales member who owns devices (and is not in Finance) is moved to Finance by one UPDATE."""
    sales, finance = (
        session.exec(select(DirectoryGroup.id).where(DirectoryGroup.name == name)).one()
        for name in ("Sales", "Finance")
    )
    in_finance = select(GroupMembership.user_id).where(GroupMembership.group_id == finance)
    owner = session.exec(
        select(DirectoryUser.id)
        .join(GroupMembership)
        .join(Device, col(Device.owner_email) == DirectoryUser.email)
        .where(GroupMembership.group_id == sales, col(DirectoryUser.id).not_in(in_finance))
    ).first()
    session.execute(
        update(GroupMembership)
        .where(col(GroupMembership.group_id) == sales, col(GroupMembership.user_id) == owner)
        .values(group_id=finance)
    )


def _membership(session: Session, *, join: bool) -> None:
    finance = session.exec(select(DirectoryGroup).where(DirectoryGroup.name == "Finance")).one()
    owner = session.exec(
        select(DirectoryUser).where(DirectoryUser.email == _member_email(session, "Sales"))
    ).one()
    if join:
        session.add(GroupMembership(group_id=finance.id, user_id=owner.id))
    else:
        session.execute(delete(GroupMembership).where(col(GroupMembership.user_id) == owner.id))


def _bulk_members(session: Session) -> None:
    engineering = session.exec(select(DirectoryGroup.id).where(DirectoryGroup.name == "Engineering")).one()
    already = select(GroupMembership.user_id).where(GroupMembership.group_id == engineering)
    users = session.exec(select(DirectoryUser.id).where(col(DirectoryUser.id).not_in(already))).all()
    session.execute(insert(GroupMembership), [{"group_id": engineering, "user_id": u} for u in users[::2]])


def _new_address(session: Session) -> None:
    user = session.exec(
        select(DirectoryUser).where(DirectoryUser.email == _member_email(session, "Mobile Users"))
    ).one()
    user.email = "renamed@contoso.example"
    session.add(user)
    moved = _one(session, Device.owner_email == _member_email(session, "Lookout Pilot"))
    moved.owner_email = "renamed@contoso.example"
    session.add(moved)


def _delete_device(session: Session) -> None:
    gone = _one(session, Device.open_classifications != 0)
    session.execute(delete(Threat).where(col(Threat.device_id) == gone.id))
    session.delete(gone)


def _new_classification(session: Session) -> None:
    target = _one(session, Device.activation_status == A.ACTIVATED, Device.protection_status == P.PROTECTED)
    threat(session, target, "BRAND_NEW_THREAT")  # unknown to the catalogue: counted once it is known
    session.flush()
    free = max(tenant.classification_bits(session).values()) << 1
    session.add(
        Classification(
            name="BRAND_NEW_THREAT",
            category="app",
            default_risk=RiskLevel.HIGH,
            risk=RiskLevel.HIGH,
            bit=free,
        )
    )


CHANGES: list[tuple[str, Change]] = [
    ("new devices", _new_devices),
    ("activation", _activate),
    ("deactivation", _deactivate),
    ("a sweep ten days on", lambda s: enrollment.sweep(s, NOW + timedelta(days=10), 30)),
    ("a check-in", _check_in),
    ("disconnected-days 90", lambda s: enrollment.set_disconnected_days(s, 90, actor="t", at=NOW)),
    ("threats injected", _inject),
    ("a threat resolved", _set(status=ThreatStatus.RESOLVED, resolved_at=NOW)),
    ("a threat reclassified", _set(classification="SPYWARE")),
    ("a threat ignored", _set(status=ThreatStatus.IGNORED)),
    ("a threat reopened", _set(status=ThreatStatus.OPEN)),
    ("a threat moved to another device", _move_threat),
    ("a threat deleted", _delete_threat),
    (
        "risk set",
        lambda s: impact.apply(
            s, RiskChange({"OUT_OF_DATE_OS": RiskLevel.HIGH}), actor="t", at=NOW, action=Action.RISK_SET
        ),
    ),
    (
        "policy set",
        lambda s: impact.apply(
            s, RiskChange({}, policy=RiskLevel.LOW), actor="t", at=NOW, action=Action.POLICY_SET
        ),
    ),
    (
        "a bulk update of devices",
        lambda s: s.execute(
            update(Device)
            .where(col(Device.platform) == Platform.IOS, col(Device.activation_status) == A.ACTIVATED)
            .values(protection_status=P.UNINSTALLED)
        ),
    ),
    (
        "a bulk update of threats",
        lambda s: s.execute(
            update(Threat).where(col(Threat.classification) == "OUT_OF_DATE_OS").values(status="RESOLVED")
        ),
    ),
    ("a member joins", lambda s: _membership(s, join=True)),
    ("a member leaves every group", lambda s: _membership(s, join=False)),
    ("many members join", _bulk_members),
    ("a membership moved to another group", _move_membership),
    ("an address change", _new_address),
    ("a device deleted", _delete_device),
    ("a new classification", _new_classification),
    (
        "a classification's bit changed",
        lambda s: s.execute(
            update(Classification).where(col(Classification.name) == "BRAND_NEW_THREAT").values(bit=1 << 62)
        ),
    ),
    (
        "a classification removed",
        lambda s: s.execute(delete(Classification).where(col(Classification.name) == "BRAND_NEW_THREAT")),
    ),
]


def test_counts_equal_a_recount_after_every_kind_of_change(store: Store) -> None:
    seed_demo(store)
    check(store, "the seed")
    for name, change in CHANGES:
        with store.write() as session:
            change(session)
        check(store, name)


def test_the_recount_notices_a_wrong_tally(store: Store) -> None:
    """Guard for the test above: a tally one device off fails it."""
    seed_demo(store)
    with store.write() as session:
        session.execute(text("UPDATE openthreattally SET devices = devices + 1 WHERE group_id <> ''"))
    with pytest.raises(AssertionError):
        check(store, "a corruption")
