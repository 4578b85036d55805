"""Policy drift (DESIGN §8): where Lookout's console policy differs from the one the admins want.

Lookout applies its own console policy and reports each threat's severity; mesbot's catalogue is the
policy the admins *want* (compliance, alerts and previews use it). `sync.apply` notes the severity the
source last reported for each classification; a classification whose reported severity differs from
the catalogue is drift, shown by `risk list` with the console change to make, and kept as a connector
error (`policy-drift:NAME`) so it is announced once and listed in the digest until it is put right.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from integration import connector_errors
from storage.models import Classification, ConnectorError, ReportedSeverity
from storage.states import RiskLevel

FINGERPRINT = "policy-drift:"


@dataclass(frozen=True)
class Drift:
    classification: str
    reported: RiskLevel  # what Lookout's console gives it (from its threats)
    wanted: RiskLevel  # mesbot's catalogue
    seen_at: datetime  # when Lookout last reported it

    @property
    def change(self) -> str:
        return (
            f"in the Lookout console (Mobile Risk Policy), set {self.classification} to "
            f"{self.wanted.value} (it reports {self.reported.value})"
        )


def note(session: Session, reports: Iterable[tuple[str, RiskLevel]], now: datetime) -> bool:
    """Remember the latest reported severity per classification; True when one changed."""
    latest = dict(reports)  # the last report of a classification in the batch wins
    if not latest:
        return False
    known = {
        row.classification: row
        for row in session.exec(
            select(ReportedSeverity).where(col(ReportedSeverity.classification).in_(list(latest)))
        ).all()
    }
    changed = False
    for name, risk in latest.items():
        row = known.get(name)
        if row is None or row.risk != risk:
            changed = True
        row = row or ReportedSeverity(classification=name, risk=risk, seen_at=now)
        row.risk, row.seen_at = risk, now
        session.add(row)
    return changed


def current(session: Session) -> list[Drift]:
    """Every classification whose reported severity differs from the catalogue, by name."""
    rows = session.exec(
        select(ReportedSeverity, Classification.risk)
        .join(Classification, col(Classification.name) == ReportedSeverity.classification)
        .where(col(Classification.risk) != ReportedSeverity.risk)
        .order_by(col(ReportedSeverity.classification))
    ).all()
    return [Drift(r.classification, r.risk, RiskLevel(wanted), r.seen_at) for r, wanted in rows]


def check(session: Session, now: datetime) -> list[Drift]:
    """Keep the `policy-drift:NAME` connector errors in step with the drift there is now."""
    drifts = current(session)
    for drift in drifts:
        connector_errors.record(
            session,
            FINGERPRINT + drift.classification,
            f"Policy drift: Lookout reports {drift.classification} as {drift.reported.value}, mesbot "
            f"wants {drift.wanted.value}. To fix it, {drift.change}; "
            f"or `risk set {drift.classification} {drift.reported.value}` to accept Lookout's level.",
            now,
        )
    drifting = {FINGERPRINT + d.classification for d in drifts}
    open_ones = session.exec(
        select(ConnectorError.fingerprint)
        .where(col(ConnectorError.fingerprint).startswith(FINGERPRINT))
        .where(col(ConnectorError.resolved_at).is_(None))
    ).all()
    for fingerprint in open_ones:
        if fingerprint not in drifting:
            connector_errors.resolve(session, fingerprint, now)
    return drifts
