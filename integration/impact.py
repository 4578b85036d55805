"""What a risk-level or policy change does, previewed without changing anything, then applied.

Preview and apply share one computation: `apply_*` computes the impact inside the same write
transaction that makes the change, so what the admin was shown is what happened.
"""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import except_, func
from sqlmodel import Session, col, select, update

from integration import audit, tenant
from integration.compliance import count_devices, hot_classifications, protected_with_open_threat
from integration.levels import RiskLevel
from storage.models import Classification, CompliancePolicy, Threat


@dataclass(frozen=True)
class Impact:
    newly_noncompliant: int
    newly_compliant: int
    open_threats: int  # open threats whose current risk changes

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class RiskChange:
    """New levels for some classifications and/or a new policy level."""

    levels: Mapping[str, RiskLevel]
    policy: RiskLevel | None = None


def preview(session: Session, change: RiskChange) -> Impact:
    levels = tenant.risk_levels(session)
    policy = tenant.policy_level(session)
    changed = {name: level for name, level in change.levels.items() if levels[name] is not level}
    old_hot = hot_classifications(levels, policy)
    new_hot = hot_classifications({**levels, **changed}, change.policy or policy)
    return Impact(
        newly_noncompliant=_devices_gaining(session, new_hot, old_hot),
        newly_compliant=_devices_gaining(session, old_hot, new_hot),
        open_threats=_open_threats(session, set(changed)),
    )


def apply(session: Session, change: RiskChange, *, actor: str, at: datetime, action: str) -> Impact:
    """Make the change, audit it, and return its impact (computed before the change, same txn)."""
    impact = preview(session, change)
    levels = tenant.risk_levels(session)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for name, level in sorted(change.levels.items()):
        if levels[name] is not level:
            before[name], after[name] = levels[name].value, level.value
            session.exec(
                update(Classification).where(col(Classification.name) == name).values(risk=level.value)
            )
    if change.policy is not None:
        policy = session.get(CompliancePolicy, 1)
        assert policy is not None
        if policy.noncompliant_at != change.policy.value:
            before["policy"], after["policy"] = policy.noncompliant_at, change.policy.value
            policy.noncompliant_at = change.policy.value
            session.add(policy)
    if after:
        audit.record(
            session,
            at=at,
            actor=actor,
            change=audit.Change(action, before, {**after, "impact": impact.as_dict()}),
        )
    return impact


def _devices_gaining(session: Session, gained: set[str], held: set[str]) -> int:
    """Activated, protected devices with an open threat in `gained` and none in `held`."""
    newly = gained - held
    if not newly:
        return 0
    candidates = protected_with_open_threat(newly)
    if not held:
        return count_devices(session, candidates)
    still_held = select(col(Threat.device_id)).where(
        col(Threat.status) == "OPEN", col(Threat.classification).in_(sorted(held))
    )
    # A set difference reads each side once; NOT EXISTS per candidate threat would probe the index
    # once per held classification (`policy set low` at 1,000,000 devices: 1.5 s instead of 0.5 s).
    gaining = except_(candidates, still_held).subquery()
    return int(session.exec(select(func.count()).select_from(gaining)).one())


def _open_threats(session: Session, classes: set[str]) -> int:
    if not classes:
        return 0
    query = (
        select(func.count())
        .select_from(Threat)
        .where(Threat.status == "OPEN", col(Threat.classification).in_(sorted(classes)))
    )
    return int(session.exec(query).one())
