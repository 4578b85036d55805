"""`mesbot demo threat`: a device of the demo tenant reports new OPEN threats.

The threats are returned as source events, not written: the caller applies them the way every
source's events are applied (`integration.sync.apply`), so injected threats are alerted like any other.
"""

import uuid
from datetime import datetime

from sqlmodel import Session

from integration import audit
from integration.actions import Action
from integration.catalogue import CATALOGUE, classification_name
from integration.demo import mix
from integration.errors import InvalidInput, NotFound
from integration.levels import RiskLevel, security_status
from integration.sync import DeviceReport, SourceEvent, ThreatReport
from integration.validation import show
from storage.models import Device
from storage.states import ActivationStatus, SecurityStatus, ThreatStatus

MAX_COUNT = 10_000


def inject(
    session: Session,
    *,
    device_id: str,
    classification: str,
    app: str | None,
    count: int,
    numbered: bool,
    now: datetime,
) -> list[SourceEvent]:
    """`count` OPEN threats the device reports (`numbered` ends their app names in ` #1` … ` #N`), and
    the device's report of the security status they give it; audited, but not applied."""
    name = classification_name(classification)
    if not 1 <= count <= MAX_COUNT:
        raise InvalidInput(f"--count must be from 1 to {MAX_COUNT:,}; got {count}.")
    device = session.get(Device, device_id.strip().lower())
    if device is None:
        raise NotFound(f"No device has the ID `{show(device_id)}` (`mesbot ask … status EMAIL` lists IDs).")
    if device.activation_status != ActivationStatus.ACTIVATED:
        raise InvalidInput(
            f"Device {device.id} is {device.activation_status.lower()}: "
            "only activated devices report threats."
        )
    entry = CATALOGUE[name]
    # The severity Lookout's console (at its defaults) reports, as the simulator's threats carry: an
    # admin's `risk set` is mesbot's policy, applied at query time, and shows as policy drift.
    risk = entry.default_risk
    base = app or ("Demo Threat App" if entry.category == "app" else None)
    events: list[SourceEvent] = [
        ThreatReport(
            id=str(uuid.uuid4()),
            device_id=device.id,
            status=ThreatStatus.OPEN,
            classification=name,
            risk=risk,
            type=mix.threat_type(name),
            detected_at=now,
            app_name=f"{base} #{n}" if base and numbered else base,
        )
        for n in range(1, count + 1)
    ]
    level = max(risk, _reported_level(device), key=lambda level: level.rank)
    events.append(DeviceReport(id=device.id, security_status=security_status(level)))
    audit.record(
        session,
        at=now,
        actor="demo",
        change=audit.Change(
            Action.DEMO_THREAT, None, {"device": device.id, "classification": name, "count": count}
        ),
    )
    return events


def _reported_level(device: Device) -> RiskLevel:
    return _REPORTED[device.security_status]


_REPORTED = {
    SecurityStatus.SECURE: RiskLevel.NONE,
    SecurityStatus.THREATS_LOW: RiskLevel.LOW,
    SecurityStatus.THREATS_MEDIUM: RiskLevel.MEDIUM,
    SecurityStatus.THREATS_HIGH: RiskLevel.HIGH,
}
