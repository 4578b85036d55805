"""Source events and the one function that applies a batch of them to the store.

Every source (the demo simulator, `mesbot demo threat`, and the real Lookout and Graph clients of
issue 9) reports what it saw as `DeviceReport`s and `ThreatReport`s; `apply` writes them in the
caller's transaction together with what they cause — outbox rows for threats that became OPEN,
compliance flips for the digest, and the source's cursor — so a crash keeps all of it or none.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, insert
from sqlalchemy import select as sa_select  # sqlmodel's select types at most four columns
from sqlmodel import Session, col, select

from integration import alerts, compliance, drift, enrollment, tenant
from integration.alerts import AlertPolicy
from integration.compliance import Compliance
from storage import bulk
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
    became OPEN, the compliance flips they caused and the source's cursor.

    Rows are read and written as columns, not ORM objects: a `Device` or `Threat` object the caller
    holds in this session is stale afterwards (expired at commit, as always)."""
    applied = Applied()
    devices = [e for e in events if isinstance(e, DeviceReport)]
    threats = _with_devices(session, [e for e in events if isinstance(e, ThreatReport)])
    touched = {d.id for d in devices} | {t.device_id for t in threats if t.device_id}
    hot = compliance.hot_bits(
        tenant.classification_bits(session), tenant.risk_levels(session), tenant.policy_level(session)
    )
    # Every row the batch touches is read in a few `IN` queries and written together: new rows in one
    # multi-row INSERT, changed ones in one UPDATE per set of changed columns (storage.bulk.update_rows).
    # A `session.get` and a flush per event made a stream of threats ~5× slower, row objects cost more
    # than the INSERT itself, and on PostgreSQL an UPDATE per device ran the tally triggers per device.
    reported = {d.id for d in devices}  # compared column by column; a threat's device needs fewer
    rows = _rows(session, list(_DEVICE.columns), reported) + _rows(session, _JUDGED, touched - reported)
    seen = {row["id"]: _Seen(row) for row in rows}
    before = {device_id: _judged(device.row, hot) for device_id, device in seen.items()}
    for report in devices:
        _apply_device(report, now, applied, seen)
    _write(session, _DEVICE, seen.values())
    by_id: dict[str, alerts.AlertDevice] = dict(seen)
    stored = {row["id"]: _Seen(row) for row in _rows(session, list(_THREAT.columns), {t.id for t in threats})}
    opened: list[tuple[str, alerts.OpenedThreat, alerts.AlertDevice]] = []
    for threat_report in threats:
        _apply_threat(threat_report, now, applied, opened, by_id, stored)
    _write(session, _THREAT, stored.values())  # the store's triggers bring each device's open bits up to date
    _record_flips(session, before, _compliance(session, set(seen), hot), now, applied)
    applied.alerts = alerts.enqueue_threats(session, opened, now, policy or AlertPolicy())
    if drift.note(session, [(t.classification, t.risk) for t in threats], now):
        drift.check(session, now)  # Lookout's console policy changed, or a classification is new
    if cursor is not None:
        session.merge(SourceCursor(name=cursor.name, value=cursor.value, updated_at=now))
    return applied


_DEVICE, _THREAT = bulk.table_of(Device), bulk.table_of(Threat)
_JUDGED: list[ColumnElement[Any]] = [  # what a device's compliance and its alerts need
    _DEVICE.c[name]
    for name in (
        *("id", "owner_email", "name", "platform"),
        *("activation_status", "protection_status", "open_classifications"),
    )
]
_DEVICE_FIELDS = tuple(f.name for f in fields(DeviceReport))  # the columns a report can set
_THREAT_FIELDS = tuple(f.name for f in fields(ThreatReport))


class _Seen:
    """A row the batch touches: its columns as stored (or as first reported, when `new`), then as the
    batch changes them. A device also serves as its alerts' `AlertDevice`."""

    def __init__(self, row: dict[str, Any], *, new: bool = False) -> None:
        self.row = row
        self.new = new
        self.changed: set[str] = set()

    def update(self, changes: dict[str, Any]) -> bool:
        """Take the values that differ; whether any did."""
        differ = {name: value for name, value in changes.items() if self.row.get(name) != value}
        self.row.update(differ)
        self.changed.update(differ)
        return bool(differ)

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def name(self) -> str | None:
        return self.row.get("name")

    @property
    def owner_email(self) -> str:
        return str(self.row["owner_email"])

    @property
    def platform(self) -> Platform:
        return Platform(self.row["platform"])


