"""Device status as an admin or a device owner asks for it: state, compliance, open threats."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, func
from sqlmodel import Session, col, select

from integration.compliance import Compliance, device_compliance
from integration.levels import RiskLevel, security_status
from integration.tenant import stamp
from storage.models import Classification, Device, DirectoryGroup, DirectoryUser, GroupMembership, Threat
from storage.states import ActivationStatus, ProtectionStatus, SecurityStatus, ThreatStatus

# Which devices a state name in `enrollment pending|disconnected` selects.
STATE_FILTERS: dict[str, tuple[ColumnElement[bool], ...]] = {
    "pending": (col(Device.activation_status) == ActivationStatus.PENDING,),
    "disconnected": (
        col(Device.activation_status) == ActivationStatus.ACTIVATED,
        col(Device.protection_status) == ProtectionStatus.DISCONNECTED,
    ),
}


@dataclass(frozen=True)
class OpenThreat:
    threat: Threat
    risk: RiskLevel  # the classification's current level, not what the source reported


@dataclass(frozen=True)
class DeviceStatus:
    device: Device
    compliance: Compliance
    security: SecurityStatus  # from the open threats at current risk levels
    open_threats: list[OpenThreat]


def reason(status: DeviceStatus, policy: RiskLevel, disconnected_days: int) -> str:
    """In plain words, why the device is (non)compliant — what a blocked owner wants to know."""
    d = status.device
    if status.compliance is Compliance.PENDING:
        return "The Lookout for Work app has not been activated yet: install it, open it and sign in."
    if status.compliance is Compliance.NOT_ENROLLED:
        return f"The device is {d.activation_status.lower()} in Lookout."
    if d.protection_status == ProtectionStatus.DISCONNECTED:
        since = f" since {stamp(d.checkin_time)}" if d.checkin_time else ""
        return (
            f"No check-in{since} (disconnected after {disconnected_days} days): "
            "open Lookout for Work to reconnect."
        )
    if d.protection_status == ProtectionStatus.UNINSTALLED:
        return "Lookout for Work was uninstalled: reinstall and activate it."
    if status.compliance is Compliance.NONCOMPLIANT:
        worst = max(status.open_threats, key=lambda t: t.risk.rank)
        threat, level = worst.threat.classification, worst.risk.value
        return f"Open {threat} threat at {level} risk (blocked at {policy.value} or above)."
    return "Protected, no open threat at or above the policy level."


def owned_by(email: str) -> ColumnElement[bool]:
    return col(Device.owner_email) == email.strip().lower()


def in_group(group: DirectoryGroup) -> ColumnElement[bool]:
    """Devices whose owner is a member of `group`."""
    members = (
        select(DirectoryUser.email)
        .join(GroupMembership, col(GroupMembership.user_id) == DirectoryUser.id)
        .where(GroupMembership.group_id == group.id)
    )
    return col(Device.owner_email).in_(members)


def _with_open_threats(which: ColumnElement[bool]) -> Any:
    open_threat = and_(col(Threat.device_id) == Device.id, col(Threat.status) == ThreatStatus.OPEN)
    return (
        select(Device, Threat, Classification.risk)
        .outerjoin(Threat, open_threat)
        .outerjoin(Classification, col(Classification.name) == Threat.classification)
        .where(which)
        .order_by(col(Device.enrolled_at), col(Device.id), col(Threat.detected_at).desc())
    )


# The two lookups `status` makes, built once (building costs more than running them).
_BY_OWNER = _with_open_threats(col(Device.owner_email) == bindparam("key"))
_BY_ID = _with_open_threats(col(Device.id) == bindparam("key"))


def load(session: Session, which: ColumnElement[bool], policy: RiskLevel) -> list[DeviceStatus]:
    """Devices matching `which` with their open threats (each at its classification's current
    level) and compliance under `policy`: one indexed query."""
    return _statuses(session.exec(_with_open_threats(which)).all(), policy)


def _statuses(rows: Iterable[Any], policy: RiskLevel) -> list[DeviceStatus]:
    found: dict[str, tuple[Device, list[OpenThreat]]] = {}
    for device, threat, risk in rows:
        _, open_threats = found.setdefault(device.id, (device, []))
        if threat is not None:
            open_threats.append(OpenThreat(threat, RiskLevel(risk) if risk else RiskLevel.NONE))
    return [_status(device, open_threats, policy) for device, open_threats in found.values()]


def _status(device: Device, open_threats: list[OpenThreat], policy: RiskLevel) -> DeviceStatus:
    risks = [t.risk for t in open_threats]
    top = max(risks, key=lambda level: level.rank, default=RiskLevel.NONE)
    return DeviceStatus(
        device=device,
        compliance=device_compliance(device, risks, policy),
        security=security_status(top),
        open_threats=open_threats,
    )


def by_owner(session: Session, email: str, policy: RiskLevel) -> list[DeviceStatus]:
    rows = session.execute(_BY_OWNER, {"key": email.strip().lower()}).all()
    return _statuses(rows, policy)


def by_id(session: Session, device_id: str, policy: RiskLevel) -> DeviceStatus | None:
    found = _statuses(session.execute(_BY_ID, {"key": device_id.strip().lower()}).all(), policy)
    return found[0] if found else None


def listing(
    session: Session, state: str, owners: ColumnElement[bool] | None, limit: int
) -> tuple[list[Device], int]:
    """Devices in `state` (oldest check-in first), at most `limit`, and how many there are."""
    where = list(STATE_FILTERS[state])
    if owners is not None:
        where.append(owners)
    total = int(session.exec(select(func.count()).select_from(Device).where(*where)).one())
    order = col(Device.enrolled_at) if state == "pending" else col(Device.checkin_time)
    rows = session.exec(select(Device).where(*where).order_by(order, col(Device.id)).limit(limit)).all()
    return list(rows), total
