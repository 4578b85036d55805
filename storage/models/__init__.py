"""Every table of the store; importing this module registers them all on `SQLModel.metadata`."""

from storage.models.claims import Claim
from storage.models.devices import Device, Threat
from storage.models.directory import DirectoryGroup, DirectoryUser, GroupMembership
from storage.models.notifier import ComplianceFlip, JobRun, StoredValue
from storage.models.operations import AuditEntry, ConnectorError, OutboxMessage, SourceCursor
from storage.models.pending import PendingChange
from storage.models.preferences import NotificationPreference, QuietHours
from storage.models.tally import DeviceTally, OpenThreatTally, TallyPause
from storage.models.tenant import (
    Classification,
    CompliancePolicy,
    Connector,
    EnrollmentGroup,
    EnrollmentSettings,
    ReportedSeverity,
    Subscription,
)

__all__ = [
    "AuditEntry",
    "Claim",
    "Classification",
    "ComplianceFlip",
    "CompliancePolicy",
    "Connector",
    "ConnectorError",
    "Device",
    "DeviceTally",
    "DirectoryGroup",
    "DirectoryUser",
    "EnrollmentGroup",
    "EnrollmentSettings",
    "GroupMembership",
    "JobRun",
    "NotificationPreference",
    "OpenThreatTally",
    "OutboxMessage",
    "PendingChange",
    "QuietHours",
    "ReportedSeverity",
    "SourceCursor",
    "StoredValue",
    "Subscription",
    "TallyPause",
    "Threat",
]
