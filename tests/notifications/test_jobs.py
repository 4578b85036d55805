"""The connector's jobs and the digest, run through `notifications.jobs.run` as the scheduler and
`mesbot jobs run` run them."""

import asyncio
from datetime import timedelta

import pytest
from sqlmodel import col, select

from integration import connector, preferences
from integration.access import sign_in
from integration.clock import FixedClock
from integration.config import Settings
from integration.demo.data import ADMIN, ANALYST
from notifications import jobs, wiring
from notifications.delivery import Deliverer
from notifications.jobs import Deps
from storage.engine import Store
from storage.models import (
    ComplianceFlip,
    ConnectorError,
    Device,
    EnrollmentGroup,
    JobRun,
    OutboxMessage,
)
from storage.states import ActivationStatus
from tests.conftest import NOW
from tests.integration.test_sync import clean_device

ERROR_EMAIL = "mobile-ops@contoso.example"


def make_deps(store: Store, clock: FixedClock, **env: str) -> Deps:
    settings = Settings(**env)  # type: ignore[arg-type]
    return Deps(
        store=store,
        settings=settings,
        clock=clock,
        deliverer=Deliverer(store, {}, clock),
        policy=wiring.policy(settings),
    )


def run(deps: Deps, name: str) -> jobs.Outcome:
    return asyncio.run(jobs.run(deps, name))


def outbox_rows(store: Store) -> list[OutboxMessage]:
    with store.read() as session:
        return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())


def open_errors(store: Store) -> dict[str, ConnectorError]:
    with store.read() as session:
        rows = session.exec(select(ConnectorError).where(col(ConnectorError.resolved_at).is_(None))).all()
        return {e.fingerprint: e for e in rows}


def test_a_missed_heartbeat_is_a_connector_error_announced_once_and_resolved_by_the_next(
    demo_store: Store,
) -> None:
    clock = FixedClock(NOW)
    deps = make_deps(demo_store, clock)
    assert run(deps, "heartbeat").ok
    clock.advance(timedelta(minutes=60))
    run(deps, "heartbeat")
    assert "heartbeat:missed" not in open_errors(demo_store)
    clock.advance(timedelta(hours=5))  # the worker was down
    outcome = run(deps, "heartbeat")
    assert outcome.ok and "gap" in outcome.detail
    assert "Missed heartbeats" in open_errors(demo_store)["heartbeat:missed"].message
    notices = [r for r in outbox_rows(demo_store) if r.payload["kind"] == "connector-error"]
    assert [(r.recipient_id, r.channel) for r in notices] == [(f"mailto:{ERROR_EMAIL}", "email")]
    clock.advance(timedelta(minutes=60))
    run(deps, "heartbeat")
    assert "heartbeat:missed" not in open_errors(demo_store)


def test_a_repeated_error_counts_but_is_announced_once(demo_store: Store) -> None:
    clock = FixedClock(NOW)
    with demo_store.write() as session:
        connector.set_sync(session, "threat", False, actor=ADMIN, at=NOW)
        connector.set_sync(session, "threat", True, actor=ADMIN, at=NOW)
        connector.set_sync(session, "threat", False, actor=ADMIN, at=NOW + timedelta(minutes=1))
    notices = [r for r in outbox_rows(demo_store) if r.payload["kind"] == "connector-error"]
    assert len(notices) == 2  # new, then open again after it was resolved
    assert open_errors(demo_store)["sync-off:threat"].count == 2
    del clock


def test_the_enrollment_scan_adds_members_without_a_device_as_pending_and_names_a_case_mismatch(
    demo_store: Store,
) -> None:
    clock = FixedClock(NOW)
    with demo_store.write() as session:
        session.add(EnrollmentGroup(name="mobile users", added_at=NOW))
    with demo_store.read() as session:
        before = session.exec(
            select(Device).where(Device.activation_status == ActivationStatus.PENDING)
        ).all()
    outcome = run(make_deps(demo_store, clock), "enrollment-scan")
    assert outcome.ok
    error = open_errors(demo_store)["enrollment-group:mobile users"]
    assert 'did you mean "Mobile Users"?' in error.message
    with demo_store.read() as session:
        after = session.exec(select(Device).where(Device.activation_status == ActivationStatus.PENDING)).all()
    added = len(after) - len(before)
    assert added > 0 and f"{added} member(s) added" in outcome.detail
    assert run(make_deps(demo_store, clock), "enrollment-scan").detail.endswith(
        "0 member(s) added as pending devices"
    )


def test_the_sweep_disconnects_silent_devices_and_records_their_compliance_flip(demo_store: Store) -> None:
    with demo_store.write() as session:
        device = clean_device(session)
        device.checkin_time = NOW - timedelta(days=31)
        session.add(device)
        device_id = device.id
    outcome = run(make_deps(demo_store, FixedClock(NOW)), "disconnected-sweep")
    assert outcome.ok and "compliance flip" in outcome.detail
    with demo_store.read() as session:
        flips = session.exec(select(ComplianceFlip).where(ComplianceFlip.device_id == device_id)).all()
    assert [(f.became, f.why) for f in flips] == [("noncompliant", "no check-in for 30 days")]


