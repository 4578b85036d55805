"""Compliance as Intune computes it from Lookout's data (DOMAIN.md).

A device is noncompliant when it is activated but not protected (disconnected, or the app was
uninstalled: Intune gets no partner data) or when it has an OPEN threat whose classification's
*current* risk is at or above the policy level. Pending devices are `pending`; deactivated and
deleted devices are outside compliance (`not enrolled`) and are not counted.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, distinct, func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from integration.levels import RiskLevel
from storage.models import Device, Threat
from storage.states import ActivationStatus, ProtectionStatus, ThreatStatus


class Compliance(StrEnum):
    """A device's compliance as Intune sees it."""

    COMPLIANT = "compliant"
    NONCOMPLIANT = "noncompliant"
    PENDING = "pending"  # enrolled, app not activated yet
    NOT_ENROLLED = "not enrolled"  # deactivated or deleted: outside the counts


def hot_classifications(levels: Mapping[str, RiskLevel], policy: RiskLevel) -> set[str]:
    """Classifications whose open threats make a device noncompliant under `policy`.

    A classification at `none` never counts, whatever the policy.
    """
    return {
        name for name, level in levels.items() if level is not RiskLevel.NONE and level.rank >= policy.rank
    }


def device_compliance(device: Device, open_risks: Iterable[RiskLevel], policy: RiskLevel) -> Compliance:
    if device.activation_status == ActivationStatus.PENDING:
        return Compliance.PENDING
    if device.activation_status != ActivationStatus.ACTIVATED:
        return Compliance.NOT_ENROLLED
    if device.protection_status != ProtectionStatus.PROTECTED:
        return Compliance.NONCOMPLIANT
    hot = any(level is not RiskLevel.NONE and level.rank >= policy.rank for level in open_risks)
    return Compliance.NONCOMPLIANT if hot else Compliance.COMPLIANT


@dataclass(frozen=True)
class EnrollmentCounts:
    pending: int
    activated: int
    deactivated: int
    disconnected: int
    compliant: int
    noncompliant: int

    def as_counts(self) -> dict[str, int]:
        return {
            "pending": self.pending,
            "activated": self.activated,
            "deactivated": self.deactivated,
            "disconnected": self.disconnected,
        }

    def as_compliance(self) -> dict[str, int]:
        return {
            "compliant": self.compliant,
            "noncompliant": self.noncompliant,
            "pending": self.pending,
        }


def enrollment_counts(
    session: Session,
    levels: Mapping[str, RiskLevel],
    policy: RiskLevel,
    owners: ColumnElement[bool] | None = None,
) -> EnrollmentCounts:
    """Counts by state and compliance, optionally for devices whose owner matches `owners`."""
    by_state = select(Device.activation_status, Device.protection_status, func.count()).group_by(
        Device.activation_status, Device.protection_status
    )
    if owners is not None:
        by_state = by_state.where(owners)
    tally: dict[tuple[ActivationStatus, ProtectionStatus], int] = {
        (ActivationStatus(activation), ProtectionStatus(protection)): count
        for activation, protection, count in session.exec(by_state).all()
    }

    def total(activation: ActivationStatus, protection: ProtectionStatus | None = None) -> int:
        return sum(n for (a, p), n in tally.items() if a == activation and protection in (None, p))

    activated = total(ActivationStatus.ACTIVATED)
    unprotected = activated - total(ActivationStatus.ACTIVATED, ProtectionStatus.PROTECTED)
    with_threat = _protected_with_open_threat(session, hot_classifications(levels, policy), owners)
    return EnrollmentCounts(
        pending=total(ActivationStatus.PENDING),
        activated=activated,
        deactivated=total(ActivationStatus.DEACTIVATED) + total(ActivationStatus.DELETED),
        disconnected=total(ActivationStatus.ACTIVATED, ProtectionStatus.DISCONNECTED),
        compliant=activated - unprotected - with_threat,
        noncompliant=unprotected + with_threat,
    )


def protected_with_open_threat(classes: set[str]) -> SelectOfScalar[str]:
    """Ids of activated, protected devices with an open threat in `classes`, once per such threat."""
    return (
        select(col(Threat.device_id))
        .join(Device, col(Device.id) == Threat.device_id)
        .where(
            col(Threat.status) == ThreatStatus.OPEN,
            col(Threat.classification).in_(sorted(classes)),
            col(Device.activation_status) == ActivationStatus.ACTIVATED,
            col(Device.protection_status) == ProtectionStatus.PROTECTED,
        )
    )


def count_devices(session: Session, device_ids: SelectOfScalar[str]) -> int:
    """How many distinct devices a `protected_with_open_threat` select names."""
    ids = device_ids.subquery()
    return int(session.exec(select(func.count(distinct(ids.c.device_id))).select_from(ids)).one())


def _protected_with_open_threat(
    session: Session, classes: set[str], owners: ColumnElement[bool] | None
) -> int:
    if not classes:
        return 0
    devices = protected_with_open_threat(classes)
    if owners is not None:
        devices = devices.where(owners)
    return count_devices(session, devices)
