"""Source events and the one function that applies a batch of them to the store.

Every source (the demo simulator, `mesbot demo threat`, and the real Lookout and Graph clients of
issue 9) reports what it saw as `DeviceReport`s and `ThreatReport`s; `apply` writes them in the
caller's transaction together with what they cause — outbox rows for threats that became OPEN,
compliance flips for the digest, and the source's cursor — so a crash keeps all of it or none.
"""

from dataclasses import dataclass, field
from datetime import datetime

from storage.states import (
    ActivationStatus,
    Platform,
    ProtectionStatus,
    RiskLevel,
    SecurityStatus,
    ThreatStatus,
)


@dataclass(frozen=True)
class DeviceReport:
    """A device as the source now sees it. `None` fields are unknown to this report and left as they are
    (a new device needs `owner_email`, `platform` and `activation_status`)."""

    id: str
    owner_email: str | None = None
    name: str | None = None  # untrusted
    platform: Platform | None = None
    activation_status: ActivationStatus | None = None
    protection_status: ProtectionStatus | None = None
    security_status: SecurityStatus | None = None
    checkin_time: datetime | None = None
    activated_at: datetime | None = None
    enrolled_at: datetime | None = None
    os_version: str | None = None
    security_patch_level: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    client_version: str | None = None


@dataclass(frozen=True)
class ThreatReport:
    """A threat as the source now sees it: new, or the same id with a new status."""

    id: str
    device_id: str
    status: ThreatStatus
    classification: str  # Lookout's enum name
    risk: RiskLevel  # the severity the source reported
    type: str  # APPLICATION | FILE | NETWORK | CONFIGURATION | OS | WEB_CONTENT
    detected_at: datetime
    resolved_at: datetime | None = None
    app_name: str | None = None  # untrusted
    package_name: str | None = None
    path: str | None = None
    network_ssid: str | None = None  # untrusted
    url: str | None = None  # untrusted


SourceEvent = DeviceReport | ThreatReport


@dataclass(frozen=True)
class Cursor:
    """Where a source is: committed with the changes it led to."""

    name: str
    value: str


@dataclass
class Applied:
    """What a batch changed."""

    devices_added: int = 0
    devices_changed: int = 0
    threats_opened: list[str] = field(default_factory=list)  # threat ids that became OPEN
    threats_closed: int = 0
    alerts: int = 0  # outbox rows enqueued (or folded into a summary)
    flips: int = 0  # devices whose compliance changed
    skipped: list[str] = field(default_factory=list)  # why an event could not be applied
