"""`mesbot sync [--full]`, `jobs run source-sync` and `serve`'s stream follower in Lookout mode, against
the fake Lookout over real HTTP."""

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlmodel import col, select

from bot.cli import main
from integration.clock import FixedClock
from integration.config import Settings
from notifications import jobs, stream, wiring
from notifications.jobs import Deps
from storage.engine import Store
from storage.models import Connector, Device, OutboxMessage, SourceCursor, Threat
from storage.states import ActivationStatus
from tests.conftest import NOW, seed_demo
from tests.sources.conftest import lookout_device, lookout_guid, lookout_threat, lookout_threat_event
from tests.sources.fake_graph import FakeGraph
from tests.sources.fake_lookout import FakeLookout
from tests.sources.graph_fixtures import Tls, fake_graph_fixture, graph_env, tls_fixture
from tests.sources.test_graph_sync import contoso

__all__ = ["fake_graph_fixture", "tls_fixture"]  # pytest fixtures, used by name
MESBOT = str(Path(sys.executable).with_name("mesbot"))


class Mesbot:
    """`mesbot` on the command line in Lookout mode: the fake Lookout, and the fake Graph (over HTTPS,
    its CA trusted through SSL_CERT_FILE) for the directory side of `sync`."""

    def __init__(self, path: Path, fake: FakeLookout, graph: FakeGraph, tls: Tls) -> None:
        self.url = f"sqlite:///{path}"
        self.env = {
            **graph_env(graph),
            "SSL_CERT_FILE": str(tls.ca_file(path.parent)),
            "MESBOT_DATABASE_URL": self.url,
            "MESBOT_SOURCE": "lookout",
            "LOOKOUT_APP_KEY": fake.key,
            "LOOKOUT_API_URL": fake.url,
        }
        self.runner = CliRunner()
        assert self("db", "upgrade").exit_code == 0

    def __call__(self, *args: str, **env: str) -> Result:
        return self.runner.invoke(main, list(args), env=self.env | env)

    def store(self) -> Store:
        return Store(self.url)


@pytest.fixture
def mesbot(tmp_path: Path, lookout_fake: FakeLookout, fake_graph: FakeGraph, tls: Tls) -> Mesbot:
    contoso(fake_graph)
    return Mesbot(tmp_path / "mesbot.db", lookout_fake, fake_graph, tls)


def rows(store: Store) -> tuple[dict[str, Device], dict[str, Threat], str | None]:
    with store.read() as session:
        devices = {d.id: d for d in session.exec(select(Device)).all()}
        threats = {t.id: t for t in session.exec(select(Threat)).all()}
        cursor = session.get(SourceCursor, "lookout")
    store.dispose()
    return devices, threats, cursor.value if cursor else None


def test_a_full_sync_pages_thousands_of_devices_then_removes_what_lookout_no_longer_lists(
    mesbot: Mesbot, lookout_fake: FakeLookout
) -> None:
    lookout_fake.devices = [lookout_device(n) for n in range(1, 3_001)]
    lookout_fake.threats = [lookout_threat(n, device=n) for n in range(1, 51)]
    result = mesbot("sync", "--full")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "Full sync: 3,000 added, 0 changed, 0 removed (3,000 device(s) and 50 threat(s)"
    )
    oids = [s.params.get("oid") for s in lookout_fake.requests_to("/mra/api/v2/devices")]
    assert oids == [None, "1000", "2000", "3000"]
    devices, threats, cursor = rows(mesbot.store())
    assert len(devices) == 3_000 and len(threats) == 50
    assert cursor is not None and cursor.startswith("@")
    assert devices[lookout_guid(1, 9)].external_id == "intune-9"

    del lookout_fake.devices[6]  # device 7 (and its threat) is gone from Lookout
    lookout_fake.threats = [t for t in lookout_fake.threats if t["device_guid"] != lookout_guid(1, 7)]
    lookout_fake.devices[7]["activation_status"] = "DEACTIVATED"  # device 9
    again = mesbot("sync", "--full")
    assert again.exit_code == 0, again.output
    assert again.output.startswith(
        "Full sync: 0 added, 1 changed, 1 removed (2,999 device(s) and 49 threat(s)"
    )
    devices, threats, _ = rows(mesbot.store())
    assert lookout_guid(1, 7) not in devices and lookout_guid(2, 7) not in threats
    assert devices[lookout_guid(1, 9)].activation_status == ActivationStatus.DEACTIVATED


