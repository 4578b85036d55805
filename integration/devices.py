"""Device status as an admin or a device owner asks for it: state, compliance, open threats."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from integration.compliance import device_compliance
from integration.levels import RiskLevel, security_status
from storage.models import Classification, Device, DirectoryGroup, DirectoryUser, GroupMembership, Threat

# Which devices a state name in `enrollment pending|disconnected` selects.
STATE_FILTERS: dict[str, tuple[ColumnElement[bool], ...]] = {
    "pending": (col(Device.activation_status) == "PENDING",),
    "disconnected": (
        col(Device.activation_status) == "ACTIVATED",
        col(Device.protection_status) == "DISCONNECTED",
    ),
}


@dataclass(frozen=True)
class OpenThreat:
    threat: Threat
    risk: RiskLevel  # the classification's current level, not what the source reported


@dataclass(frozen=True)
class DeviceStatus:
    device: Device
    compliance: str
    security: str  # from the open threats at current risk levels
    open_threats: list[OpenThreat]


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


def statuses(session: Session, devices: Sequence[Device], policy: RiskLevel) -> list[DeviceStatus]:
    """Compliance and open threats for a handful of devices: one indexed query for the threats,
    each with its classification's current level."""
    if not devices:
        return []
    query = (
        select(Threat, Classification.risk)
        .outerjoin(Classification, col(Classification.name) == Threat.classification)
        .where(col(Threat.device_id).in_([d.id for d in devices]), Threat.status == "OPEN")
        .order_by(col(Threat.detected_at).desc())
    )
    threats: dict[str, list[OpenThreat]] = defaultdict(list)
    for threat, risk in session.exec(query).all():
        threats[threat.device_id].append(OpenThreat(threat, RiskLevel(risk) if risk else RiskLevel.NONE))
    result = []
    for device in devices:
        open_threats = threats[device.id]
        risks = [t.risk for t in open_threats]
        top = max(risks, key=lambda level: level.rank, default=RiskLevel.NONE)
        result.append(
            DeviceStatus(
                device=device,
                compliance=device_compliance(device, risks, policy),
                security=security_status(top),
                open_threats=open_threats,
            )
        )
    return result


def by_owner(session: Session, email: str, policy: RiskLevel) -> list[DeviceStatus]:
    devices = session.exec(select(Device).where(owned_by(email)).order_by(col(Device.enrolled_at))).all()
    return statuses(session, devices, policy)


def by_id(session: Session, device_id: str, policy: RiskLevel) -> DeviceStatus | None:
    device = session.get(Device, device_id.strip().lower())
    return statuses(session, [device], policy)[0] if device else None


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
