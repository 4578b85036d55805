"""The living demo tenant (DESIGN.md §7): what the demo fleet reports as simulated time passes.

`advance` returns the source events of every whole 15-minute step from the simulator's cursor up to
`until`, and the cursor to store with them; the caller applies both in one transaction
(`integration.sync.apply`), as it would a real source's. It never writes the store itself.

Deterministic for the seed and the clock: a step draws from `Random(f"{seed}:{step start}")`, a
device's next check-in is a hash of (seed, device, last check-in) (schedule.py), and each step reads
the store through what the earlier steps of the same call did (overlay.py). So advancing 0→24 h at
once gives exactly the events of 0→10 h and then 10→24 h, applied in between.

Steps are 15 minutes, not an hour, so a live `serve` shows new events every quarter of an hour; the
cost of a step is a few indexed queries, whatever the fleet's size.
"""

import logging
import math
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from integration.actions import Action
from integration.catalogue import CATALOGUE
from integration.demo import mix, schedule
from integration.demo.draws import guid
from integration.demo.overlay import Overlay
from integration.demo.sample import Candidate, Sampler
from integration.demo.seed import SEED_VALUE, SEEDED_AT_VALUE
from integration.errors import SourceError
from integration.levels import RiskLevel, security_status
from integration.sync import Cursor, DeviceReport, SourceEvent, ThreatReport
from storage.models import AuditEntry, Device, SourceCursor, StoredValue, Threat
from storage.states import ActivationStatus, ProtectionStatus, SecurityStatus, ThreatStatus

log = logging.getLogger(__name__)

CURSOR = "demo"  # the simulator's `SourceCursor`: the end of the last simulated step
STEP = timedelta(minutes=15)
MAX_STEPS = 7 * 24 * 4  # one call simulates at most 7 days: a longer gap is skipped, not replayed
HOUR = timedelta(hours=1)
# Rates per hour. A 1,500-device tenant sees ≈4 new threats, ≈1 activation, ≈20 check-ins, about one
# device a day going silent (schedule.SILENT_CHANCE) and one coming back.
NEW_THREATS_PER_DEVICE = 4 / 1_500  # of the whole fleet
COMEBACKS_PER_DEVICE = 1 / (24 * 1_500)
ACTIVATIONS_PER_PENDING = 1 / 120  # a pending device is activated within ~5 days
RESOLUTIONS_PER_OPEN = 1 / 72  # an open threat lasts ~3 days: about the seed's ~300 open at 1,500
ACTIVATED, PENDING = ActivationStatus.ACTIVATED, ActivationStatus.PENDING
REPORTING = (ProtectionStatus.PROTECTED, ProtectionStatus.DISCONNECTED)  # not uninstalled


def advance(session: Session, *, until: datetime) -> tuple[list[SourceEvent], Cursor]:
    """The demo tenant's events from its cursor (else from when it was seeded) up to `until`, and the
    new cursor. A clock that went back yields nothing and keeps the cursor. A gap of over 7 days (a
    demo left off for months) is skipped up to the last 7 days: the devices that were reporting then
    resume checking in over the first 2.5 days (logged as a warning)."""
    if until.tzinfo is None:
        raise ValueError("naive datetime given as `until`")
    seed, seeded_at = _seeded(session)
    stored = session.get(SourceCursor, CURSOR)
    at = _parse(stored.value) if stored is not None else _step_ceil(seeded_at)
    steps = (until - at) // STEP if until > at else 0
    simulation = _Simulation(session, seed)
    first = at
    if steps > MAX_STEPS:
        first = at + (steps - MAX_STEPS) * STEP
        log.warning("demo simulator: skipped %s of simulated time (%s to %s)", first - at, at, first)
        simulation.wake_after_gap(at, first)
        steps = MAX_STEPS
    events: list[SourceEvent] = []
    for n in range(steps):
        events.extend(simulation.step(first + n * STEP))
    return events, Cursor(CURSOR, (first + steps * STEP).isoformat())


@dataclass
class _Step:
    start: datetime
    rng: random.Random
    busy: set[str] = field(default_factory=set)  # devices with an event in this step already: one each
    events: list[tuple[tuple[datetime, str, int], SourceEvent]] = field(default_factory=list)

    @property
    def end(self) -> datetime:
        return self.start + STEP

    def moment(self) -> datetime:
        return self.start + timedelta(seconds=int(self.rng.random() * STEP.total_seconds()))

    def add(self, at: datetime, event: SourceEvent) -> None:
        device_id = event.device_id if isinstance(event, ThreatReport) else event.id
        self.busy.add(device_id)
        self.events.append(((at, device_id, isinstance(event, DeviceReport)), event))

    def sorted(self) -> list[SourceEvent]:
        return [event for _, event in sorted(self.events, key=lambda keyed: keyed[0])]


