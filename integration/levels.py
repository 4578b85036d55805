"""Risk levels, their order, and how a compliance policy reads in Intune's words."""

from storage.states import RiskLevel, SecurityStatus

__all__ = ["POLICY_LEVELS", "RiskLevel", "intune_threat_level", "security_status"]

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


def security_status(level: RiskLevel) -> SecurityStatus:
    """Lookout's `security_status` for a device whose highest open threat is at `level`."""
    return _SECURITY[level]


_SECURITY = {
    RiskLevel.NONE: SecurityStatus.SECURE,
    RiskLevel.LOW: SecurityStatus.THREATS_LOW,
    RiskLevel.MEDIUM: SecurityStatus.THREATS_MEDIUM,
    RiskLevel.HIGH: SecurityStatus.THREATS_HIGH,
}
