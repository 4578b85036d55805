"""The enrollment lifecycle: pending → activated; protected ↔ disconnected by check-in age;
deactivated. Also the exact-name rule for enrollment groups."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select, update

from integration import audit, compliance, tenant
from integration.actions import Action
from integration.errors import InvalidInput, NotFound
from integration.validation import show
from storage.models import ComplianceFlip, Device, DirectoryGroup
from storage.states import ActivationStatus, ProtectionStatus


def is_disconnected(checkin_time: datetime | None, now: datetime, days: int) -> bool:
    """A device that has not checked in for `days` days is disconnected."""
    return checkin_time is None or now - checkin_time >= timedelta(days=days)


@dataclass(frozen=True)
class SweepResult:
    disconnected: int  # protected → disconnected
    reconnected: int  # disconnected → protected
    flips: int = 0  # of those, devices whose compliance changed (recorded for the digest)


def sweep(session: Session, now: datetime, days: int) -> SweepResult:
    """Mark activated devices disconnected or protected again by their last check-in, recording each
    one whose compliance flips (a device with a hot open threat was noncompliant already)."""
    cutoff = now - timedelta(days=days)
    went_silent = (
        update(Device)
        .where(
            col(Device.activation_status) == ActivationStatus.ACTIVATED,
            col(Device.protection_status) == ProtectionStatus.PROTECTED,
            (col(Device.checkin_time) <= cutoff) | col(Device.checkin_time).is_(None),
        )
        .values(protection_status=ProtectionStatus.DISCONNECTED)
        .returning(col(Device.id), col(Device.owner_email), col(Device.open_classifications))
    )
    came_back = (
        update(Device)
        .where(
            col(Device.activation_status) == ActivationStatus.ACTIVATED,
            col(Device.protection_status) == ProtectionStatus.DISCONNECTED,
            col(Device.checkin_time) > cutoff,
        )
        .values(protection_status=ProtectionStatus.PROTECTED)
        .returning(col(Device.id), col(Device.owner_email), col(Device.open_classifications))
    )
    silent = session.execute(went_silent).all()
    back = session.execute(came_back).all()
    hot = compliance.hot_bits(
        tenant.classification_bits(session), tenant.risk_levels(session), tenant.policy_level(session)
    )
    flips = [
        ComplianceFlip(at=now, device_id=i, owner_email=o, became=became, why=why)
        for rows, became, why in (
            (silent, "noncompliant", f"no check-in for {days} days"),
            (back, "compliant", "checked in again"),
        )
        for i, o, bits in rows
        if not bits & hot
    ]
    session.add_all(flips)
    return SweepResult(disconnected=len(silent), reconnected=len(back), flips=len(flips))


def about_to_disconnect(session: Session, now: datetime, days: int, *, limit: int = 50) -> list[Device]:
    """Protected devices that will be disconnected within a day unless they check in (the digest)."""
    query = (
        select(Device)
        .where(
            col(Device.activation_status) == ActivationStatus.ACTIVATED,
            col(Device.protection_status) == ProtectionStatus.PROTECTED,
            col(Device.checkin_time) > now - timedelta(days=days),
            col(Device.checkin_time) <= now - timedelta(days=days - 1),
        )
        .order_by(col(Device.checkin_time))
        .limit(limit)
    )
    return list(session.exec(query).all())


def protection_on_checkin(activation: ActivationStatus, protection: ProtectionStatus) -> ProtectionStatus:
    """A device's protection once it checks in: a disconnected, activated device is protected again."""
    if activation == ActivationStatus.ACTIVATED and protection == ProtectionStatus.DISCONNECTED:
        return ProtectionStatus.PROTECTED
    return protection


def activate(device: Device, now: datetime) -> None:
    """The Lookout for Work app was installed, opened and activated."""
    if device.activation_status != ActivationStatus.PENDING:
        raise InvalidInput(f"Device {device.id} is {device.activation_status.lower()}, not pending.")
    device.activation_status = ActivationStatus.ACTIVATED
    device.protection_status = ProtectionStatus.PROTECTED
    device.activated_at = now
    device.checkin_time = now


def deactivate(device: Device) -> None:
    device.activation_status = ActivationStatus.DEACTIVATED


def find_group(session: Session, name: str) -> DirectoryGroup:
    """The directory group called exactly `name` (case-sensitive, as Lookout matches it).

    Graph's `displayName eq` filter ignores case, so a group that differs only in case is a
    likely typo that would silently enroll nobody: it is named in the error.
    """
    exact = session.exec(select(DirectoryGroup).where(DirectoryGroup.name == name)).first()
    if exact is not None:
        return exact
    near = session.exec(
        select(DirectoryGroup.name).where(func.lower(DirectoryGroup.name) == name.lower())
    ).all()
    if near:
        raise NotFound(
            f'There is no group named "{show(name)}". Group names are case-sensitive: '
            f'did you mean "{show(near[0])}"?'
        )
    raise NotFound(f'There is no group named "{show(name)}" in the directory.')


def set_disconnected_days(session: Session, days: int, *, actor: str, at: datetime) -> SweepResult | None:
    """Change the disconnected threshold and re-sweep at once, so status reflects it immediately.
    Returns None when the value was already set."""
    settings = tenant.enrollment_settings(session)
    if settings.disconnected_days == days:
        return None
    before = settings.disconnected_days
    settings.disconnected_days = days
    session.add(settings)
    result = sweep(session, at, days)
    audit.record(
        session,
        at=at,
        actor=actor,
        change=audit.Change(
            Action.DISCONNECTED_DAYS,
            {"disconnected_days": before},
            {
                "disconnected_days": days,
                "disconnected": result.disconnected,
                "reconnected": result.reconnected,
            },
        ),
    )
    return result