def _apply_device(report: DeviceReport, now: datetime, applied: Applied, seen: dict[str, _Seen]) -> None:
    changes = {
        name: value
        for name in _DEVICE_FIELDS
        if (value := getattr(report, name)) is not None and name != "id"
    }
    if "owner_email" in changes:
        changes["owner_email"] = changes["owner_email"].strip().lower()
    device = seen.get(report.id)
    if device is None:
        missing = [n for n in ("owner_email", "platform", "activation_status") if n not in changes]
        if missing:
            applied.skipped.append(f"device {report.id}: new, but the report lacks {', '.join(missing)}")
            return
        changes.setdefault("protection_status", ProtectionStatus.PROTECTED)
        changes.setdefault("security_status", SecurityStatus.SECURE)
        changes.setdefault("enrolled_at", now)
        seen[report.id] = _Seen(
            {name: changes.get(name) for name in _DEVICE_FIELDS} | {"id": report.id}, new=True
        )
        applied.devices_added += 1
        return
    checkin = changes.pop("checkin_time", None)
    changed = device.update(changes)
    stored_checkin = device.row["checkin_time"]
    if checkin is not None and (stored_checkin is None or checkin > stored_checkin):
        # a disconnected device that checks in is protected again
        protection = enrollment.protection_on_checkin(
            device.row["activation_status"], device.row["protection_status"]
        )
        device.update({"checkin_time": checkin, "protection_status": protection})
        changed = True
    if changed:
        applied.devices_changed += 1


def _apply_threat(
    report: ThreatReport,
    now: datetime,
    applied: Applied,
    opened: list[tuple[str, alerts.OpenedThreat, alerts.AlertDevice]],
    devices: dict[str, alerts.AlertDevice],
    threats: dict[str, _Seen],
) -> None:
    """`threats`: the stored rows the batch names, and those it adds (`new`)."""
    device = devices.get(report.device_id) if report.device_id else None
    if device is None:
        unknown = (
            f"device {report.device_id} is unknown" if report.device_id else "no device is named or known"
        )
        applied.skipped.append(f"threat {report.id}: {unknown}")
        return
    threat = threats.get(report.id)
    if threat is None:
        threats[report.id] = threat = _Seen(
            {name: getattr(report, name) for name in _THREAT_FIELDS}, new=True
        )
        was_open, known = False, False
    else:
        was_open, known = threat.row["status"] == ThreatStatus.OPEN, True
        if not threat.update({"status": report.status, "risk": report.risk}):
            return
        threat.update({"resolved_at": report.resolved_at})
    if report.status == ThreatStatus.OPEN and not was_open:
        # the opening is the event: a threat that was closed and opens again is alerted again
        since = now if known else report.detected_at
        shown = ThreatReport(**{name: threat.row[name] for name in _THREAT_FIELDS}) if known else report
        opened.append((f"{report.id}@{since:%Y%m%dT%H%M%S}", shown, device))
        applied.threats_opened.append(report.id)
    elif was_open and report.status != ThreatStatus.OPEN:
        applied.threats_closed += 1


def _write(session: Session, table: Table, rows: Iterable[_Seen]) -> None:
    """Insert the new rows (one multi-row INSERT), update the changed ones (one UPDATE per set of
    changed columns)."""
    new: list[dict[str, Any]] = []
    changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for seen in rows:
        if seen.new:
            new.append(seen.row)
        elif seen.changed:
            changed.setdefault(tuple(sorted(seen.changed)), []).append(seen.row)
    bulk.insert_rows(session, table, new)
    for columns, group in changed.items():
        bulk.update_rows(session, table, columns, group)


def _with_devices(session: Session, threats: list[ThreatReport]) -> list[ThreatReport]:
    """Reports that name no device, completed with the device of the threat already stored."""
    unnamed = [t.id for t in threats if not t.device_id]
    if not unnamed:
        return threats
    known = dict(session.exec(select(Threat.id, Threat.device_id).where(col(Threat.id).in_(unnamed))).all())
    return [t if t.device_id else replace(t, device_id=known.get(t.id, "")) for t in threats]


def _rows(session: Session, columns: Sequence[ColumnElement[Any]], ids: set[str]) -> list[dict[str, Any]]:
    """These columns of the rows with these ids, as dicts (one query instead of one `get` each)."""
    if not ids:
        return []
    key = next(c for c in columns if c.key == "id")
    result = session.execute(sa_select(*columns).where(bulk.among(session, key, ids)))
    names = tuple(result.keys())  # once: `dict(row)` of each mapping built its own key view
    return [dict(zip(names, row, strict=True)) for row in result.all()]


def _judged(row: Mapping[Any, Any], hot: int) -> tuple[Compliance, str]:
    """A device's compliance, and its owner."""
    bits = row["open_classifications"]
    return compliance.of(row["activation_status"], row["protection_status"], bits, hot), row["owner_email"]


def _compliance(session: Session, ids: set[str], hot: int) -> dict[str, tuple[Compliance, str]]:
    """Each device's compliance and owner, read again after the triggers have run."""
    return {row["id"]: _judged(row, hot) for row in _rows(session, _JUDGED, ids)}


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