def test_after_a_full_sync_the_stream_starts_where_the_listing_began(
    mesbot: Mesbot, lookout_fake: FakeLookout
) -> None:
    lookout_fake.devices = [lookout_device(n) for n in range(1, 4)]
    assert mesbot("sync", "--full").exit_code == 0
    _, _, listed_at = rows(mesbot.store())
    lookout_fake.events = [lookout_threat_event(1, threat=1, device=2)]
    result = mesbot("sync")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        "Caught up from the stream: 0 added, 0 changed, 0 removed (1 event(s): 1 threat"
    )
    [request] = lookout_fake.requests_to("/mra/stream/v2/events")
    assert listed_at is not None and request.params["start_time"].startswith(listed_at[1:20])
    _, threats, cursor = rows(mesbot.store())
    assert lookout_guid(2, 1) in threats and cursor == lookout_fake.events[0]["id"]


def test_the_first_sync_without_full_lists_everything_since_there_is_no_stream_position(
    mesbot: Mesbot, lookout_fake: FakeLookout
) -> None:
    lookout_fake.devices = [lookout_device(1)]
    result = mesbot("sync")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Full sync (no stream position yet, so a full listing first): 1 added")


def test_a_listing_with_no_devices_removes_nothing(mesbot: Mesbot, lookout_fake: FakeLookout) -> None:
    lookout_fake.devices = [lookout_device(n) for n in range(1, 4)]
    assert mesbot("sync", "--full").exit_code == 0
    lookout_fake.devices = []
    result = mesbot("sync", "--full")
    assert (
        result.exit_code == 0 and "Lookout listed no devices, so the 3 stored ones were kept" in result.output
    )
    assert len(rows(mesbot.store())[0]) == 3


def test_a_wrong_key_is_one_line_naming_the_variable_and_exit_1(
    mesbot: Mesbot, lookout_fake: FakeLookout
) -> None:
    result = mesbot("sync", "--full", LOOKOUT_APP_KEY="wrong-key-123")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: Lookout refused LOOKOUT_APP_KEY (invalid_client: Client authentication failed): create a new "
        "application key in the Lookout console (System → Application Keys) and set LOOKOUT_APP_KEY to it."
    ]
    assert "wrong-key-123" not in result.output and len(lookout_fake.requests_to("/oauth2/token")) == 1


def test_a_missing_key_says_which_variable_to_set(mesbot: Mesbot) -> None:
    result = mesbot("sync", LOOKOUT_APP_KEY="")
    assert result.exit_code == 1
    assert result.output.startswith("Error: LOOKOUT_APP_KEY is not set: MESBOT_SOURCE=lookout needs")
    assert "Traceback" not in result.output


def make_deps(store: Store, fake: FakeLookout) -> Deps:
    settings = Settings(MESBOT_SOURCE="lookout", LOOKOUT_APP_KEY=fake.key, LOOKOUT_API_URL=fake.url)  # type: ignore[call-arg]
    return wiring.deps(settings, store, FixedClock(NOW))


def test_mesbot_sync_killed_mid_stream_loses_no_event_and_applies_none_twice_after_a_restart(
    mesbot: Mesbot, lookout_fake: FakeLookout
) -> None:
    store = mesbot.store()
    seed_demo(store)
    with store.write() as session:
        ids = list(session.exec(select(Device.id).order_by(col(Device.id)).limit(30)).all())
        session.add(SourceCursor(name="lookout", value="@" + NOW.isoformat(), updated_at=NOW))
    events = [lookout_threat_event(n, threat=n, device=1) for n in range(1, 301)]
    for n, event in enumerate(events):
        event["actor"]["guid"] = ids[n % len(ids)]
    lookout_fake.events, lookout_fake.frame_size, lookout_fake.frame_pause = events, 3, 0.01
    env = {**os.environ, **mesbot.env, "MESBOT_STORM_THRESHOLD": "0"}
    rng, applied = random.Random(5), 0
    while applied < 240:  # killed at arbitrary moments while the stream trickles in, and started again
        sync = subprocess.Popen(
            [MESBOT, "sync"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 60
            while len(_ours(store)) < applied + 30 and time.monotonic() < deadline and sync.poll() is None:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.03))  # somewhere in the next batch: reading, applying, committing
            sync.send_signal(signal.SIGKILL)
        finally:
            sync.wait()
        assert sync.returncode == -signal.SIGKILL
        applied, killed_at = len(_ours(store)), rows(store)[2]
        assert 0 < applied < 300 and killed_at == events[applied - 1]["id"]  # changes and cursor agree
    assert mesbot("sync", MESBOT_STORM_THRESHOLD="0").exit_code == 0  # "after the restart"
    assert lookout_fake.requests_to("/mra/stream/v2/events")[-1].params["id"] == killed_at
    assert len(_ours(store)) == 300 and rows(store)[2] == events[-1]["id"]
    with store.read() as session:
        keys = list(session.exec(select(OutboxMessage.idempotency_key)).all())
    store.dispose()
    per_threat = Counter(key.split(":")[1].split("@")[0] for key in keys if key.startswith("threat:"))
    assert per_threat.keys() == {lookout_guid(2, n) for n in range(1, 301)}
    assert set(per_threat.values()) == {2}  # the admin's e-mail and Slack alert, once each


