"""Device status as an admin or a device owner asks for it: state, compliance, open threats."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, case, func
from sqlalchemy import select as sa_select  # sqlmodel's select types at most four columns
from sqlmodel import Session, col, select

from integration import intune_view
from integration.compliance import Compliance, device_compliance
from integration.intune_view import IntuneView
from integration.levels import RiskLevel, security_status
from integration.tenant import stamp
from storage.models import (
    Classification,
    Device,
    DeviceTally,
    DirectoryGroup,
    DirectoryUser,
    GroupMembership,
    Threat,
)
from storage.models.tally import EVERY_DEVICE
from storage.prepared import Prepared
from storage.states import ActivationStatus, Platform, ProtectionStatus, SecurityStatus, ThreatStatus

# Which devices a state name in `enrollment pending|disconnected` selects (any protection when None).
STATES: dict[str, tuple[ActivationStatus, ProtectionStatus | None]] = {
    "pending": (ActivationStatus.PENDING, None),
    "disconnected": (ActivationStatus.ACTIVATED, ProtectionStatus.DISCONNECTED),
}


def in_state(state: str, table: type[Device] | type[DeviceTally] = Device) -> ColumnElement[bool]:
    """Rows of `table` (devices, or device tally buckets) in the named state."""
    activation, protection = STATES[state]
    clauses = [col(table.activation_status) == activation]
    if protection is not None:
        clauses.append(col(table.protection_status) == protection)
    return and_(*clauses)


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """The columns of a `Device` that status shows and compliance needs: read as a row, because
    loading `Device` entities cost more than the query itself (and Slack's ack waits for it)."""

    id: str
    name: str | None
    owner_email: str
    platform: Platform
    activation_status: ActivationStatus
    protection_status: ProtectionStatus
    checkin_time: datetime | None
    intune_compliance: str | None  # what Graph last said (Lookout mode), None until then
    intune_threat_state: str | None
    intune_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class ThreatFacts:
    """The columns of an open `Threat` that status shows."""

    id: str
    classification: str
    detected_at: datetime
    app_name: str | None


@dataclass(frozen=True)
class OpenThreat:
    threat: ThreatFacts
    risk: RiskLevel  # the classification's current level, not what the source reported


@dataclass(frozen=True)
class DeviceStatus:
    device: DeviceFacts
    compliance: Compliance
    security: SecurityStatus  # from the open threats at current risk levels
    open_threats: list[OpenThreat]
    intune: IntuneView | None = None  # Intune's view beside it (Lookout mode), None when it has none


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


def _owner_in(group: DirectoryGroup, *, walk: bool) -> ColumnElement[bool]:
    """Devices whose owner is a member of `group`, phrased for the plan wanted: `walk` checks each
    device as an ordered index hands them out (EXISTS, two key lookups), otherwise the members'
    addresses are listed first and their devices looked up by owner (IN)."""
    members = (
        select(DirectoryUser.email)
        .join(GroupMembership, col(GroupMembership.user_id) == DirectoryUser.id)
        .where(GroupMembership.group_id == group.id)
    )
    if walk:
        return members.where(col(DirectoryUser.email) == Device.owner_email).exists()
    return col(Device.owner_email).in_(members)


_DEVICE_FACTS = (
    col(Device.id),
    col(Device.name),
    col(Device.owner_email),
    col(Device.platform),
    col(Device.activation_status),
    col(Device.protection_status),
    col(Device.checkin_time),
    col(Device.intune_compliance),
    col(Device.intune_threat_state),
    col(Device.intune_seen_at),
)
_THREAT_FACTS = (col(Threat.id), col(Threat.classification), col(Threat.detected_at), col(Threat.app_name))


def _with_open_threats(which: ColumnElement[bool]) -> Any:
    open_threat = and_(col(Threat.device_id) == Device.id, col(Threat.status) == ThreatStatus.OPEN)
    return (
        sa_select(*_DEVICE_FACTS, *_THREAT_FACTS, col(Classification.risk))
        .select_from(Device)
        .outerjoin(Threat, open_threat)
        .outerjoin(Classification, col(Classification.name) == Threat.classification)
        .where(which)
        .order_by(col(Device.enrolled_at), col(Device.id), col(Threat.detected_at).desc())
    )


# The two lookups `status` makes, built once (building costs more than running them).
_BY_OWNER = Prepared(_with_open_threats(col(Device.owner_email) == bindparam("key")))
_BY_ID = Prepared(_with_open_threats(col(Device.id) == bindparam("key")))


def load(session: Session, which: ColumnElement[bool], policy: RiskLevel) -> list[DeviceStatus]:
    """Devices matching `which` with their open threats (each at its classification's current
    level) and compliance under `policy`: one indexed query. It runs on the session's connection
    (a Core statement needs none of the ORM's per-execution work), so it sees what was flushed, not
    objects merely added to the session."""
    return _statuses(session.connection().execute(_with_open_threats(which)).all(), policy)


_DEVICE_WIDTH, _THREAT_WIDTH = len(_DEVICE_FACTS), len(_THREAT_FACTS)


def _statuses(rows: Iterable[Any], policy: RiskLevel) -> list[DeviceStatus]:
    found: dict[str, tuple[DeviceFacts, list[OpenThreat]]] = {}
    for row in rows:
        device_id = row[0]
        if device_id not in found:
            found[device_id] = (DeviceFacts(*row[:_DEVICE_WIDTH]), [])
        threat, risk = row[_DEVICE_WIDTH : _DEVICE_WIDTH + _THREAT_WIDTH], row[-1]
        if threat[0] is not None:
            level = RiskLevel(risk) if risk else RiskLevel.NONE
            found[device_id][1].append(OpenThreat(ThreatFacts(*threat), level))
    return [_status(device, open_threats, policy) for device, open_threats in found.values()]


def _status(device: DeviceFacts, open_threats: list[OpenThreat], policy: RiskLevel) -> DeviceStatus:
    risks = [t.risk for t in open_threats]
    top = max(risks, key=lambda level: level.rank, default=RiskLevel.NONE)
    compliance = device_compliance(device, risks, policy)
    return DeviceStatus(
        device=device,
        compliance=compliance,
        security=security_status(top),
        open_threats=open_threats,
        intune=intune_view.compare(
            compliance, device.intune_compliance, device.intune_threat_state, device.intune_seen_at
        ),
    )


def by_owner(session: Session, email: str, policy: RiskLevel) -> list[DeviceStatus]:
    rows = _BY_OWNER.all(session, {"key": email.strip().lower()})
    return _statuses(rows, policy)


def by_id(session: Session, device_id: str, policy: RiskLevel) -> DeviceStatus | None:
    rows = _BY_ID.all(session, {"key": device_id.strip().lower()})
    found = _statuses(rows, policy)
    return found[0] if found else None


def listing(
    session: Session, state: str, group: DirectoryGroup | None, limit: int
) -> tuple[list[Device], int]:
    """Devices in `state` (oldest first), at most `limit`, and how many there are (from the tally).

    With a group, the cheaper of two plans: walk every device in `state` in order until `limit` members'
    devices turn up (expected length: limit × all in state / the group's in state), or look up all the
    group members' devices and sort those. A large group walks a few dozen rows, a small one is read whole.
    """
    counts = _state_counts(session, state, group)
    total = counts.get(group.id if group else EVERY_DEVICE, (0, 0))[0]
    query = select(Device).where(in_state(state))
    if group is not None:
        everywhere = counts.get(EVERY_DEVICE, (0, 0))[0]
        walk = limit * everywhere < max(total, 1) * counts.get(group.id, (0, 0))[1]
        query = query.where(_owner_in(group, walk=walk))
    order = col(Device.enrolled_at) if state == "pending" else col(Device.checkin_time)
    rows = session.exec(query.order_by(order, col(Device.id)).limit(limit)).all()
    return list(rows), total


def _state_counts(session: Session, state: str, group: DirectoryGroup | None) -> dict[str, tuple[int, int]]:
    """Per tally group (every device, and `group`): devices in `state`, and devices in any state."""
    ids = [EVERY_DEVICE] + ([group.id] if group else [])
    query = (
        select(
            DeviceTally.group_id,
            func.sum(case((in_state(state, DeviceTally), DeviceTally.devices), else_=0)),
            func.sum(DeviceTally.devices),
        )
        .where(col(DeviceTally.group_id).in_(ids))
        .group_by(DeviceTally.group_id)
    )
    return {group_id: (int(n), int(every)) for group_id, n, every in session.exec(query).all()}
