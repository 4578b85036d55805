"""Source events and the one function that applies a batch of them to the store.

Every source (the demo simulator, `mesbot demo threat`, and the real Lookout and Graph clients of
issue 9) reports what it saw as `DeviceReport`s and `ThreatReport`s; `apply` writes them in the
caller's transaction together with what they cause — outbox rows for threats that became OPEN,
compliance flips for the digest, and the source's cursor — so a crash keeps all of it or none.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import insert
from sqlalchemy import select as sa_select  # sqlmodel's select types at most four columns
from sqlmodel import Session, col, select

from integration import alerts, compliance, drift, enrollment, tenant
from integration.alerts import AlertPolicy
from integration.compliance import Compliance
from storage.models import ComplianceFlip, Device, SourceCursor, Threat
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
    external_id: str | None = None  # Intune's managed device id


@dataclass(frozen=True)
class ThreatReport:
    """A threat as the source now sees it: new, or the same id with a new status."""

    id: str
    device_id: str  # "" when the source did not say (an update of a threat already stored)
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


def apply(
    session: Session,
    events: Sequence[SourceEvent],
    *,
    now: datetime,
    policy: AlertPolicy | None = None,
    cursor: Cursor | None = None,
) -> Applied:
    """Write a batch of source events in the caller's transaction, with the alerts for threats that
    became OPEN, the compliance flips they caused and the source's cursor."""
    applied = Applied()
    devices = [e for e in events if isinstance(e, DeviceReport)]
    threats = _with_devices(session, [e for e in events if isinstance(e, ThreatReport)])
    touched = {d.id for d in devices} | {t.device_id for t in threats if t.device_id}
    hot = compliance.hot_bits(
        tenant.classification_bits(session), tenant.risk_levels(session), tenant.policy_level(session)
    )
    before = _compliance(session, touched, hot)
    # Read every row the batch touches in a few queries, and write them together: a `session.get` per
    # event (with its autoflush, one INSERT each) made a stream of threats ~5× slower, and a row object
    # per new threat cost more than the INSERT itself, so new threats go in as one multi-row INSERT.
    # A device only a threat names needs just the columns an alert shows, not a row object.
    known_devices = _rows(session, Device, {d.id for d in devices})
    named = _alert_devices(session, {t.device_id for t in threats if t.device_id} - set(known_devices))
    known_threats = _rows(session, Threat, {t.id for t in threats})
    with session.no_autoflush:
        for report in devices:
            _apply_device(session, report, now, applied, known_devices)
    session.flush()
    opened: list[tuple[str, alerts.OpenedThreat, alerts.AlertDevice]] = []
    new: dict[str, dict[str, Any]] = {}
    by_id: dict[str, alerts.AlertDevice] = {**named, **known_devices}
    with session.no_autoflush:
        for threat_report in threats:
            _apply_threat(session, threat_report, now, applied, opened, by_id, known_threats, new)
    if new:
        session.execute(insert(Threat), list(new.values()))
    session.flush()  # the store's triggers bring each device's open classifications up to date
    _record_flips(session, before, _compliance(session, touched, hot), now, applied)
    applied.alerts = alerts.enqueue_threats(session, opened, now, policy or AlertPolicy())
    if drift.note(session, [(t.classification, t.risk) for t in threats], now):
        drift.check(session, now)  # Lookout's console policy changed, or a classification is new
    if cursor is not None:
        session.merge(SourceCursor(name=cursor.name, value=cursor.value, updated_at=now))
    return applied


def _apply_device(
    session: Session, report: DeviceReport, now: datetime, applied: Applied, known: dict[str, Device]
) -> None:
    changes = {
        name: value
        for name in _DEVICE_FIELDS
        if (value := getattr(report, name)) is not None and name != "id"
    }
    if "owner_email" in changes:
        changes["owner_email"] = changes["owner_email"].strip().lower()
    device = known.get(report.id)
    if device is None:
        missing = [n for n in ("owner_email", "platform", "activation_status") if n not in changes]
        if missing:
            applied.skipped.append(f"device {report.id}: new, but the report lacks {', '.join(missing)}")
            return
        changes.setdefault("protection_status", ProtectionStatus.PROTECTED)
        changes.setdefault("security_status", SecurityStatus.SECURE)
        changes.setdefault("enrolled_at", now)
        known[report.id] = Device(id=report.id, **changes)
        session.add(known[report.id])
        applied.devices_added += 1
        return
    checkin = changes.pop("checkin_time", None)
    changed = False
    for name, value in changes.items():
        if getattr(device, name) != value:
            setattr(device, name, value)
            changed = True
    if checkin is not None and (device.checkin_time is None or checkin > device.checkin_time):
        enrollment.check_in(device, checkin)  # a disconnected device that checks in is protected again
        changed = True
    if changed:
        session.add(device)
        applied.devices_changed += 1


