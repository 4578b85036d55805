"""What one `simulator.advance` call has simulated so far but the store does not show yet.

The simulator never writes the store (its caller applies the events afterwards), so each step reads
the store *through* this overlay: the check-ins, activations, opened and resolved threats of the
earlier steps of the same call. That is what makes one long advance equal to several short ones
applied in turn: every later step sees exactly what it would have read from the store.
"""

import heapq
import itertools
from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from integration.demo.schedule import next_check_in
from integration.sync import ThreatReport


@dataclass
class Overlay:
    seed: int
    last_seen: dict[str, datetime] = field(default_factory=dict)  # device → its latest check-in
    activated: set[str] = field(default_factory=set)  # pending devices activated
    opened: dict[str, ThreatReport] = field(default_factory=dict)  # opened and still open
    opened_ids: list[str] = field(default_factory=list)  # `opened`'s ids, sorted
    opened_on: dict[str, set[str]] = field(default_factory=dict)  # device → ids in `opened`
    resolved: set[str] = field(default_factory=set)  # threats of the store resolved
    # (when, device, the check-in it follows): next check-ins of devices seen here; None marks a
    # device of the store woken after a skipped gap (simulator.advance), valid until it is seen
    due: list[tuple[datetime, int, str, datetime | None]] = field(default_factory=list)
    _pushed: Iterator[int] = field(default_factory=itertools.count)  # keeps heap entries comparable

    def last_check_in(self, device_id: str, stored: datetime | None) -> datetime | None:
        return self.last_seen.get(device_id, stored)

    def check_in(self, device_id: str, at: datetime, stored: datetime | None) -> None:
        """The device reported at `at` (a later report keeps the later time, as the store does)."""
        last = self.last_check_in(device_id, stored)
        if last is not None and last >= at:
            return
        self.last_seen[device_id] = at
        upcoming = next_check_in(self.seed, device_id, at)
        if upcoming is not None:
            heapq.heappush(self.due, (upcoming.at, next(self._pushed), device_id, at))

    def wake(self, device_id: str, at: datetime) -> None:
        heapq.heappush(self.due, (at, next(self._pushed), device_id, None))

    def due_before(self, end: datetime) -> Iterator[tuple[datetime, str]]:
        """Check-ins scheduled here before `end` that are still current (the device has not reported
        since they were planned)."""
        while self.due and self.due[0][0] < end:
            at, _, device_id, after = heapq.heappop(self.due)
            if self.last_seen.get(device_id) == after:
                yield at, device_id

    def open(self, report: ThreatReport) -> None:
        self.opened[report.id] = report
        insort(self.opened_ids, report.id)
        self.opened_on.setdefault(report.device_id, set()).add(report.id)

    def resolve(self, report: ThreatReport) -> None:
        if self.opened.pop(report.id, None) is None:
            self.resolved.add(report.id)
            return
        del self.opened_ids[bisect_left(self.opened_ids, report.id)]
        self.opened_on[report.device_id].discard(report.id)

    def opened_between(self, low: str | None, high: str | None) -> list[ThreatReport]:
        """Threats opened here with ids in [low, high), in id order."""
        start = 0 if low is None else bisect_left(self.opened_ids, low)
        end = len(self.opened_ids) if high is None else bisect_left(self.opened_ids, high)
        return [self.opened[i] for i in self.opened_ids[start:end]]
