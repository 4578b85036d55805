"""Picking a random device or open threat for the simulator without loading the fleet.

Device and threat ids are random UUIDs, so the first row at or after a random UUID (wrapping around at
the end) is a fair pick: an index seek and a few rows, whatever the fleet's size. Rows are judged
through the overlay (what the current `advance` call did already), not as the store shows them.
"""

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select as core_select
from sqlmodel import Session, col

from integration.demo.overlay import Overlay
from integration.sync import ThreatReport
from storage.models import Device, Threat
from storage.states import ActivationStatus, ProtectionStatus, RiskLevel, ThreatStatus

# Rows fetched at a time: few where most rows qualify (live devices, threats), many where few do
# (pending or silent devices: under a tenth of the fleet).
FEW, MANY = 8, 64
ACTIVATED, PENDING = ActivationStatus.ACTIVATED, ActivationStatus.PENDING
REPORTING = (ProtectionStatus.PROTECTED, ProtectionStatus.DISCONNECTED)  # not uninstalled
_DEVICE_COLUMNS = ("id", "activation_status", "protection_status", "checkin_time")
_THREAT_FIELDS = tuple(f.name for f in fields(ThreatReport))


@dataclass(frozen=True)
class Candidate:
    id: str
    checked_in: datetime | None  # as the store has it


class Sampler:
    def __init__(self, session: Session, overlay: Overlay) -> None:
        # Core queries on the session's connection: the ORM's per-query cost was most of a step's.
        self.connection, self.overlay = session.connection(), overlay

    def pending_device(self, start: str, busy: set[str]) -> Candidate | None:
        for device_id, activation, _, checked_in in self._devices(start, MANY):
            if activation == PENDING and device_id not in self.overlay.activated and device_id not in busy:
                return Candidate(device_id, checked_in)
        return None

    def silent_device(self, start: str, live_since: datetime, busy: set[str]) -> Candidate | None:
        """An activated device that stopped checking in (the seed's disconnected ones, too)."""
        for device_id, activation, protection, checked_in in self._devices(start, MANY):
            if activation != ACTIVATED or protection not in REPORTING or device_id in busy:
                continue
            last = self.overlay.last_check_in(device_id, checked_in)
            if last is None or last < live_since:
                return Candidate(device_id, checked_in)
        return None

    def live_device(self, start: str, live_since: datetime, busy: set[str]) -> Candidate | None:
        """An activated device that is still checking in: only those report threats."""
        for device_id, activation, protection, checked_in in self._devices(start, FEW):
            if protection in REPORTING and self._live(device_id, activation, checked_in, live_since, busy):
                return Candidate(device_id, checked_in)
        return None

    def open_threat(
        self, start: str, step_start: datetime, live_since: datetime, busy: set[str]
    ) -> tuple[Candidate, ThreatReport] | None:
        """An open threat, detected before this step, of a device that is still checking in."""
        device = ("activation_status", "protection_status", "checkin_time")
        columns: list[Any] = [
            *(getattr(Threat, name) for name in _THREAT_FIELDS),
            *(getattr(Device, name) for name in device),
        ]
        query = core_select(*columns).join(Device, col(Threat.device_id) == col(Device.id))
        for low, high in ((start, None), (None, start)):
            rows = self._between(query, col(Threat.id), low, high, FEW)
            stored = ((_report(row), *row[-3:]) for row in rows)
            here = ((r, ACTIVATED, REPORTING[0], None) for r in self.overlay.opened_between(low, high))
            for report, activation, protection, checked_in in heapq.merge(stored, here, key=_threat_id):
                if (
                    report.status == ThreatStatus.OPEN
                    and report.id not in self.overlay.resolved
                    and report.detected_at < step_start
                    and protection in REPORTING
                    and self._live(report.device_id, activation, checked_in, live_since, busy)
                ):
                    return Candidate(report.device_id, checked_in), report
        return None

    def open_on(self, device_id: str) -> list[tuple[str, RiskLevel]]:
        """The device's open threats: (classification, reported risk)."""
        query = core_select(col(Threat.id), col(Threat.classification), col(Threat.risk)).where(
            col(Threat.device_id) == device_id, col(Threat.status) == ThreatStatus.OPEN
        )
        found = [
            (name, RiskLevel(risk))
            for threat_id, name, risk in self.connection.execute(query).all()
            if threat_id not in self.overlay.resolved
        ]
        for threat_id in sorted(self.overlay.opened_on.get(device_id, ())):
            report = self.overlay.opened[threat_id]
            found.append((report.classification, report.risk))
        return found

    def _live(
        self,
        device_id: str,
        activation: str,
        checked_in: datetime | None,
        live_since: datetime,
        busy: set[str],
    ) -> bool:
        if device_id in busy:
            return False
        if activation != ACTIVATED and device_id not in self.overlay.activated:
            return False
        last = self.overlay.last_check_in(device_id, checked_in)
        return last is not None and last >= live_since

    def _devices(self, start: str, batch: int) -> Iterator[Any]:
        """(id, activation, protection, check-in) of every device in id order from `start` on, then
        from the first up to `start`. Only the primary key is sought: filters are left to the caller,
        as SQLite would otherwise prefer the state index and sort a whole state to find a few rows."""
        columns: list[Any] = [getattr(Device, name) for name in _DEVICE_COLUMNS]
        query = core_select(*columns)
        yield from self._between(query, col(Device.id), start, None, batch)
        yield from self._between(query, col(Device.id), None, start, batch)

    def _between(self, query: Any, key: Any, low: str | None, high: str | None, batch: int) -> Iterable[Any]:
        """Rows of `query` with `key` in [low, high), in `key` order, fetched a few at a time."""
        after, inclusive = low, True
        while True:
            page = query
            if after is not None:
                page = page.where(key >= after if inclusive else key > after)
            if high is not None:
                page = page.where(key < high)
            rows = self.connection.execute(page.order_by(key).limit(batch)).all()
            yield from rows
            if len(rows) < batch:
                return
            after, inclusive = rows[-1][0], False


def _threat_id(candidate: tuple[ThreatReport, Any, Any, Any]) -> str:
    return candidate[0].id


def _report(row: Any) -> ThreatReport:
    return ThreatReport(**dict(zip(_THREAT_FIELDS, row, strict=False)))
