"""The living demo tenant (DESIGN.md §7): the simulator's events are deterministic for the seed and the
clock, realistic (DOMAIN.md), at the rates a 1,500-device demo should show, and never written by it."""

import math
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, col, func, select

from integration import sync
from integration.catalogue import CATALOGUE
from integration.demo import data, schedule, simulator, threats
from integration.demo.seed import SEED_VALUE, SEEDED_AT_VALUE
from integration.errors import SourceError
from integration.levels import RiskLevel, security_status
from integration.sync import Cursor, DeviceReport, SourceEvent, ThreatReport
from storage.engine import Store
from storage.models import Device, SourceCursor, StoredValue, Threat
from storage.states import ActivationStatus, ProtectionStatus, ThreatStatus
from tests.conftest import NOW, seed_demo

DAY = timedelta(days=1)


def _advance(store: Store, hours: float) -> tuple[list[SourceEvent], Cursor]:
    with store.read() as session:
        return simulator.advance(session, until=NOW + timedelta(hours=hours))


def _advance_and_apply(store: Store, hours: float) -> list[SourceEvent]:
    with store.write() as session:
        events, cursor = simulator.advance(session, until=NOW + timedelta(hours=hours))
        sync.apply(session, events, now=NOW, cursor=cursor)
    return events


def _threats(events: list[SourceEvent], status: ThreatStatus) -> list[ThreatReport]:
    return [e for e in events if isinstance(e, ThreatReport) and e.status == status]


def _activations(events: list[SourceEvent]) -> list[DeviceReport]:
    return [e for e in events if isinstance(e, DeviceReport) and e.activation_status is not None]


def _check_ins(events: list[SourceEvent]) -> list[DeviceReport]:
    """Check-ins that are only that: no activation, no threat report with them."""
    return [
        e
        for e in events
        if isinstance(e, DeviceReport) and e.activation_status is None and e.security_status is None
    ]


def _times(event: SourceEvent) -> datetime:
    if isinstance(event, ThreatReport):
        return event.resolved_at or event.detected_at
    assert event.checkin_time is not None
    return event.checkin_time


# ------------------------------------------------------------------------------------------ determinism


def test_same_seed_and_clock_give_the_same_events_another_seed_others(store: Store) -> None:
    seed_demo(store, users=200, devices=400, seed=7)
    first = _advance(store, 24)
    assert first == _advance(store, 24)  # read again: nothing was written
    seed_demo(store, users=200, devices=400, seed=7)
    assert _advance(store, 24) == first
    seed_demo(store, users=200, devices=400, seed=8)
    assert _advance(store, 24)[0] != first[0]
    assert len(first[0]) > 100


def test_one_long_advance_equals_short_ones_applied_in_between(store: Store) -> None:
    seed_demo(store, users=200, devices=400, seed=7)
    whole, cursor = _advance(store, 48)
    pieces = [event for hours in (10, 10.2, 31.9, 48) for event in _advance_and_apply(store, hours)]
    assert pieces == whole
    assert len(_threats(whole, ThreatStatus.OPEN)) > 10 and len(_threats(whole, ThreatStatus.RESOLVED)) > 10
    assert len(_activations(whole)) > 2
    with store.read() as session:
        stored = session.get(SourceCursor, simulator.CURSOR)
        assert stored is not None and stored.value == cursor.value


# ------------------------------------------------------------------------------------------ the clock


def test_steps_end_at_until_and_a_clock_gone_back_keeps_the_cursor(sqlite_store: Store) -> None:
    seed_demo(sqlite_store, users=200, devices=400, seed=7)
    events = _advance_and_apply(sqlite_store, 10.2)  # 10 h 12 min: forty whole steps
    assert all(NOW <= _times(e) < NOW + timedelta(hours=10) for e in events)
    with sqlite_store.read() as session:
        cursor = session.get(SourceCursor, simulator.CURSOR)
        assert cursor is not None and datetime.fromisoformat(cursor.value) == NOW + timedelta(hours=10)

    assert _advance(sqlite_store, 10.2) == ([], Cursor(simulator.CURSOR, cursor.value))  # no whole step
    assert _advance(sqlite_store, 5) == ([], Cursor(simulator.CURSOR, cursor.value))  # clock went back
    assert _advance(sqlite_store, 10.25)[1] != Cursor(simulator.CURSOR, cursor.value)


def test_a_long_gap_is_skipped_to_its_last_week_and_the_fleet_resumes(sqlite_store: Store) -> None:
    seed_demo(sqlite_store, users=1_200, devices=1_500, seed=7)
    with sqlite_store.read() as session:
        reporting = _live_devices(session, NOW)

    events, cursor = _advance(sqlite_store, 24 * 90)

    until = NOW + 90 * DAY
    assert datetime.fromisoformat(cursor.value) == until
    assert min(_times(e) for e in events) >= until - timedelta(days=7)
    checked_in = {e.id for e in events if isinstance(e, DeviceReport) and e.checkin_time is not None}
    assert len(reporting - checked_in) < len(reporting) / 50  # all but the few that went silent resumed


