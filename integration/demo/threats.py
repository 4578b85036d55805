"""`mesbot demo threat`: a device of the demo tenant reports new OPEN threats."""

import uuid
from datetime import datetime

from sqlmodel import Session

from integration import audit, tenant
from integration.actions import Action
from integration.catalogue import CATALOGUE, classification_name
from integration.demo import data
from integration.errors import InvalidInput, NotFound
from integration.levels import RiskLevel, security_status
from integration.validation import show
from storage.models import Device, Threat
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
) -> list[Threat]:
    """Add `count` OPEN threats to the device as if it had reported them; `numbered` ends their app
    names in ` #1` … ` #N`."""
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
    risk = tenant.risk_levels(session)[name]
    base = app or ("Demo Threat App" if entry.category == "app" else None)
    threats = [
        Threat(
            id=str(uuid.uuid4()),
            device_id=device.id,
            status=ThreatStatus.OPEN,
            classification=name,
            risk=risk,
            type=data.THREAT_TYPES[entry.category],
            detected_at=now,
            app_name=f"{base} #{n}" if base and numbered else base,
        )
        for n in range(1, count + 1)
    ]
    session.add_all(threats)
    if risk.rank > _reported_level(device).rank:
        device.security_status = security_status(risk)
        session.add(device)
    audit.record(
        session,
        at=now,
        actor="demo",
        change=audit.Change(
            Action.DEMO_THREAT, None, {"device": device.id, "classification": name, "count": count}
        ),
    )
    return threats


def _reported_level(device: Device) -> RiskLevel:
    return _REPORTED[device.security_status]


_REPORTED = {
    SecurityStatus.SECURE: RiskLevel.NONE,
    SecurityStatus.THREATS_LOW: RiskLevel.LOW,
    SecurityStatus.THREATS_MEDIUM: RiskLevel.MEDIUM,
    SecurityStatus.THREATS_HIGH: RiskLevel.HIGH,
}