def test_the_digest_goes_to_the_error_address_the_oncall_channel_and_opted_in_users_once(
    demo_store: Store,
) -> None:
    clock = FixedClock(NOW)
    deps = make_deps(demo_store, clock, MESBOT_ONCALL_CHANNEL="CONCALL")
    with demo_store.write() as session:
        analyst = sign_in(session, ANALYST)[0]
        preferences.set_preferences(session, analyst.id, ("digest",), ("email",), True, actor=ANALYST, at=NOW)
        connector.set_sync(session, "device", False, actor=ADMIN, at=NOW - timedelta(minutes=5))
    assert run(deps, "error-digest").ok
    digests = [r for r in outbox_rows(demo_store) if r.payload["kind"] == "digest"]
    assert sorted((r.recipient_id, r.channel) for r in digests) == sorted(
        [(f"mailto:{ERROR_EMAIL}", "email"), ("slack-channel:CONCALL", "slack"), (analyst.id, "email")]
    )
    facts = digests[0].payload
    assert [e["fingerprint"] for e in facts["new_errors"]] == ["sync-off:device"]
    # the next period: the error is ongoing, so there is a digest; the same instant again: none
    clock.advance(timedelta(hours=1))
    run(deps, "error-digest")
    run(deps, "error-digest")
    later = [r for r in outbox_rows(demo_store) if r.payload["kind"] == "digest"]
    assert len(later) == 6
    assert [e["fingerprint"] for e in later[-1].payload["ongoing_errors"]] == ["sync-off:device"]


def test_no_digest_when_nothing_happened_and_none_twice_when_the_clock_jumps_back(demo_store: Store) -> None:
    clock = FixedClock(NOW)
    deps = make_deps(demo_store, clock)
    with demo_store.write() as session:  # a quiet tenant: nobody about to be disconnected
        for device in session.exec(select(Device)).all():
            device.checkin_time = NOW - timedelta(hours=1)
            session.add(device)
    first = run(deps, "error-digest")
    assert first.ok and "no digest sent" in first.detail and outbox_rows(demo_store) == []
    clock.advance(timedelta(hours=-2))
    assert "covers this time" in run(deps, "error-digest").detail


def test_a_run_is_recorded_with_its_outcome_and_a_failure_is_one_line(demo_store: Store) -> None:
    clock = FixedClock(NOW)
    assert run(make_deps(demo_store, clock), "heartbeat").ok
    failed = run(make_deps(demo_store, clock, MESBOT_SOURCE="lookout"), "source-sync")
    assert not failed.ok and "LOOKOUT_APP_KEY is not set" in failed.detail
    with demo_store.read() as session:
        runs = {r.name: r for r in session.exec(select(JobRun)).all()}
    assert runs["heartbeat"].last_outcome == "ok" and runs["heartbeat"].last_success_at == NOW
    assert runs["source-sync"].last_outcome == "failed" and runs["source-sync"].last_success_at is None


def test_a_bad_digest_cron_is_refused_with_an_example() -> None:
    with pytest.raises(Exception, match=r"is not a crontab schedule.*0 \* \* \* \*"):
        jobs.digest_trigger("every hour")
    assert str(jobs.digest_trigger("0 8 * * 1-5 Europe/Stockholm").timezone) == "Europe/Stockholm"


def test_the_digest_runs_once_per_period_across_a_dst_change() -> None:
    from datetime import UTC, datetime

    trigger = jobs.digest_trigger("0 8 * * * Europe/Stockholm")
    fired, previous = [], None
    now = datetime(2026, 10, 23, 0, 0, tzinfo=UTC)
    while now < datetime(2026, 10, 27, 0, 0, tzinfo=UTC):
        upcoming = trigger.get_next_fire_time(previous, now)
        fired.append(upcoming.astimezone(UTC).strftime("%m-%d %H:%M"))
        previous = upcoming
        now = upcoming + timedelta(seconds=1)
    assert fired[:4] == ["10-23 06:00", "10-24 06:00", "10-25 07:00", "10-26 07:00"]


def test_jobs_list_shows_a_zoned_digest_in_utc_and_jobs_never_run_as_due_now(demo_store: Store) -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    settings = Settings(MESBOT_DIGEST_CRON="0 8 * * * Asia/Tokyo")  # type: ignore[call-arg]
    table = wiring.job_table(demo_store, settings, now)
    rows = {line.split()[0]: line for line in table[1:]}
    assert "2026-11-26 23:00:00" in rows["error-digest"]  # 08:00 in Tokyo
    assert "2026-11-26 12:00:00" in rows["heartbeat"] and "never run" in rows["heartbeat"]


def test_a_zoned_daily_digest_in_autumns_repeated_hour_is_sent_once(demo_store: Store) -> None:
    from datetime import UTC, datetime

    with demo_store.write() as session:  # something to report
        connector.set_sync(
            session, "device", False, actor=ADMIN, at=datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
        )
    clock = FixedClock(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))  # 02:30 CEST
    deps = make_deps(demo_store, clock, MESBOT_DIGEST_CRON="30 2 * * * Europe/Stockholm")
    assert "queued" in run(deps, "error-digest").detail
    clock.at = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET: the same wall-clock slot again
    assert "already sent" in run(deps, "error-digest").detail
    clock.at = datetime(2026, 10, 26, 1, 30, tzinfo=UTC)  # the next day's 02:30
    assert "queued" in run(deps, "error-digest").detail