class _Simulation:
    """One `advance` call: the store as read at its start, plus what its steps did (the overlay)."""

    def __init__(self, session: Session, seed: int) -> None:
        self.session, self.seed = session, seed
        self.overlay = Overlay(seed)
        self.sample = Sampler(session, self.overlay)
        count = select(func.count())
        self.devices = _count(session, count.select_from(Device))
        self.pending = _count(session, count.where(col(Device.activation_status) == PENDING))
        self.open = _count(session, count.where(col(Threat.status) == ThreatStatus.OPEN))

    def step(self, start: datetime) -> list[SourceEvent]:
        step = _Step(start, random.Random(f"{self.seed}:{start.isoformat()}"))
        self._activations(step)
        self._comebacks(step)
        self._check_ins(step)
        self._new_threats(step)
        self._resolutions(step)
        return step.sorted()

    def wake_after_gap(self, last: datetime, resume: datetime) -> None:
        """Devices that were reporting at `last` resume at `resume`, spread over one check-in period."""
        period = schedule.EVERY[1].total_seconds()
        query = select(Device.id, Device.checkin_time).where(
            col(Device.activation_status) == ACTIVATED,
            col(Device.protection_status).in_(REPORTING),
            col(Device.checkin_time) >= schedule.live_since(last),
        )
        for device_id, checked_in in self.session.exec(query).all():
            upcoming = checked_in and schedule.next_check_in(self.seed, device_id, checked_in)
            if upcoming:
                self.overlay.wake(device_id, resume + timedelta(seconds=int(upcoming.phase * period)))

    def _activations(self, step: _Step) -> None:
        pending = self.pending - len(self.overlay.activated)
        for _ in range(_poisson(step.rng, pending * ACTIVATIONS_PER_PENDING * (STEP / HOUR))):
            at, found = step.moment(), self.sample.pending_device(guid(step.rng), step.busy)
            if found is None:
                continue
            self.overlay.activated.add(found.id)
            self.overlay.check_in(found.id, at, found.checked_in)
            step.add(
                at,
                DeviceReport(
                    id=found.id,
                    activation_status=ACTIVATED,
                    protection_status=ProtectionStatus.PROTECTED,
                    security_status=SecurityStatus.SECURE,
                    activated_at=at,
                    checkin_time=at,
                ),
            )

    def _comebacks(self, step: _Step) -> None:
        for _ in range(_poisson(step.rng, self.devices * COMEBACKS_PER_DEVICE * (STEP / HOUR))):
            at = step.moment()
            found = self.sample.silent_device(guid(step.rng), schedule.live_since(step.start), step.busy)
            if found is not None:
                self.overlay.check_in(found.id, at, found.checked_in)
                step.add(at, DeviceReport(id=found.id, checkin_time=at))

    def _check_ins(self, step: _Step) -> None:
        """Devices whose next check-in falls in this step; one overdue (the seed left it so, or a gap
        was skipped) checks in within the first step that finds it."""
        due: list[tuple[datetime, str, datetime | None]] = [
            (at, device_id, None) for at, device_id in self.overlay.due_before(step.end)
        ]
        low, high = schedule.EVERY
        query = select(Device.id, Device.checkin_time).where(
            col(Device.activation_status) == ACTIVATED,
            col(Device.protection_status).in_(REPORTING),
            col(Device.checkin_time) >= step.start - high,
            col(Device.checkin_time) < step.end - low,
        )
        for device_id, checked_in in self.session.exec(query).all():
            if device_id in self.overlay.last_seen or checked_in is None:
                continue  # it reported in an earlier step of this call: `overlay.due` has it
            upcoming = schedule.next_check_in(self.seed, device_id, checked_in)
            if upcoming is None or upcoming.at >= step.end:
                continue
            at = upcoming.at
            if at < step.start:
                at = step.start + timedelta(seconds=int(upcoming.phase * STEP.total_seconds()))
            due.append((at, device_id, checked_in))
        for at, device_id, checked_in in due:
            self.overlay.check_in(device_id, at, checked_in)
            step.add(at, DeviceReport(id=device_id, checkin_time=at))

    def _new_threats(self, step: _Step) -> None:
        live_since = schedule.live_since(step.start)
        for _ in range(_poisson(step.rng, self.devices * NEW_THREATS_PER_DEVICE * (STEP / HOUR))):
            at, start_id, name = step.moment(), guid(step.rng), mix.classification(step.rng)
            entry = CATALOGUE[name]
            app, package, path, ssid, url = mix.details(step.rng, entry.category)
            threat_id = guid(step.rng)
            found = self.sample.live_device(start_id, live_since, step.busy)
            if found is None:
                continue
            risks = self.sample.open_on(found.id)
            if entry.category != "app" and any(open_name == name for open_name, _ in risks):
                continue  # a device reports one open threat per setting, network or site problem
            report = ThreatReport(
                id=threat_id,
                device_id=found.id,
                status=ThreatStatus.OPEN,
                classification=name,
                risk=entry.default_risk,  # what Lookout's console (at its defaults) reports
                type=mix.threat_type(name),
                detected_at=at,
                app_name=app,
                package_name=package,
                path=path,
                network_ssid=ssid,
                url=url,
            )
            self.overlay.open(report)
            self.open += 1
            self._reported(step, at, found, report, [*(risk for _, risk in risks), entry.default_risk])

    def _resolutions(self, step: _Step) -> None:
        live_since = schedule.live_since(step.start)
        for _ in range(_poisson(step.rng, self.open * RESOLUTIONS_PER_OPEN * (STEP / HOUR))):
            at = step.moment()
            found = self.sample.open_threat(guid(step.rng), step.start, live_since, step.busy)
            if found is None:
                continue
            candidate, threat = found
            report = replace(threat, status=ThreatStatus.RESOLVED, resolved_at=at)
            self.overlay.resolve(report)
            self.open -= 1
            self._reported(
                step, at, candidate, report, [risk for _, risk in self.sample.open_on(candidate.id)]
            )

    def _reported(
        self, step: _Step, at: datetime, device: Candidate, report: ThreatReport, open_risks: list[RiskLevel]
    ) -> None:
        """A threat report, and the device's own with its check-in and the security status its open
        threats now give it (Lookout's device risk: the highest open threat's)."""
        top = max(open_risks, key=lambda risk: risk.rank, default=RiskLevel.NONE)
        self.overlay.check_in(device.id, at, device.checked_in)
        step.add(at, report)
        step.add(at, DeviceReport(id=device.id, checkin_time=at, security_status=security_status(top)))


