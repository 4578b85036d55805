"""The tenant's settings: subscription, connector, enrollment, compliance policy, classifications.

The settings tables hold one row each (`id = 1`); the store creates them with defaults.
"""

from datetime import datetime

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from storage.states import RiskLevel
from storage.types import StrEnumType, UTCDateTime


class Subscription(SQLModel, table=True):
    id: int = Field(default=1, primary_key=True)
    tenant_id: str | None = None
    full_access_group_id: str | None = None
    restricted_access_group_id: str | None = None
    consent_granted: bool = False
    consent_by: str | None = None
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Connector(SQLModel, table=True):
    id: int = Field(default=1, primary_key=True)
    state: str = "notSetUp"
    heartbeat_minutes: int = 60
    device_status_sync: bool = True
    threat_status_sync: bool = True
    error_email: str | None = None
    last_heartbeat: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EnrollmentGroup(SQLModel, table=True):
    """An Entra group name the connector enrolls; matched case-sensitively."""

    name: str = Field(primary_key=True)
    added_at: datetime = Field(sa_type=UTCDateTime)


class EnrollmentSettings(SQLModel, table=True):
    id: int = Field(default=1, primary_key=True)
    disconnected_days: int = 30


class CompliancePolicy(SQLModel, table=True):
    id: int = Field(default=1, primary_key=True)
    noncompliant_at: RiskLevel = Field(default=RiskLevel.HIGH, sa_type=StrEnumType(RiskLevel))


class Classification(SQLModel, table=True):
    name: str = Field(primary_key=True)
    category: str
    default_risk: RiskLevel = Field(sa_type=StrEnumType(RiskLevel))
    risk: RiskLevel = Field(sa_type=StrEnumType(RiskLevel))
    # A power of two of its own: a set of classifications is the OR of their bits
    # (`Device.open_classifications`). Given once (`integration.tenant.ensure_defaults`), never changed.
    bit: int = Field(sa_type=BigInteger, unique=True)


class ReportedSeverity(SQLModel, table=True):
    """The severity the source last reported for a classification: Lookout's console policy as seen
    from its threats. Where it differs from `Classification.risk` (the policy the admins want), that
    is policy drift (DESIGN §8)."""

    classification: str = Field(primary_key=True)
    risk: RiskLevel = Field(sa_type=StrEnumType(RiskLevel))
    seen_at: datetime = Field(sa_type=UTCDateTime)