_DEVICE_FIELDS = tuple(f.name for f in fields(DeviceReport))


def _apply_threat(
    session: Session,
    report: ThreatReport,
    now: datetime,
    applied: Applied,
    opened: list[tuple[str, alerts.OpenedThreat, alerts.AlertDevice]],
    devices: dict[str, alerts.AlertDevice],
    threats: dict[str, Threat],
    new: dict[str, dict[str, Any]],
) -> None:
    """`threats`: the stored rows; `new`: rows to insert (a threat first seen in this batch)."""
    device = devices.get(report.device_id) if report.device_id else None
    if device is None:
        unknown = (
            f"device {report.device_id} is unknown" if report.device_id else "no device is named or known"
        )
        applied.skipped.append(f"threat {report.id}: {unknown}")
        return
    stored, row = threats.get(report.id), new.get(report.id)
    if stored is not None:
        if stored.status == report.status and stored.risk == report.risk:
            return
        was_open, known = stored.status == ThreatStatus.OPEN, True
        stored.status, stored.risk, stored.resolved_at = report.status, report.risk, report.resolved_at
        session.add(stored)
    elif row is not None:  # first seen earlier in this batch
        if row["status"] == report.status and row["risk"] == report.risk:
            return
        was_open, known = row["status"] == ThreatStatus.OPEN, True
        row.update(status=report.status, risk=report.risk, resolved_at=report.resolved_at)
    else:
        new[report.id] = {name: getattr(report, name) for name in _THREAT_FIELDS}
        was_open, known = False, False
    if report.status == ThreatStatus.OPEN and not was_open:
        # the opening is the event: a threat that was closed and opens again is alerted again
        since = now if known else report.detected_at
        opened.append((f"{report.id}@{since:%Y%m%dT%H%M%S}", stored or report, device))
        applied.threats_opened.append(report.id)
    elif was_open and report.status != ThreatStatus.OPEN:
        applied.threats_closed += 1


_THREAT_FIELDS = tuple(f.name for f in fields(ThreatReport))


def _with_devices(session: Session, threats: list[ThreatReport]) -> list[ThreatReport]:
    """Reports that name no device, completed with the device of the threat already stored."""
    unnamed = [t.id for t in threats if not t.device_id]
    if not unnamed:
        return threats
    known = dict(session.exec(select(Threat.id, Threat.device_id).where(col(Threat.id).in_(unnamed))).all())
    return [t if t.device_id else replace(t, device_id=known.get(t.id, "")) for t in threats]


_Row = TypeVar("_Row", Device, Threat)


def _rows(session: Session, table: type[_Row], ids: set[str]) -> dict[str, _Row]:
    """The rows with these ids, by id (a few `IN` queries instead of one `get` each)."""
    found: dict[str, _Row] = {}
    ordered = sorted(i for i in ids if i)
    for start in range(0, len(ordered), _CHUNK):
        query = select(table).where(col(table.id).in_(ordered[start : start + _CHUNK]))
        found.update((row.id, row) for row in session.exec(query).all())
    return found


def _alert_devices(session: Session, ids: set[str]) -> dict[str, alerts.AlertDevice]:
    found: dict[str, alerts.AlertDevice] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        query = sa_select(
            col(Device.id), col(Device.name), col(Device.owner_email), col(Device.platform)
        ).where(col(Device.id).in_(ordered[start : start + _CHUNK]))
        found.update((row.id, row) for row in session.execute(query).all())
    return found


def _compliance(session: Session, ids: set[str], hot: int) -> dict[str, tuple[Compliance, str]]:
    """Each device's compliance and owner, read from the store (columns, not cached objects)."""
    found: dict[str, tuple[Compliance, str]] = {}
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        query = sa_select(
            col(Device.id),
            col(Device.owner_email),
            col(Device.activation_status),
            col(Device.protection_status),
            col(Device.open_classifications),
        ).where(col(Device.id).in_(ordered[start : start + _CHUNK]))
        for device_id, owner, activation, protection, open_bits in session.execute(query).all():
            found[device_id] = (compliance.of(activation, protection, open_bits, hot), owner)
    return found


_CHUNK = 5_000


def _record_flips(
    session: Session,
    before: dict[str, tuple[Compliance, str]],
    after: dict[str, tuple[Compliance, str]],
    now: datetime,
    applied: Applied,
) -> None:
    judged = (Compliance.COMPLIANT, Compliance.NONCOMPLIANT)
    flips = []
    for device_id, (became, owner) in after.items():
        was = before.get(device_id, (None, owner))[0]
        if was in judged and became in judged and was != became:
            flips.append({"at": now, "device_id": device_id, "owner_email": owner, "became": became.value})
    if flips:  # one multi-row INSERT: a threat storm flips thousands of devices at once
        session.execute(insert(ComplianceFlip), flips)
        applied.flips += len(flips)