def _live_devices(session: Session, at: datetime) -> set[str]:
    query = select(Device.id).where(
        col(Device.activation_status) == ActivationStatus.ACTIVATED,
        col(Device.protection_status) != ProtectionStatus.UNINSTALLED,
        col(Device.checkin_time) >= schedule.live_since(at),
    )
    return set(session.exec(query).all())


def test_an_unseeded_store_is_refused(sqlite_store: Store) -> None:
    with pytest.raises(SourceError, match="demo seed"):
        _advance(sqlite_store, 1)


def test_a_tenant_seeded_before_the_seed_was_recorded_starts_from_its_audit_entry(
    sqlite_store: Store,
) -> None:
    seed_demo(sqlite_store, users=200, devices=400, seed=7)
    expected = _advance(sqlite_store, 6)
    with sqlite_store.write() as session:
        for name in (SEED_VALUE, SEEDED_AT_VALUE):
            row = session.get(StoredValue, name)
            assert row is not None and row.value  # `demo seed` recorded both
            session.delete(row)
    assert _advance(sqlite_store, 6) == expected


# ------------------------------------------------------------------------------------------ rates


@pytest.fixture(scope="module")
def day_at_1500(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[SourceEvent]]:
    """A 1,500-device demo (the default size) one simulated day on; the store as seeded."""
    from tests.conftest import make_store

    store = make_store("sqlite", tmp_path_factory.mktemp("day"))
    seed_demo(store, users=1_200, devices=1_500, seed=42)
    return store, _advance(store, 24)[0]


def test_a_1500_device_demo_shows_a_few_new_threats_an_hour(
    day_at_1500: tuple[Store, list[SourceEvent]],
) -> None:
    _, events = day_at_1500
    opened = _threats(events, ThreatStatus.OPEN)
    per_hour = Counter(t.detected_at.replace(minute=0, second=0) for t in opened)
    assert 2 * 24 <= len(opened) <= 6 * 24
    assert max(per_hour.values()) <= 12  # no burst
    assert 2 * 24 <= len(_threats(events, ThreatStatus.RESOLVED)) <= 6 * 24  # about as many resolved
    assert 5 <= len(_activations(events)) <= 60  # ~1 an hour of ~120 pending
    assert 300 <= len(_check_ins(events)) <= 700  # ~1,200 reporting devices, every 2.5 days


def test_the_classification_mix_follows_the_seeds(sqlite_store: Store) -> None:
    seed_demo(sqlite_store, users=1_200, devices=1_500, seed=4)
    opened = _threats(_advance(sqlite_store, 24 * 7)[0], ThreatStatus.OPEN)
    counts, n = Counter(t.classification for t in opened), len(opened)
    total = sum(data.CLASSIFICATION_WEIGHTS.values())
    assert n > 400
    for name in ("OUT_OF_DATE_OS", "OUT_OF_DATE_ASPL", "RISKWARE", "NO_DEVICE_LOCK"):
        share = data.CLASSIFICATION_WEIGHTS[name] / total
        assert abs(counts[name] - n * share) < 4 * math.sqrt(n * share * (1 - share)), name  # within 4 σ
    assert counts.most_common(1)[0][0] == "OUT_OF_DATE_OS"
    assert len(counts) >= 15  # the long tail shows up


def test_devices_go_silent_and_come_back(sqlite_store: Store) -> None:
    seed_demo(sqlite_store, users=1_200, devices=1_500, seed=7)
    with sqlite_store.read() as session:
        reporting = _live_devices(session, NOW)
        silent = _silent_devices(session, NOW)
    events, _ = _advance(sqlite_store, 24 * 6)
    came_back = silent & {e.id for e in events if isinstance(e, DeviceReport)}
    assert 2 <= len(came_back) <= 30  # ~1 a day
    # a device still reporting checks in every 61 hours at most
    recent = {
        e.id
        for e in events
        if isinstance(e, DeviceReport) and _times(e) >= schedule.live_since(NOW + 6 * DAY)
    }
    assert 2 <= len(reporting - recent) <= 30  # ~1 a day went silent


def _silent_devices(session: Session, at: datetime) -> set[str]:
    query = select(Device.id).where(
        col(Device.activation_status) == ActivationStatus.ACTIVATED,
        col(Device.protection_status) != ProtectionStatus.UNINSTALLED,
        col(Device.checkin_time) < schedule.live_since(at),
    )
    return set(session.exec(query).all())


