"""Devices and their threats as Lookout reports them (DOMAIN.md)."""

from datetime import datetime

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from storage.states import (
    ActivationStatus,
    Platform,
    ProtectionStatus,
    RiskLevel,
    SecurityStatus,
    ThreatStatus,
)
from storage.types import StrEnumType, UTCDateTime


class Device(SQLModel, table=True):
    __table_args__ = (
        # enrollment counts and state listings; the sweep's check-in range scan
        Index("ix_device_state", "activation_status", "protection_status", "checkin_time"),
        # `enrollment pending` lists the oldest pending devices first without sorting them all
        Index("ix_device_enrolled", "activation_status", "enrolled_at", "id"),
    )

    id: str = Field(primary_key=True)  # Lookout device guid
    owner_email: str = Field(index=True)  # lower-case
    name: str | None = None  # from the phone: untrusted
    platform: Platform = Field(sa_type=StrEnumType(Platform))
    activation_status: ActivationStatus = Field(sa_type=StrEnumType(ActivationStatus))
    protection_status: ProtectionStatus = Field(sa_type=StrEnumType(ProtectionStatus))
    security_status: SecurityStatus = Field(sa_type=StrEnumType(SecurityStatus))
    checkin_time: datetime | None = Field(default=None, sa_type=UTCDateTime)
    activated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    enrolled_at: datetime = Field(sa_type=UTCDateTime)
    os_version: str | None = None
    security_patch_level: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    client_version: str | None = None
    # Intune's managed device id (Lookout's `device.info.external_id`) and what Graph last said about it
    external_id: str | None = Field(default=None, index=True)
    intune_compliance: str | None = None  # Graph `complianceState`: compliant, noncompliant, …
    intune_threat_state: str | None = None  # Graph `partnerReportedThreatState`
    intune_seen_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The classifications of its OPEN threats as a bit set (each `Classification.bit` OR-ed), kept by
    # the store's triggers (storage/tally.py) so device counts can tell compliance without a join.
    open_classifications: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": "0"})


class Threat(SQLModel, table=True):
    __table_args__ = (
        # a device's open threats; with the classification it covers the tally triggers' recount (the
        # narrower (device_id, status) lost to the index below in SQLite's planner, which then scanned
        # every open threat per device)
        Index("ix_threat_device_status_class", "device_id", "status", "classification"),
        # compliance and impact queries: open threats of given classifications → their devices
        Index("ix_threat_status_class_device", "status", "classification", "device_id"),
    )

    id: str = Field(primary_key=True)  # Lookout threat guid
    device_id: str = Field(foreign_key="device.id")
    status: ThreatStatus = Field(sa_type=StrEnumType(ThreatStatus))
    classification: str
    risk: RiskLevel = Field(sa_type=StrEnumType(RiskLevel))  # severity as the source reported it
    type: str  # APPLICATION | FILE | NETWORK | CONFIGURATION | OS | WEB_CONTENT
    detected_at: datetime = Field(sa_type=UTCDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    app_name: str | None = None  # untrusted
    package_name: str | None = None
    path: str | None = None
    network_ssid: str | None = None  # untrusted
    url: str | None = None  # untrusted
