"""Intune's view of a device next to mesbot's, and when they disagree.

Lookout reports a device's threat level to Intune, and Intune re-evaluates compliance when the device
next checks in with it, so for a while after a threat opens or is fixed the two disagree (the "sync
lag" admins ask about). mesbot reads Intune's `complianceState` and `partnerReportedThreatState` from
Graph (`integration.sources.directory_sync`) and `status` shows them side by side, flagging a
disagreement with when Intune last reported.
"""

from dataclasses import dataclass
from datetime import datetime

from integration.compliance import Compliance

# Partner threat states that mean Lookout told Intune about a problem (a threat, or a silent device)
LOOKOUT_FLAGGED = {"lowSeverity", "mediumSeverity", "highSeverity", "compromised", "unresponsive"}


@dataclass(frozen=True, slots=True)
class IntuneView:
    compliance: str  # Graph complianceState: compliant, noncompliant, inGracePeriod, unknown, …
    threat_state: str  # Graph partnerReportedThreatState
    seen_at: datetime | None  # when mesbot read it from Graph
    sync_lag: str | None  # how the views disagree, when they do
    note: str | None = None  # Intune blocks the device for a reason outside Lookout


def compare(
    compliance: Compliance, intune_compliance: str | None, threat_state: str | None, seen_at: datetime | None
) -> IntuneView | None:
    """Intune's view of a device that mesbot judges `compliance`, or None when Intune has not said."""
    if intune_compliance is None and threat_state is None:
        return None
    said, threat = intune_compliance or "unknown", threat_state or "unknown"
    lag = note = None
    if compliance is Compliance.NONCOMPLIANT and said == "compliant":
        lag = "mesbot (from Lookout) says noncompliant, Intune still says compliant"
    elif compliance is Compliance.COMPLIANT and said == "noncompliant":
        if threat in LOOKOUT_FLAGGED:
            lag = (
                f"mesbot (from Lookout) says compliant, Intune still says noncompliant "
                f"({threat} from Lookout)"
            )
        else:
            note = (
                "Intune marks it noncompliant for a reason outside Lookout: "
                "check the device's other compliance policies in Intune."
            )
    return IntuneView(said, threat, seen_at, lag, note)
