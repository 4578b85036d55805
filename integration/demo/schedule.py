"""When a demo device checks in next: a pure function of the seed, the device and its last check-in.

The store already holds each device's last check-in, so the schedule needs no state of its own: a
step asks which devices' next check-in falls inside it. The seed leaves protected devices 0–2.5 days
since their last check-in (fleet.py), which is what a fleet checking in every 2.5 days looks like at a
random moment; so devices check in every 59–61 hours ("at least every 3 days", DOMAIN.md). A few
check-ins are a device's last: it goes silent, and the sweep marks it disconnected later.
"""

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

EVERY = (timedelta(hours=59), timedelta(hours=61))  # from one check-in to the next
SILENT_CHANCE = 1 / 500  # a check-in is the device's last (≈ one device a day at 1,500 devices)
_SCALE = float(1 << 64)


@dataclass(frozen=True)
class NextCheckIn:
    at: datetime
    phase: float  # in [0, 1): where a check-in that is overdue lands within the step that catches it


def next_check_in(seed: int, device_id: str, last: datetime) -> NextCheckIn | None:
    """The device's next check-in after `last`; None when `last` was its last (it went silent)."""
    key = f"{seed}:{device_id}:{int(last.timestamp())}".encode()
    digest = hashlib.blake2b(key, digest_size=16).digest()
    if int.from_bytes(digest[:8]) / _SCALE < SILENT_CHANCE:
        return None
    phase = int.from_bytes(digest[8:]) / _SCALE
    low, high = EVERY
    at = last + low + timedelta(seconds=int(phase * (high - low).total_seconds()))
    return NextCheckIn(at=at, phase=phase)


def live_since(step_start: datetime) -> datetime:
    """A device whose last check-in is older than this at a step's start has gone silent."""
    return step_start - EVERY[1]
