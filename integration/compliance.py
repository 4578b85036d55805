"""Compliance as Intune computes it from Lookout's data (DOMAIN.md).

A device is noncompliant when it is activated but not protected (disconnected, or the app was
uninstalled: Intune gets no partner data) or when it has an OPEN threat whose classification's
*current* risk is at or above the policy level. Pending devices are `pending`; deactivated and
deleted devices are outside compliance (`not enrolled`) and are not counted.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sqlalchemy import func
from sqlmodel import Session, col, select

from integration import tenant
from integration.levels import RiskLevel
from storage.models import DeviceTally, DirectoryGroup, OpenThreatTally
from storage.models.tally import EVERY_DEVICE
from storage.states import ActivationStatus, ProtectionStatus


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


class DeviceStates(Protocol):
    """A device's states (a `Device`, or the columns `integration.devices` reads of one)."""

    @property
    def activation_status(self) -> ActivationStatus: ...

    @property
    def protection_status(self) -> ProtectionStatus: ...


def device_compliance(device: DeviceStates, open_risks: Iterable[RiskLevel], policy: RiskLevel) -> Compliance:
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
    group: DirectoryGroup | None = None,
) -> EnrollmentCounts:
    """Counts by state and compliance, of every device or of those whose owner is in `group`.

    Read from the tallies the store keeps (storage/models/tally.py), whatever the number of devices:
    a dozen state rows, and the sets of open classifications that meet the hot ones.
    """
    group_id = group.id if group else EVERY_DEVICE
    states = select(DeviceTally.activation_status, DeviceTally.protection_status, DeviceTally.devices).where(
        DeviceTally.group_id == group_id
    )
    tally: dict[tuple[ActivationStatus, ProtectionStatus], int] = {
        (ActivationStatus(a), ProtectionStatus(p)): n for a, p, n in session.exec(states).all()
    }

    def total(activation: ActivationStatus, protection: ProtectionStatus | None = None) -> int:
        return sum(n for (a, p), n in tally.items() if a == activation and protection in (None, p))

    activated = total(ActivationStatus.ACTIVATED)
    hot = hot_bits(tenant.classification_bits(session), levels, policy)
    threatened = devices_with_open(session, group_id, hot)
    compliant = total(ActivationStatus.ACTIVATED, ProtectionStatus.PROTECTED) - threatened
    return EnrollmentCounts(
        pending=total(ActivationStatus.PENDING),
        activated=activated,
        deactivated=total(ActivationStatus.DEACTIVATED) + total(ActivationStatus.DELETED),
        disconnected=total(ActivationStatus.ACTIVATED, ProtectionStatus.DISCONNECTED),
        compliant=compliant,
        noncompliant=activated - compliant,
    )


def devices_with_open(session: Session, group_id: str, bits: int, *, without: int = 0) -> int:
    """Activated, protected devices (of the tally group) with an open threat among the `bits`
    classifications and, with `without`, none among those."""
    if not bits & ~without:
        return 0
    column = col(OpenThreatTally.open_classifications)
    query = select(func.coalesce(func.sum(OpenThreatTally.devices), 0)).where(
        OpenThreatTally.group_id == group_id, column.op("&")(bits) != 0
    )
    if without:
        query = query.where(column.op("&")(without) == 0)
    return int(session.exec(query).one())


def hot_bits(bits: Mapping[str, int], levels: Mapping[str, RiskLevel], policy: RiskLevel) -> int:
    """The hot classifications (`hot_classifications`) as a bit set (`Classification.bit` each), the
    form in which devices carry their open threats' classifications."""
    hot = hot_classifications(levels, policy)
    return sum(bit for name, bit in bits.items() if name in hot)


def of(activation: ActivationStatus, protection: ProtectionStatus, open_bits: int, hot: int) -> Compliance:
    """A device's compliance from its states and its open threats' classifications as a bit set."""
    if activation == ActivationStatus.PENDING:
        return Compliance.PENDING
    if activation != ActivationStatus.ACTIVATED:
        return Compliance.NOT_ENROLLED
    if protection != ProtectionStatus.PROTECTED or open_bits & hot:
        return Compliance.NONCOMPLIANT
    return Compliance.COMPLIANT
