"""`sync.apply`: source events → devices and threats, with the alerts, compliance flips and cursor
they cause, in one transaction (DESIGN §2, §8)."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from integration import preferences, sync
from integration.access import sign_in
from integration.alerts import AlertPolicy
from integration.demo.data import ADMIN, ALICE, ANALYST
from integration.sync import Cursor, DeviceReport, ThreatReport
from storage.engine import Store
from storage.models import ComplianceFlip, Device, OutboxMessage, SourceCursor
from storage.states import ActivationStatus, OutboxState, Platform, ProtectionStatus, RiskLevel, ThreatStatus
from tests.conftest import NOW


def clean_device(session: Session) -> Device:
    """An activated, protected device with no open threat: compliant whatever the policy."""
    query = (
        select(Device)
        .where(
            Device.activation_status == ActivationStatus.ACTIVATED,
            Device.protection_status == ProtectionStatus.PROTECTED,
            Device.open_classifications == 0,
        )
        .order_by(col(Device.id))
    )
    device = session.exec(query).first()
    assert device is not None
    return device


def opened(
    device_id: str, classification: str = "TROJAN", *, at: datetime = NOW, app: str = "Evil"
) -> ThreatReport:
    return ThreatReport(
        id=str(uuid.uuid4()),
        device_id=device_id,
        status=ThreatStatus.OPEN,
        classification=classification,
        risk=RiskLevel.HIGH,
        type="APPLICATION",
        detected_at=at,
        app_name=app,
    )


def rows(store: Store) -> list[OutboxMessage]:
    with store.read() as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def user_id(store: Store, email: str) -> str:
    with store.read() as session:
        return sign_in(session, email)[0].id


def opt_in(store: Store, email: str, category: str, channels: tuple[str, ...] = ("email",)) -> None:
    with store.write() as session:
        uid = sign_in(session, email)[0].id
        preferences.set_preferences(session, uid, (category,), channels, True, actor=email, at=NOW)


def test_a_new_high_threat_queues_one_row_per_channel_for_the_opted_in_admin(demo_store: Store) -> None:
    with demo_store.write() as session:
        device = clean_device(session)
        threat = opened(device.id)
        applied = sync.apply(session, [threat], now=NOW)
    assert applied.threats_opened == [threat.id]
    queued = rows(demo_store)
    admin = user_id(demo_store, ADMIN)
    assert [(r.recipient_id, r.channel, r.category) for r in queued] == [
        (admin, "email", "threat-high"),
        (admin, "slack", "threat-high"),
    ]
    assert queued[0].payload == {
        "kind": "threat",
        "threat_id": threat.id,
        "device_id": device.id,
        "device_name": device.name,
        "owner_email": device.owner_email,
        "platform": device.platform.value,
        "classification": "TROJAN",
        "category": "app",
        "risk": "high",
        "app_name": "Evil",
        "detected_at": "2026-11-26T12:00:00Z",
    }
    assert all(r.idempotency_key.startswith(f"threat:{threat.id}@") for r in queued)


def test_applying_the_same_events_again_queues_nothing_more(demo_store: Store) -> None:
    with demo_store.write() as session:
        threat = opened(clean_device(session).id)
        sync.apply(session, [threat], now=NOW)
    with demo_store.write() as session:
        again = sync.apply(session, [threat], now=NOW + timedelta(minutes=5))
    assert again.threats_opened == [] and again.alerts == 0
    assert len(rows(demo_store)) == 2


def test_alerts_follow_the_current_risk_and_reach_restricted_users_but_not_non_console_users(
    demo_store: Store,
) -> None:
    opt_in(demo_store, ANALYST, "threat-medium")
    opt_in(demo_store, ALICE, "threat-medium")  # no console access: never alerted
    with demo_store.write() as session:
        device = clean_device(session)
        # OUT_OF_DATE_OS is medium in the catalogue, whatever the source reported
        sync.apply(session, [opened(device.id, "OUT_OF_DATE_OS")], now=NOW)
    queued = [r for r in rows(demo_store) if r.category.startswith("threat-")]  # drift is a connector error
    assert [(r.recipient_id, r.category) for r in queued] == [(user_id(demo_store, ANALYST), "threat-medium")]
    assert queued[0].payload["risk"] == "medium"


def test_a_threat_that_turns_a_device_noncompliant_is_a_flip_and_its_resolution_another(
    demo_store: Store,
) -> None:
    with demo_store.write() as session:
        device = clean_device(session)
        threat = opened(device.id)
        sync.apply(session, [threat], now=NOW)
    later = NOW + timedelta(hours=1)
    resolved = ThreatReport(**{**threat.__dict__, "status": ThreatStatus.RESOLVED, "resolved_at": later})
    with demo_store.write() as session:
        applied = sync.apply(session, [resolved], now=later)
    assert applied.threats_closed == 1 and applied.flips == 1
    with demo_store.read() as session:
        flips = session.exec(select(ComplianceFlip).order_by(col(ComplianceFlip.at))).all()
    assert [(f.device_id, f.became) for f in flips] == [(device.id, "noncompliant"), (device.id, "compliant")]


def test_a_low_threat_under_a_high_policy_is_no_flip(demo_store: Store) -> None:
    with demo_store.write() as session:
        device = clean_device(session)
        applied = sync.apply(session, [opened(device.id, "SIDELOADED_APP")], now=NOW)  # low
    assert applied.flips == 0


def test_the_cursor_is_committed_with_the_changes_or_not_at_all(demo_store: Store) -> None:
    with pytest.raises(RuntimeError), demo_store.write() as session:
        sync.apply(session, [opened(clean_device(session).id)], now=NOW, cursor=Cursor("demo", "t1"))
        raise RuntimeError("crash before commit")
    assert rows(demo_store) == []
    with demo_store.read() as session:
        assert session.get(SourceCursor, "demo") is None
    with demo_store.write() as session:
        sync.apply(session, [opened(clean_device(session).id)], now=NOW, cursor=Cursor("demo", "t2"))
    with demo_store.read() as session:
        cursor = session.get(SourceCursor, "demo")
        assert cursor is not None and cursor.value == "t2"
    assert len(rows(demo_store)) == 2


def test_a_threat_on_an_unknown_device_is_skipped_with_the_reason(demo_store: Store) -> None:
    with demo_store.write() as session:
        applied = sync.apply(session, [opened("no-such-device")], now=NOW)
    assert applied.threats_opened == [] and "no-such-device" in applied.skipped[0]


def test_a_new_device_is_added_and_a_check_in_reconnects_a_disconnected_one(demo_store: Store) -> None:
    new = DeviceReport(
        id="new-device",
        owner_email="Alice@Contoso.example",
        platform=Platform.IOS,
        activation_status=ActivationStatus.PENDING,
    )
    with demo_store.write() as session:
        silent = session.exec(
            select(Device).where(Device.protection_status == ProtectionStatus.DISCONNECTED)
        ).first()
        assert silent is not None
        applied = sync.apply(session, [new, DeviceReport(id=silent.id, checkin_time=NOW)], now=NOW)
    assert (applied.devices_added, applied.devices_changed) == (1, 1)
    with demo_store.read() as session:
        added = session.get(Device, "new-device")
        back = session.get(Device, silent.id)
        assert added is not None and added.owner_email == "alice@contoso.example"
        assert back is not None and back.protection_status == ProtectionStatus.PROTECTED


def test_quiet_hours_hold_non_high_alerts_until_the_window_ends_and_high_breaks_through(
    demo_store: Store,
) -> None:
    opt_in(demo_store, ADMIN, "threat-medium")
    with demo_store.write() as session:
        uid = sign_in(session, ADMIN)[0].id
        preferences.set_quiet_hours(session, uid, ("22:00", "07:00"), actor=ADMIN, at=NOW)
    night = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    with demo_store.write() as session:
        device = clean_device(session)
        sync.apply(
            session,
            [opened(device.id, "OUT_OF_DATE_OS", at=night), opened(device.id, "OUT_OF_DATE_OS", at=night)],
            now=night,
        )
        sync.apply(session, [opened(device.id, "TROJAN", at=night)], now=night)
    by_kind = {r.payload["kind"]: r for r in rows(demo_store) if r.channel == "email"}
    catchup = by_kind["catchup"]
    assert catchup.available_at == datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert catchup.payload["count"] == 2 and len(catchup.payload["alerts"]) == 2
    assert by_kind["threat"].payload["risk"] == "high" and by_kind["threat"].available_at == night


@pytest.mark.parametrize(
    ("night", "ends_utc"),
    [
        # Stockholm: CEST (UTC+2) until 25 October 2026 03:00, CET (UTC+1) after
        (datetime(2026, 10, 24, 21, 0, tzinfo=UTC), datetime(2026, 10, 25, 6, 0, tzinfo=UTC)),
        (datetime(2026, 10, 23, 21, 0, tzinfo=UTC), datetime(2026, 10, 24, 5, 0, tzinfo=UTC)),
    ],
)
def test_quiet_hours_keep_their_local_hours_across_a_dst_change(night: datetime, ends_utc: datetime) -> None:
    from integration.alerts import quiet_until

    assert quiet_until(("22:00", "07:00", "Europe/Stockholm"), night) == ends_utc
    assert quiet_until(("22:00", "07:00", "Europe/Stockholm"), ends_utc) is None


def test_a_storm_past_the_threshold_is_folded_into_one_summary_per_window(demo_store: Store) -> None:
    policy = AlertPolicy(storm_threshold=3, storm_window=timedelta(minutes=10))
    with demo_store.write() as session:
        device = clean_device(session)
        for n in range(7):
            sync.apply(
                session, [opened(device.id, app=f"App #{n}")], now=NOW + timedelta(seconds=n), policy=policy
            )
    email = [r for r in rows(demo_store) if r.channel == "email"]
    kinds = [r.payload["kind"] for r in email]
    assert kinds == ["threat", "threat", "threat", "storm"]
    storm = email[-1]
    assert storm.payload["count"] == 4 and storm.available_at == NOW + timedelta(minutes=10)
    # the next window starts counting again
    with demo_store.write() as session:
        sync.apply(session, [opened(device.id)], now=NOW + timedelta(minutes=10), policy=policy)
    assert [r.payload["kind"] for r in rows(demo_store) if r.channel == "email"][-1] == "threat"


def test_a_threat_that_closes_and_opens_again_is_alerted_again(demo_store: Store) -> None:
    with demo_store.write() as session:
        threat = opened(clean_device(session).id)
        sync.apply(session, [threat], now=NOW)
    later = NOW + timedelta(hours=2)
    closed = ThreatReport(**{**threat.__dict__, "status": ThreatStatus.RESOLVED, "resolved_at": later})
    with demo_store.write() as session:
        sync.apply(session, [closed], now=later)
    again = NOW + timedelta(hours=3)
    with demo_store.write() as session:
        applied = sync.apply(session, [threat], now=again)  # OPEN again, as the source reports it
    assert applied.threats_opened == [threat.id] and applied.alerts == 2
    assert len(rows(demo_store)) == 4


def test_an_alert_in_the_repeated_hour_of_autumn_is_held_not_lost(demo_store: Store) -> None:
    """Stockholm, 25 October 2026: 02:00–03:00 happens twice (CEST, then CET)."""
    opt_in(demo_store, ADMIN, "threat-medium")
    with demo_store.write() as session:
        uid = sign_in(session, ADMIN)[0].id
        preferences.set_quiet_hours(
            session, uid, ("01:00", "02:30"), actor=ADMIN, at=NOW, zone="Europe/Stockholm"
        )
    first = datetime(2026, 10, 24, 23, 15, tzinfo=UTC)  # 01:15 CEST: held until 02:30 CEST = 00:30Z
    second = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)  # 02:15 CET: held until 02:30 CET = 01:30Z
    for at in (first, second):
        with demo_store.write() as session:
            sync.apply(session, [opened(clean_device(session).id, "OUT_OF_DATE_OS", at=at)], now=at)
    held = sorted(
        r.available_at for r in rows(demo_store) if r.channel == "email" and r.payload["kind"] == "catchup"
    )
    assert held == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)]


def test_an_alert_for_a_summary_already_sent_starts_a_new_one(demo_store: Store) -> None:
    opt_in(demo_store, ADMIN, "threat-medium")
    with demo_store.write() as session:
        uid = sign_in(session, ADMIN)[0].id
        preferences.set_quiet_hours(session, uid, ("22:00", "07:00"), actor=ADMIN, at=NOW)
    night = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)
    with demo_store.write() as session:
        sync.apply(session, [opened(clean_device(session).id, "OUT_OF_DATE_OS", at=night)], now=night)
        for row in session.exec(select(OutboxMessage)).all():
            row.state = OutboxState.SENT  # as if the catch-up had gone out already
            session.add(row)
    with demo_store.write() as session:
        applied = sync.apply(
            session, [opened(clean_device(session).id, "OUT_OF_DATE_OS", at=night)], now=night
        )
    assert applied.alerts == 1


def test_a_device_report_changes_only_what_it_names_and_a_new_one_gets_defaults(demo_store: Store) -> None:
    from storage.states import SecurityStatus

    with demo_store.write() as session:
        known = clean_device(session)
        known_id, before = known.id, (known.name, known.platform, known.os_version, known.checkin_time)
    later, earlier = NOW + timedelta(minutes=5), NOW - timedelta(days=400)
    reports = [
        DeviceReport(id=known_id, os_version="17.1"),
        DeviceReport(id=known_id, checkin_time=earlier),  # older than what is known: ignored
        DeviceReport(
            id="fresh",
            owner_email=" Bo@Contoso.Example ",
            platform=Platform.ANDROID,
            activation_status=ActivationStatus.PENDING,
        ),
        DeviceReport(id="half", owner_email="x@contoso.example"),  # new, but no platform or state
    ]
    with demo_store.write() as session:
        applied = sync.apply(session, reports, now=later)
    assert (applied.devices_added, applied.devices_changed) == (1, 1)
    assert applied.skipped == ["device half: new, but the report lacks platform, activation_status"]
    with demo_store.read() as session:
        same = session.get(Device, known_id)
        fresh = session.get(Device, "fresh")
        assert same is not None and fresh is not None and session.get(Device, "half") is None
        assert (same.name, same.platform, same.os_version, same.checkin_time) == (
            *before[:2],
            "17.1",
            before[3],
        )
        assert (fresh.owner_email, fresh.protection_status, fresh.security_status, fresh.enrolled_at) == (
            "bo@contoso.example",
            ProtectionStatus.PROTECTED,
            SecurityStatus.SECURE,
            later,
        )


def test_a_storm_summary_names_its_window_and_at_most_ten_devices_once_each(demo_store: Store) -> None:
    policy = AlertPolicy(storm_threshold=1, storm_window=timedelta(minutes=10))
    at = NOW + timedelta(minutes=3)
    with demo_store.write() as session:
        devices = list(
            session.exec(
                select(Device.id)
                .where(
                    Device.activation_status == ActivationStatus.ACTIVATED, Device.open_classifications == 0
                )
                .order_by(col(Device.id))
                .limit(12)
            ).all()
        )
        threats = [opened(devices[0])] + [opened(d) for d in [devices[1], devices[1], *devices[2:]]]
        for threat in threats:
            sync.apply(session, [threat], now=at, policy=policy)
    storm = next(r for r in rows(demo_store) if r.channel == "email" and r.payload["kind"] == "storm")
    assert storm.payload["count"] == len(threats) - 1
    assert storm.payload["devices"] == [devices[1], *devices[2:11]]  # ten, the repeat counted once
    assert (storm.payload["window_start"], storm.payload["window_end"]) == (
        "2026-11-26T12:00:00Z",
        "2026-11-26T12:10:00Z",
    )
    assert storm.payload["classification"] == "TROJAN" and storm.payload["risk"] == "high"


def _t(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("quiet", "at", "ends"),
    [
        (("09:00", "17:00", "UTC"), _t(26, 12), _t(26, 17)),
        (("09:00", "17:00", "UTC"), _t(26, 17), None),  # the end is not inside
        (("09:00", "17:00", "UTC"), _t(26, 8, 59), None),
        (("22:00", "07:00", "UTC"), _t(27, 3), _t(27, 7)),
        (("22:00", "07:00", "UTC"), _t(26, 21, 59), None),
        (("22:00", "07:00", "Nowhere/Atlantis"), _t(26, 23), _t(27, 7)),  # an unknown zone reads as UTC
        (("22:00", "22:00", "UTC"), _t(26, 22), None),
        (None, _t(26, 23), None),
    ],
)
def test_quiet_hours_windows(quiet: tuple[str, str, str] | None, at: datetime, ends: datetime | None) -> None:
    from integration.alerts import quiet_until

    assert quiet_until(quiet, at) == ends