def _ours(store: Store) -> list[str]:
    """The threats the test's events opened (the demo tenant has threats of its own)."""
    with store.read() as session:
        prefix = lookout_guid(2, 0)[:24]  # 00000000-0000-4000-0002-
        return list(session.exec(select(Threat.id).where(col(Threat.id).startswith(prefix))).all())


def test_jobs_run_source_sync_catches_up_from_the_stream(
    sqlite_store: Store, lookout_fake: FakeLookout
) -> None:
    lookout_fake.devices = [lookout_device(n) for n in range(1, 4)]
    lookout_fake.events = [lookout_threat_event(n, threat=n, device=2) for n in range(1, 4)]
    with sqlite_store.write() as session:
        session.add(SourceCursor(name="lookout", value="@" + NOW.isoformat(), updated_at=NOW))
    from integration import sync
    from integration.sources import lookout_events

    with sqlite_store.write() as session:
        sync.apply(session, [lookout_events.device(d) for d in lookout_fake.devices], now=NOW)
    outcome = asyncio.run(jobs.run(make_deps(sqlite_store, lookout_fake), "source-sync"))
    assert outcome.ok and outcome.detail.startswith("3 event(s): 3 threat(s) opened"), outcome.detail


async def test_serve_follows_the_stream_until_stopped(sqlite_store: Store, lookout_fake: FakeLookout) -> None:
    from integration import sync
    from integration.sources import lookout_events

    lookout_fake.devices = [lookout_device(n) for n in range(1, 4)]
    with sqlite_store.write() as session:
        sync.apply(session, [lookout_events.device(d) for d in lookout_fake.devices], now=NOW)
    lookout_fake.events = [lookout_threat_event(1, threat=1, device=2)]
    deps = make_deps(sqlite_store, lookout_fake)
    following = asyncio.create_task(stream.follow(deps))  # as the leader runs it
    for _ in range(200):
        await asyncio.sleep(0.02)
        if len(rows(sqlite_store)[1]) == 1:
            break
    lookout_fake.events.append(lookout_threat_event(2, threat=2, device=3))  # live, on the open stream
    for _ in range(200):
        await asyncio.sleep(0.02)
        if len(rows(sqlite_store)[1]) == 2:
            break
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    assert deps.source is None
    _, threats, cursor = rows(sqlite_store)
    assert set(threats) == {lookout_guid(2, 1), lookout_guid(2, 2)} and cursor == lookout_fake.events[1]["id"]
    assert len(lookout_fake.requests_to("/mra/stream/v2/events")) == 1


def test_a_full_sync_brings_lookouts_devices_and_intunes_view_of_them_and_the_connectors_health(
    mesbot: Mesbot, lookout_fake: FakeLookout, fake_graph: FakeGraph
) -> None:
    lookout_fake.devices = [lookout_device(n) for n in range(1, 4)]
    fake_graph.devices = [
        {"id": "intune-1", "complianceState": "compliant", "partnerReportedThreatState": "secured"},
        {"id": "intune-2", "complianceState": "noncompliant", "partnerReportedThreatState": "highSeverity"},
    ]
    result = mesbot("sync", "--full")
    assert result.exit_code == 0, result.output
    threats_line, graph_line = result.output.strip().splitlines()
    assert "3 added" in threats_line
    assert graph_line.startswith("Microsoft Graph: ")
    assert "2 matched to a Lookout device" in graph_line, graph_line
    devices, _, _ = rows(mesbot.store())
    intune = {d.external_id: (d.intune_compliance, d.intune_threat_state) for d in devices.values()}
    assert intune == {
        "intune-1": ("compliant", "secured"),
        "intune-2": ("noncompliant", "highSeverity"),
        "intune-3": (None, None),
    }
    with mesbot.store().read() as session:
        assert session.exec(select(Connector.state)).one() == "enabled"


def test_a_graph_failure_after_lookouts_listing_names_the_setting_and_exits_1(
    mesbot: Mesbot, lookout_fake: FakeLookout
) -> None:
    lookout_fake.devices = [lookout_device(n) for n in range(1, 4)]
    result = mesbot("sync", "--full", GRAPH_CLIENT_SECRET="not-the-secret")
    assert result.exit_code == 1
    assert "3 added" in result.output and "GRAPH_CLIENT_SECRET" in result.output
    assert "not-the-secret" not in result.output and "Traceback" not in result.output
    assert len(rows(mesbot.store())[0]) == 3  # what Lookout listed is kept
