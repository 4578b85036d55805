"""Following Lookout's event stream into the store (integration/sources/follow.py) over real HTTP:
the cursor commits with the changes, and every way a stream ends resumes from the right event."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from integration import sync
from integration.alerts import AlertPolicy
from integration.clock import FixedClock
from integration.errors import SourceError, StoreError
from integration.sources.follow import MALFORMED_EVENT, STREAM_FAILING, Followed, StreamFollower
from integration.sources.lookout import LookoutClient
from integration.sync import DeviceReport
from storage.engine import Store
from storage.models import ConnectorError, Device, OutboxMessage, SourceCursor, Threat
from storage.states import ActivationStatus, Platform, ThreatStatus
from tests.conftest import NOW, OtherWriter, impatient
from tests.sources.conftest import (
    Sleeps,
    lookout_device_event,
    lookout_guid,
    lookout_threat_event,
)
from tests.sources.fake_lookout import Connection, FakeLookout, Fault

Make = Callable[..., LookoutClient]
STREAM = "/mra/stream/v2/events"
SAMPLES = sorted((Path(__file__).parents[1] / "integration" / "fixtures" / "lookout-events").glob("*.json"))


def add_devices(store: Store, guids: list[str]) -> None:
    with store.write() as session:
        reports = [
            DeviceReport(
                id=guid,
                owner_email="owner@contoso.example",
                platform=Platform.ANDROID,
                activation_status=ActivationStatus.ACTIVATED,
            )
            for guid in guids
        ]
        sync.apply(session, reports, now=NOW)


def mixed_events(count: int, devices: int = 20) -> list[dict[str, Any]]:
    """Threat openings, with a device update every fifth event."""
    return [
        lookout_device_event(n, n % devices + 1, security="THREATS_HIGH")
        if n % 5 == 0
        else lookout_threat_event(n, threat=n, device=n % devices + 1)
        for n in range(1, count + 1)
    ]


async def catch_up(store: Store, client: LookoutClient, **options: Any) -> Followed:
    follower = StreamFollower(store, client, clock=FixedClock(NOW), policy=AlertPolicy(storm_threshold=0))
    try:
        return await follower.follow(until_idle=True, max_seconds=options.get("max_seconds", 20))
    finally:
        await client.close()


@contextmanager
def store_locked(store: Store) -> Iterator[Store]:
    """Another writer holds the lock on threats, and a store on the same database that waits for it
    only briefly: a transaction that writes a threat fails (StoreBusy)."""
    if store.is_sqlite:
        with OtherWriter(store) as other:
            other.lock()
            yield impatient(store)
        return
    brief = Store(store.given_url.replace("options=", "options=-clock_timeout%3D200%20"))
    with store.engine.connect() as other, other.begin():
        other.execute(text("LOCK TABLE threat IN EXCLUSIVE MODE"))
        yield brief
    brief.dispose()


def cursor(store: Store) -> str | None:
    with store.read() as session:
        row = session.get(SourceCursor, "lookout")
        return row.value if row else None


def threats(store: Store) -> dict[str, Threat]:
    with store.read() as session:
        return {t.id: t for t in session.exec(select(Threat)).all()}


def stream_requests(fake: FakeLookout) -> list[dict[str, str]]:
    return [s.params for s in fake.requests_to(STREAM)]


async def test_events_apply_and_a_dropped_stream_resumes_after_the_last_event_it_delivered(
    store: Store, lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    add_devices(store, [lookout_guid(1, n) for n in range(1, 21)])
    lookout_fake.events = mixed_events(120)
    lookout_fake.plans = [Connection(after=70, then="drop")]
    done = await catch_up(store, lookout_client())
    assert done.events == 120 and done.threats_opened == 96
    first, second = stream_requests(lookout_fake)
    assert "start_time" in first and "id" not in first
    assert second["id"] == lookout_fake.events[69]["id"]
    assert cursor(store) == lookout_fake.events[-1]["id"]
    assert len(threats(store)) == 96
    with store.read() as session:
        device = session.get(Device, lookout_guid(1, 1))
        assert device is not None and (device.external_id, device.os_version) == ("intune-1", "15")
    # the next run (another process) starts after the committed event, and finds nothing new
    again = await catch_up(store, lookout_client())
    assert again.events == 0 and stream_requests(lookout_fake)[-1]["id"] == lookout_fake.events[-1]["id"]


async def test_a_silent_stream_without_heartbeats_is_dropped_and_resumed(
    sqlite_store: Store, lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    add_devices(sqlite_store, [lookout_guid(1, n) for n in range(1, 21)])
    lookout_fake.events = mixed_events(30)
    lookout_fake.plans = [Connection(after=10, then="silent")]
    done = await catch_up(sqlite_store, lookout_client(heartbeat_timeout=0.5))
    assert done.events == 30
    assert [r.get("id") for r in stream_requests(lookout_fake)][1] == lookout_fake.events[9]["id"]
    assert cursor(sqlite_store) == lookout_fake.events[-1]["id"]


async def test_reconnect_waits_the_retry_the_server_asked_for(
    sqlite_store: Store, lookout_fake: FakeLookout, lookout_client: Make, lookout_sleeps: Sleeps
) -> None:
    add_devices(sqlite_store, [lookout_guid(1, n) for n in range(1, 21)])
    lookout_fake.events = mixed_events(12)
    lookout_fake.plans = [Connection(after=5, then="reconnect", retry_ms=2500)]
    done = await catch_up(sqlite_store, lookout_client())
    assert done.events == 12 and lookout_sleeps == [2.5]
    assert stream_requests(lookout_fake)[1]["id"] == lookout_fake.events[4]["id"]


async def test_end_means_caught_up_and_the_next_run_goes_on_from_there(
    sqlite_store: Store, lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    add_devices(sqlite_store, [lookout_guid(1, n) for n in range(1, 21)])
    lookout_fake.events = mixed_events(12)
    lookout_fake.plans = [Connection(after=5, then="end")]
    first = await catch_up(sqlite_store, lookout_client())
    assert first.events == 5 and cursor(sqlite_store) == lookout_fake.events[4]["id"]
    second = await catch_up(sqlite_store, lookout_client())
    assert second.events == 7 and stream_requests(lookout_fake)[-1]["id"] == lookout_fake.events[4]["id"]
    assert cursor(sqlite_store) == lookout_fake.events[-1]["id"]


async def test_a_malformed_event_is_a_connector_error_and_the_rest_is_applied(
    store: Store, lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    add_devices(store, [lookout_guid(1, n) for n in range(1, 21)])
    events = [lookout_threat_event(n, threat=n, device=n) for n in range(1, 11)]
    events[4]["threat"]["classifications"] = ["NOT_A_THING"]
    lookout_fake.events = events
    done = await catch_up(store, lookout_client())
    assert done.malformed == 1 and done.threats_opened == 9
    assert lookout_guid(2, 5) not in threats(store) and len(threats(store)) == 9
    assert cursor(store) == events[-1]["id"]
    with store.read() as session:
        error = session.get(ConnectorError, MALFORMED_EVENT)
    assert error is not None and error.resolved_at is None
    assert "unknown threat classification 'NOT_A_THING'" in error.message and events[4]["id"] in error.message


async def test_a_token_that_expires_mid_stream_is_renewed_once_and_the_stream_resumes(
    sqlite_store: Store, lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    add_devices(sqlite_store, [lookout_guid(1, n) for n in range(1, 21)])
    lookout_fake.events = mixed_events(40)
    lookout_fake.plans = [Connection(after=20, then="expire")]
    done = await catch_up(sqlite_store, lookout_client())
    assert done.events == 40 and lookout_fake.tokens_issued == 2
    requests = lookout_fake.requests_to(STREAM)
    assert [(r.params.get("id"), r.authorization) for r in requests[1:]] == [
        (lookout_fake.events[19]["id"], "Bearer token-1"),  # refused: 401
        (lookout_fake.events[19]["id"], "Bearer token-2"),
    ]


async def test_all_fifteen_real_samples_stream_and_apply(
    store: Store, lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    samples = [json.loads(path.read_text(encoding="utf-8")) for path in SAMPLES]
    assert len(samples) == 15
    devices = {
        e["actor"]["guid"] for e in samples if e["type"] == "THREAT" and e["actor"]["type"] == "DEVICE"
    }
    devices |= {e["device"]["guid"] for e in samples if e["type"] == "DEVICE"}
    add_devices(store, sorted(devices))
    lookout_fake.events = samples
    lookout_fake.frame_size = 4
    done = await catch_up(store, lookout_client())
    tracked = [e for e in samples if e["type"] in ("THREAT", "DEVICE")]
    assert done.events == len(tracked) and done.malformed == 0
    stored = threats(store)
    named = {e["threat"]["guid"] for e in samples if e["type"] == "THREAT" and e["actor"]["type"] == "DEVICE"}
    assert named <= set(stored)
    assert cursor(store) == samples[-1]["id"]
    with store.read() as session:
        update = session.get(Device, "f1557f3b-f90a-4260-a7c5-5a7bf975524c")
    assert update is not None and update.external_id == "33184684-d443-4db2-a6ca-88b78df8f1e7"


async def test_a_transaction_that_fails_after_the_events_arrived_loses_nothing_and_applies_nothing_twice(
    demo_store: Store, lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    with demo_store.read() as session:
        ids = list(session.exec(select(Device.id).order_by(col(Device.id)).limit(30)).all())
    events = [lookout_threat_event(n, threat=n, device=1) for n in range(1, 31)]
    for event, device in zip(events, ids, strict=True):
        event["actor"]["guid"] = device
    lookout_fake.events = events[:10]
    assert (await catch_up(demo_store, lookout_client())).events == 10
    lookout_fake.events.extend(events[10:])
    with store_locked(demo_store) as waiting_briefly, pytest.raises(StoreError):
        await catch_up(waiting_briefly, lookout_client())  # the events arrive; their transaction fails
    assert stream_requests(lookout_fake)[1]["id"] == events[9]["id"]  # they did arrive
    assert cursor(demo_store) == events[9]["id"]
    done = await catch_up(demo_store, lookout_client())  # "after the restart"
    assert done.events == 20 and stream_requests(lookout_fake)[-1]["id"] == events[9]["id"]
    opened = {lookout_guid(2, n) for n in range(1, 31)}
    assert {t for t, row in threats(demo_store).items() if row.status == ThreatStatus.OPEN} >= opened
    with demo_store.read() as session:
        keys = list(session.exec(select(OutboxMessage.idempotency_key)).all())
    per_threat = {t: sum(t in key for key in keys) for t in opened}
    assert set(per_threat.values()) == {2}  # the admin's e-mail and Slack alert, once each


async def test_a_stream_that_keeps_failing_is_a_connector_error_resolved_once_it_works_again(
    store: Store, lookout_fake: FakeLookout, lookout_client: Make, lookout_sleeps: Sleeps
) -> None:
    lookout_fake.fail(STREAM, Fault(503, times=6))
    with pytest.raises(SourceError, match=r"event stream with HTTP 503 \(6 tries\)"):
        await catch_up(store, lookout_client())
    assert len(lookout_sleeps) == 5 and cursor(store) is None
    with store.read() as session:
        error = session.get(ConnectorError, STREAM_FAILING)
    assert error is not None and error.resolved_at is None and "HTTP 503" in error.message
    again = await catch_up(store, lookout_client())  # nothing new: a heartbeat says it works
    assert again.events == 0
    with store.read() as session:
        error = session.get(ConnectorError, STREAM_FAILING)
    assert error is not None and error.resolved_at == NOW


async def test_server_errors_on_the_stream_back_off_then_it_streams(
    sqlite_store: Store, lookout_fake: FakeLookout, lookout_client: Make, lookout_sleeps: Sleeps
) -> None:
    add_devices(sqlite_store, [lookout_guid(1, n) for n in range(1, 21)])
    lookout_fake.events = mixed_events(10)
    lookout_fake.fail(STREAM, Fault(500, times=2))
    lookout_fake.fail(STREAM, Fault(429, retry_after="4"))
    done = await catch_up(sqlite_store, lookout_client())
    assert done.events == 10 and len(lookout_sleeps) == 3 and lookout_sleeps[2] == 4.0
    assert 0.5 <= lookout_sleeps[0] <= 1 and 1 <= lookout_sleeps[1] <= 2


async def test_a_stored_position_that_is_not_a_time_asks_for_a_full_sync(
    sqlite_store: Store, lookout_client: Make
) -> None:
    with sqlite_store.write() as session:
        session.add(SourceCursor(name="lookout", value="@yesterday", updated_at=NOW))
    with pytest.raises(SourceError, match=r"'@yesterday' is not a time: run `mesbot sync --full`"):
        await catch_up(sqlite_store, lookout_client())
