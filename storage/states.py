"""The states Lookout and mesbot give devices, threats, audit entries and outbox rows (DOMAIN.md).

They are the column types of the store and are used as they are everywhere above it: compare
`device.activation_status == ActivationStatus.ACTIVATED`, never against a bare string.
"""

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


class Platform(StrEnum):
    ANDROID = "ANDROID"
    IOS = "IOS"


class ActivationStatus(StrEnum):
    PENDING = "PENDING"  # in an enrollment group, app not activated yet
    ACTIVATED = "ACTIVATED"
    DEACTIVATED = "DEACTIVATED"
    DELETED = "DELETED"


class ProtectionStatus(StrEnum):
    PROTECTED = "PROTECTED"
    DISCONNECTED = "DISCONNECTED"  # no check-in within the disconnected-days setting
    UNINSTALLED = "UNINSTALLED"


class SecurityStatus(StrEnum):
    SECURE = "SECURE"
    THREATS_LOW = "THREATS_LOW"
    THREATS_MEDIUM = "THREATS_MEDIUM"
    THREATS_HIGH = "THREATS_HIGH"


class ThreatStatus(StrEnum):
    OPEN = "OPEN"
    RESOLVED = "RESOLVED"
    IGNORED = "IGNORED"


class AuditOutcome(StrEnum):
    APPLIED = "applied"
    DENIED = "denied"


class OutboxState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    SENT = "sent"
    FAILED = "failed"  # the channel refused it for good (the digest lists these)
    EXPIRED = "expired"  # not sent within its TTL (the digest counts these)
    WITHDRAWN = "withdrawn"  # not sent: the recipient opted out or lost access before it went