def test_check_ins_come_every_59_to_61_hours_and_one_in_500_is_a_last() -> None:
    nexts = [schedule.next_check_in(7, f"device-{n}", NOW) for n in range(20_000)]
    found = [n.at - NOW for n in nexts if n is not None]
    assert 20 <= len(nexts) - len(found) <= 60  # 1 in 500 of 20,000: 40
    assert min(found) >= timedelta(hours=59) and max(found) < timedelta(hours=61)
    assert max(found) - min(found) > timedelta(hours=1, minutes=50)  # spread, not one fixed period


# ------------------------------------------------------------------------------------------ realism


def test_events_are_realistic(day_at_1500: tuple[Store, list[SourceEvent]]) -> None:
    store, events = day_at_1500
    activated_here = {e.id for e in _activations(events)}
    with store.read() as session:
        query = select(Device.id, Device.activation_status).where(col(Device.id).in_(_ids(events)))
        states = dict(session.exec(query).all())
        query = select(Device.id).where(col(Device.protection_status) == ProtectionStatus.UNINSTALLED)
        uninstalled = set(session.exec(query).all())
    assert all(states[d.id] == ActivationStatus.PENDING for d in _activations(events))
    opened = _threats(events, ThreatStatus.OPEN)
    for threat in opened:
        entry = CATALOGUE[threat.classification]
        assert states[threat.device_id] == ActivationStatus.ACTIVATED or threat.device_id in activated_here
        assert threat.device_id not in uninstalled
        assert threat.risk == entry.default_risk  # the severity Lookout reports
        assert threat.type == data.THREAT_TYPES[entry.category]
        assert (threat.app_name in data.APP_NAMES) == (entry.category == "app")
        assert (threat.network_ssid in data.SSIDS) == (entry.category == "network")
        assert (threat.url in data.URLS) == (entry.category == "web")
    assert len({t.app_name for t in opened if t.app_name}) >= 5  # the seed's names, hostile ones too


def _ids(events: list[SourceEvent]) -> set[str]:
    return {e.device_id if isinstance(e, ThreatReport) else e.id for e in events}


def test_only_open_threats_are_resolved_after_they_were_detected(store: Store) -> None:
    seed_demo(store, users=200, devices=400, seed=7)
    with store.read() as session:
        open_before = set(session.exec(select(Threat.id).where(col(Threat.status) == ThreatStatus.OPEN)))
    events, _ = _advance(store, 96)
    still_open, resolved = set(open_before), 0
    for event in events:
        if isinstance(event, ThreatReport) and event.status == ThreatStatus.OPEN:
            still_open.add(event.id)
        elif isinstance(event, ThreatReport):
            assert event.id in still_open, "resolved a threat that was not open"
            assert event.resolved_at is not None and event.resolved_at > event.detected_at
            still_open.remove(event.id)
            resolved += 1
    assert resolved > 20


def test_a_threat_reported_ahead_of_the_simulated_clock_is_not_resolved_before_it(
    sqlite_store: Store,
) -> None:
    """`demo threat` stamps the wall clock, which may be ahead of the simulator's last step."""
    seed_demo(sqlite_store, users=200, devices=400, seed=7)
    ahead = NOW + timedelta(hours=6)
    with sqlite_store.write() as session:
        device_id = min(_live_devices(session, NOW))
        events = threats.inject(
            session,
            device_id=device_id,
            classification="OUT_OF_DATE_OS",
            app=None,
            count=500,
            numbered=False,
            now=ahead,
        )
        sync.apply(session, events, now=ahead)
    resolved = _threats(_advance(sqlite_store, 12)[0], ThreatStatus.RESOLVED)
    assert any(t.device_id == device_id for t in resolved)  # they are resolved, after they were detected
    assert all(t.resolved_at is not None and t.resolved_at > t.detected_at for t in resolved)


def test_device_security_status_follows_its_open_threats(store: Store) -> None:
    seed_demo(store, users=200, devices=400, seed=7)
    events = _advance_and_apply(store, 48)
    touched = {e.device_id for e in events if isinstance(e, ThreatReport)}
    with store.read() as session:
        for device_id in touched:
            device = session.get(Device, device_id)
            assert device is not None
            risks = session.exec(
                select(Threat.risk).where(Threat.device_id == device_id, Threat.status == ThreatStatus.OPEN)
            ).all()
            top = max((RiskLevel(r) for r in risks), key=lambda r: r.rank, default=RiskLevel.NONE)
            assert device.security_status == security_status(top), device_id
    assert len(touched) > 20


def test_the_simulator_writes_nothing(sqlite_store: Store) -> None:
    seed_demo(sqlite_store, users=200, devices=400, seed=7)

    def tables() -> tuple[object, ...]:
        with sqlite_store.read() as session:
            return (
                session.exec(select(func.max(Device.checkin_time), func.count())).one(),
                session.exec(select(Threat.status, func.count()).group_by(col(Threat.status))).all(),
                session.get(SourceCursor, simulator.CURSOR),
            )

    before = tables()
    assert _advance(sqlite_store, 24)[0]
    assert tables() == before
