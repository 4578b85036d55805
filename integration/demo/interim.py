"""TEMPORARY — delete when `integration.sync.apply` lands, and call that instead.

Writes source events to the store the plainest way, so `mesbot demo threat` and the simulator's tests
work before the real `apply` exists. It mirrors `apply`'s rules for what a report changes (a `None`
field is left as it is; a check-in only moves forward, and reconnects a disconnected device; a threat
is created, or its status changed) but enqueues no alerts and records no compliance flips.
"""

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime

from sqlmodel import Session

from integration import enrollment
from integration.sync import Cursor, DeviceReport, SourceEvent, ThreatReport
from storage.models import Device, SourceCursor, Threat

_DEVICE_FIELDS = tuple(f.name for f in fields(DeviceReport) if f.name not in ("id", "checkin_time"))
_THREAT_FIELDS = tuple(f.name for f in fields(ThreatReport))


def apply_events(
    session: Session, events: Sequence[SourceEvent], *, now: datetime, cursor: Cursor | None = None
) -> None:
    for report in events:
        if isinstance(report, DeviceReport):
            _device(session, report)
    session.flush()
    for report in events:
        if isinstance(report, ThreatReport):
            _threat(session, report)
    if cursor is not None:
        session.merge(SourceCursor(name=cursor.name, value=cursor.value, updated_at=now))
    session.flush()


def _device(session: Session, report: DeviceReport) -> None:
    device = session.get(Device, report.id)
    if device is None:
        raise LookupError(f"interim apply: unknown device {report.id}")
    for name in _DEVICE_FIELDS:
        if (value := getattr(report, name)) is not None:
            setattr(device, name, value)
    checkin = report.checkin_time
    if checkin is not None and (device.checkin_time is None or checkin > device.checkin_time):
        enrollment.check_in(device, checkin)
    session.add(device)


def _threat(session: Session, report: ThreatReport) -> None:
    threat = session.get(Threat, report.id)
    if threat is None:
        session.add(Threat(**{name: getattr(report, name) for name in _THREAT_FIELDS}))
        return
    threat.status, threat.risk, threat.resolved_at = report.status, report.risk, report.resolved_at
    session.add(threat)
