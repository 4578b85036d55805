"""Hand-built tenants for rule tests: a few devices and threats whose answers are known exactly."""

import itertools
from datetime import datetime, timedelta

from sqlmodel import Session

from storage.models import Device, Threat
from tests.conftest import NOW

_ids = itertools.count(1)


def device(
    session: Session,
    *,
    activation: str = "ACTIVATED",
    protection: str = "PROTECTED",
    checkin: datetime | None = NOW - timedelta(hours=3),
    owner: str = "owner@contoso.example",
) -> Device:
    row = Device(
        id=f"dev-{next(_ids)}",
        owner_email=owner,
        platform="ANDROID",
        activation_status=activation,
        protection_status=protection,
        security_status="SECURE",
        checkin_time=checkin,
        enrolled_at=NOW - timedelta(days=100),
    )
    session.add(row)
    return row


def threat(session: Session, on: Device, classification: str, *, status: str = "OPEN") -> Threat:
    row = Threat(
        id=f"thr-{next(_ids)}",
        device_id=on.id,
        status=status,
        classification=classification,
        risk="high",
        type="APPLICATION",
        detected_at=NOW - timedelta(hours=1),
    )
    session.add(row)
    return row
