"""What a risk-level or policy change does, previewed without changing anything, then applied.

Preview and apply share one computation: `apply_*` computes the impact inside the same write
transaction that makes the change, so what the admin was shown is what happened.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select, update

from integration import audit, tenant
from integration.actions import Action
from integration.compliance import devices_with_open, hot_bits
from integration.levels import RiskLevel
from storage.models import Classification, CompliancePolicy, Threat
from storage.models.tally import EVERY_DEVICE
from storage.states import ThreatStatus


@dataclass(frozen=True)
class Impact:
    newly_noncompliant: int
    newly_compliant: int
    open_threats: int  # open threats whose current risk changes

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


ZERO = Impact(0, 0, 0)


@dataclass(frozen=True)
class RiskChange:
    """New levels for some classifications and/or a new policy level."""

    levels: Mapping[str, RiskLevel]
    policy: RiskLevel | None = None


@dataclass(frozen=True)
class RiskState:
    """The catalogue's current levels and the policy: read once per command, passed along."""

    levels: Mapping[str, RiskLevel]
    policy: RiskLevel

    def differences(self, change: RiskChange) -> RiskChange:
        """Only the parts of `change` that differ from this state."""
        levels = {name: level for name, level in change.levels.items() if self.levels[name] is not level}
        policy = change.policy if change.policy is not self.policy else None
        return RiskChange(levels, policy)

    def changes_anything(self, change: RiskChange) -> bool:
        differences = self.differences(change)
        return bool(differences.levels) or differences.policy is not None


def current(session: Session) -> RiskState:
    return RiskState(tenant.risk_levels(session), tenant.policy_level(session))


def preview(session: Session, change: RiskChange, state: RiskState | None = None) -> Impact:
    state = state or current(session)
    changed = state.differences(change)
    bits = tenant.classification_bits(session)
    old_hot = hot_bits(bits, state.levels, state.policy)
    new_hot = hot_bits(bits, {**state.levels, **changed.levels}, changed.policy or state.policy)
    return Impact(
        newly_noncompliant=devices_with_open(session, EVERY_DEVICE, new_hot, without=old_hot),
        newly_compliant=devices_with_open(session, EVERY_DEVICE, old_hot, without=new_hot),
        open_threats=_open_threats(session, set(changed.levels)),
    )


def apply(
    session: Session,
    change: RiskChange,
    state: RiskState | None = None,
    *,
    actor: str,
    at: datetime,
    action: Action,
) -> Impact:
    """Make the change, audit it, and return its impact (computed before the change, in the same
    transaction). A change that changes nothing writes nothing and has no impact."""
    state = state or current(session)
    changed = state.differences(change)
    if not changed.levels and changed.policy is None:
        return ZERO
    impact = preview(session, changed, state)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, level in sorted(changed.levels.items()):
        before[name], after[name] = state.levels[name].value, level.value
        session.exec(update(Classification).where(col(Classification.name) == name).values(risk=level))
    if changed.policy is not None:
        before["policy"], after["policy"] = state.policy.value, changed.policy.value
        session.exec(
            update(CompliancePolicy)
            .where(col(CompliancePolicy.id) == 1)
            .values(noncompliant_at=changed.policy)
        )
    audit.record(
        session,
        at=at,
        actor=actor,
        change=audit.Change(action, before, {**after, "impact": impact.as_dict()}),
    )
    return impact


def _open_threats(session: Session, classes: set[str]) -> int:
    if not classes:
        return 0
    query = (
        select(func.count())
        .select_from(Threat)
        .where(col(Threat.status) == ThreatStatus.OPEN, col(Threat.classification).in_(sorted(classes)))
    )
    return int(session.exec(query).one())