def _poisson(rng: random.Random, mean: float) -> int:
    """How many of a thing that happens `mean` times in a step on average happen in this one."""
    if mean <= 0:
        return 0
    if mean > 30:  # normal approximation: exp(-mean) underflows for large fleets' means
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _count(session: Session, query: SelectOfScalar[int]) -> int:
    return int(session.exec(query).one())


def _seeded(session: Session) -> tuple[int, datetime]:
    """The demo's seed and when the seeded tenant stands (for tenants seeded before those were
    recorded, from the seed's audit entry)."""
    names = (SEED_VALUE, SEEDED_AT_VALUE)
    values = dict(
        session.exec(
            select(StoredValue.name, StoredValue.value).where(col(StoredValue.name).in_(names))
        ).all()
    )
    if len(values) == len(names):
        return int(values[SEED_VALUE]), _parse(values[SEEDED_AT_VALUE])
    entry = session.exec(
        select(AuditEntry).where(AuditEntry.action == Action.DEMO_SEED).order_by(col(AuditEntry.at).desc())
    ).first()
    if entry is not None and entry.after is not None and "seed" in entry.after:
        return int(entry.after["seed"]), entry.at
    raise SourceError("The demo tenant has not been seeded: run `mesbot demo seed`.")


def _parse(value: str) -> datetime:
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise SourceError(f"The demo simulator's cursor is not a time: {value[:40]!r}.") from None
    return _step_ceil(at if at.tzinfo is not None else at.replace(tzinfo=UTC))


def _step_ceil(at: datetime) -> datetime:
    """`at`, or the next step boundary after it (steps are aligned on the quarter hour, UTC)."""
    seconds, step = math.ceil(at.timestamp()), int(STEP.total_seconds())
    return datetime.fromtimestamp(-(-seconds // step) * step, UTC)


def position(session: Session) -> datetime:
    """Where the simulated tenant stands: its cursor, else the step after it was seeded."""
    stored = session.get(SourceCursor, CURSOR)
    return _parse(stored.value) if stored is not None else _step_ceil(_seeded(session)[1])
