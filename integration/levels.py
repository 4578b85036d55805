"""Risk levels, their order, and how a compliance policy reads in Intune's words."""

from enum import StrEnum


class RiskLevel(StrEnum):
    """A classification's risk level (Lookout's `ADVISORY`/`NONE` both mean `none`, DESIGN §8)."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {RiskLevel.NONE: 0, RiskLevel.LOW: 1, RiskLevel.MEDIUM: 2, RiskLevel.HIGH: 3}

# Levels a compliance policy can make noncompliant at; `none` would block every device.
POLICY_LEVELS = (RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW)

# Intune's compliance setting is "at or under" a level: noncompliant at High+ means the device
# may be at most Medium, and so on (DOMAIN.md, Microsoft Graph / Intune).
_INTUNE_AT_OR_UNDER = {
    RiskLevel.HIGH: "medium",
    RiskLevel.MEDIUM: "low",
    RiskLevel.LOW: "secured",
}


def intune_threat_level(noncompliant_at: RiskLevel) -> str:
    """The Intune "Require the device to be at or under the Device Threat Level" value."""
    return _INTUNE_AT_OR_UNDER[noncompliant_at]


def security_status(level: RiskLevel) -> str:
    """Lookout's `security_status` for a device whose highest open threat is at `level`."""
    return "SECURE" if level is RiskLevel.NONE else f"THREATS_{level.value.upper()}"
