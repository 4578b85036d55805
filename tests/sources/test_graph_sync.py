"""`directory_sync.refresh` and the enrollment-scan job in Lookout mode, against the fake Graph over
HTTPS, on a real store (SQLite, and PostgreSQL when configured): the directory tables mirror Graph
(leavers removed, what other tables reference kept, devices untouched, tallies exact), the exact-case
rule, Intune's view by external id, the MTD connector's health as connector errors, and failures
becoming connector errors and failed job outcomes."""

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from integration import sync, tenant
from integration.clock import FixedClock
from integration.sources import directory_sync
from integration.sources.directory_sync import Refreshed
from notifications import jobs
from notifications.jobs import Deps
from storage.engine import Store
from storage.models import (
    Connector,
    ConnectorError,
    Device,
    DirectoryGroup,
    DirectoryUser,
    EnrollmentGroup,
    GroupMembership,
    NotificationPreference,
)
from storage.states import ActivationStatus, Platform
from tests.conftest import NOW
from tests.integration.test_tally import check as check_tallies
from tests.notifications.test_jobs import make_deps
from tests.sources.fake_graph import Failure, FakeGraph
from tests.sources.graph_fixtures import (  # noqa: F401 (fixtures)
    Tls,
    client,
    fake_graph_fixture,
    graph_env,
    tls_fixture,
)

MOBILE, FIELD, FULL, RESTRICTED = "g-mobile", "g-field", "g-full", "g-restricted"
ERROR_EMAIL = "mobile-ops@contoso.example"


def lookout_tenant(store: Store, *groups: str, consent: bool = True) -> None:
    with store.write() as session:
        subscription = tenant.subscription(session)
        subscription.tenant_id = "11111111-2222-3333-4444-555555555555"
        subscription.full_access_group_id = FULL
        subscription.restricted_access_group_id = RESTRICTED
        subscription.consent_granted = consent
        session.add(subscription)
        connector = tenant.connector(session)
        connector.error_email = ERROR_EMAIL
        session.add(connector)
        for name in groups:
            session.add(EnrollmentGroup(name=name, added_at=NOW))


def contoso(fake: FakeGraph) -> None:
    """Alice directly and Bob through a nested group in Mobile Users; Ann has full access, Carl
    restricted; Gil is only a global administrator (Ann is one too)."""
    for user_id, email in (
        ("u-alice", "Alice@Contoso.example"),
        ("u-bob", "bob@contoso.example"),
        ("u-ann", "ann@contoso.example"),
        ("u-carl", "carl@contoso.example"),
        ("u-gil", "gil@contoso.example"),
    ):
        fake.add_user(user_id, email)
    fake.add_group(FIELD, "Field Sales", "u-bob")
    fake.add_group(MOBILE, "Mobile Users", "u-alice", FIELD)
    fake.add_group(FULL, "Lookout Admins", "u-ann")
    fake.add_group(RESTRICTED, "Lookout Readers", "u-carl")
    fake.admins = ["u-ann", "u-gil"]
    fake.connector = {
        "partnerState": "enabled",
        "lastHeartbeatDateTime": (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "partnerUnresponsivenessThresholdInDays": 7,
    }


def refresh(store: Store, fake: FakeGraph, tls: Tls, now: datetime = NOW, **credentials: object) -> Refreshed:
    async def run() -> Refreshed:
        async with client(fake, tls, **credentials) as graph:
            return await directory_sync.refresh(store, graph, now)

    return asyncio.run(run())


def directory(store: Store) -> tuple[dict[str, tuple[str, bool]], set[tuple[str, str]], dict[str, str]]:
    with store.read() as session:
        users = {u.id: (u.email, u.is_global_admin) for u in session.exec(select(DirectoryUser)).all()}
        members = {(m.group_id, m.user_id) for m in session.exec(select(GroupMembership)).all()}
        groups = {g.id: g.name for g in session.exec(select(DirectoryGroup)).all()}
    return users, members, groups


def open_errors(store: Store) -> dict[str, str]:
    with store.read() as session:
        rows = session.exec(select(ConnectorError).where(col(ConnectorError.resolved_at).is_(None))).all()
        return {e.fingerprint: e.message for e in rows}


def owned_device(store: Store, device_id: str, owner: str, external_id: str | None = None) -> None:
    report = sync.DeviceReport(
        id=device_id,
        owner_email=owner,
        platform=Platform.IOS,
        activation_status=ActivationStatus.PENDING,
        enrolled_at=NOW - timedelta(days=3),
        external_id=external_id,
    )
    with store.write() as session:
        sync.apply(session, [report], now=NOW)


def test_the_directory_tables_mirror_graph_and_leavers_go(
    store: Store, fake_graph: FakeGraph, tls: Tls
) -> None:
    lookout_tenant(store, "Mobile Users")
    contoso(fake_graph)
    owned_device(store, "dev-bob", "bob@contoso.example")
    result = refresh(store, fake_graph, tls)
    assert result.ok, result.summary()
    users, members, groups = directory(store)
    assert users == {
        "u-alice": ("alice@contoso.example", False),
        "u-bob": ("bob@contoso.example", False),
        "u-ann": ("ann@contoso.example", True),
        "u-carl": ("carl@contoso.example", False),
        "u-gil": ("gil@contoso.example", True),
    }
    assert groups == {MOBILE: "Mobile Users", FULL: "Lookout Admins", RESTRICTED: "Lookout Readers"}
    assert members == {(MOBILE, "u-alice"), (MOBILE, "u-bob"), (FULL, "u-ann"), (RESTRICTED, "u-carl")}
    check_tallies(store, "the first refresh")

    with store.write() as session:  # Carl's opt-in references his row
        session.add(
            NotificationPreference(user_id="u-carl", category="digest", channel="email", enabled=True)
        )
    fake_graph.members[FIELD] = []  # Bob leaves
    fake_graph.members[RESTRICTED] = []  # so does Carl
    fake_graph.users["u-alice"]["mail"] = "alice.new@contoso.example"
    fake_graph.admins = ["u-ann"]
    assert refresh(store, fake_graph, tls, NOW + timedelta(hours=1)).ok

    users, members, _ = directory(store)
    assert "u-bob" not in users
    assert users["u-carl"] == ("carl@contoso.example", False)  # kept for his settings, without access
    assert users["u-alice"] == ("alice.new@contoso.example", False)
    assert "u-gil" not in users  # no longer an administrator, in no group, referenced by nothing
    assert members == {(MOBILE, "u-alice"), (FULL, "u-ann")}
    with store.read() as session:
        device = session.get(Device, "dev-bob")
        assert device is not None and device.owner_email == "bob@contoso.example"
    check_tallies(store, "Bob and Carl left")


def test_an_unchanged_directory_writes_nothing(sqlite_store: Store, fake_graph: FakeGraph, tls: Tls) -> None:
    lookout_tenant(sqlite_store, "Mobile Users")
    contoso(fake_graph)
    first = refresh(sqlite_store, fake_graph, tls)
    second = refresh(sqlite_store, fake_graph, tls)
    assert first.directory is not None and "(+5 −0)" in first.directory
    assert second.directory is not None and "(+0 −0)" in second.directory


def test_two_users_swapping_addresses_do_not_collide(store: Store, fake_graph: FakeGraph, tls: Tls) -> None:
    lookout_tenant(store, "Mobile Users")
    contoso(fake_graph)
    refresh(store, fake_graph, tls)
    fake_graph.users["u-alice"]["mail"], fake_graph.users["u-bob"]["mail"] = (
        "bob@contoso.example",
        "alice@contoso.example",
    )
    assert refresh(store, fake_graph, tls).ok
    users, _, _ = directory(store)
    assert users["u-alice"][0] == "bob@contoso.example" and users["u-bob"][0] == "alice@contoso.example"
    check_tallies(store, "a swap")


def graph_deps(
    store: Store, fake: FakeGraph, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str
) -> Deps:
    """The job's dependencies as `serve` builds them, from settings that point at the fake (its CA
    trusted through SSL_CERT_FILE, as an admin would for a proxy with a private CA)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file(tmp_path)))
    return make_deps(store, FixedClock(NOW), **{**graph_env(fake), **env})


@pytest.fixture
def deps(
    store: Store, fake_graph: FakeGraph, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deps]:
    lookout_tenant(store, "Mobile Users")
    contoso(fake_graph)
    yield graph_deps(store, fake_graph, tls, tmp_path, monkeypatch)


def test_the_enrollment_scan_makes_members_from_graph_pending_devices(deps: Deps, store: Store) -> None:
    outcome = asyncio.run(jobs.run(deps, "enrollment-scan"))
    assert outcome.ok, outcome.detail
    assert "1 group(s) scanned, 2 member(s) added as pending devices" in outcome.detail
    with store.read() as session:
        owners = {d.owner_email: d.activation_status for d in session.exec(select(Device)).all()}
    assert owners == {
        "alice@contoso.example": ActivationStatus.PENDING,
        "bob@contoso.example": ActivationStatus.PENDING,
    }


def test_a_group_differing_only_in_case_is_a_connector_error_naming_it(
    deps: Deps, store: Store, fake_graph: FakeGraph
) -> None:
    fake_graph.groups[MOBILE] = "mobile users"
    outcome = asyncio.run(jobs.run(deps, "enrollment-scan"))
    message = open_errors(store)["enrollment-group:Mobile Users"]
    assert 'did you mean "mobile users"' in message
    assert "no enrollment group to scan" in outcome.detail
    with store.read() as session:
        assert session.exec(select(Device)).all() == []  # no one is enrolled through a near miss


def test_a_wrong_secret_is_a_connector_error_and_a_failed_run_until_fixed(
    store: Store, fake_graph: FakeGraph, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookout_tenant(store, "Mobile Users")
    contoso(fake_graph)
    wrong = graph_deps(store, fake_graph, tls, tmp_path, monkeypatch, GRAPH_CLIENT_SECRET="not-it-at-all")
    outcome = asyncio.run(jobs.run(wrong, "enrollment-scan"))
    assert not outcome.ok
    assert "GRAPH_CLIENT_SECRET" in outcome.detail and "not-it-at-all" not in outcome.detail
    errors = open_errors(store)
    assert set(errors) >= {"graph:credentials"} and "AADSTS7000215" in errors["graph:credentials"]
    assert not any(key.startswith("graph:") and key != "graph:credentials" for key in errors)

    right = graph_deps(store, fake_graph, tls, tmp_path, monkeypatch)
    assert asyncio.run(jobs.run(right, "enrollment-scan")).ok
    assert "graph:credentials" not in open_errors(store)


def test_missing_graph_settings_are_named_not_a_crash(
    store: Store, fake_graph: FakeGraph, tls: Tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookout_tenant(store, "Mobile Users")
    deps = graph_deps(store, fake_graph, tls, tmp_path, monkeypatch, GRAPH_CLIENT_ID="")
    outcome = asyncio.run(jobs.run(deps, "enrollment-scan"))
    assert not outcome.ok and "set GRAPH_CLIENT_ID" in outcome.detail
    assert "GRAPH_CLIENT_ID" in open_errors(store)["graph:credentials"]


def test_a_missing_permission_fails_only_its_stage(deps: Deps, store: Store, fake_graph: FakeGraph) -> None:
    fake_graph.denied.add("/managedDevices")
    outcome = asyncio.run(jobs.run(deps, "enrollment-scan"))
    assert not outcome.ok
    assert "2 member(s) added as pending devices" in outcome.detail  # the directory was refreshed
    message = open_errors(store)["graph:managed-devices"]
    assert "DeviceManagementManagedDevices.Read.All" in message
    fake_graph.denied.clear()
    assert asyncio.run(jobs.run(deps, "enrollment-scan")).ok
    assert "graph:managed-devices" not in open_errors(store)


def test_a_role_group_id_graph_lacks_is_a_connector_error(
    deps: Deps, store: Store, fake_graph: FakeGraph
) -> None:
    del fake_graph.groups[RESTRICTED]
    asyncio.run(jobs.run(deps, "enrollment-scan"))
    assert "subscription set restricted-group" in open_errors(store)["directory:restricted-access-group"]


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"partnerState": "enabled"}, set()),
        ({"partnerState": "unresponsive"}, {"intune-connector:unresponsive"}),
        ({"partnerState": "error"}, {"intune-connector:error"}),
        (None, {"intune-connector:notSetUp"}),
        (
            {
                "partnerState": "enabled",
                "lastHeartbeatDateTime": "2026-11-10T00:00:00Z",
                "partnerUnresponsivenessThresholdInDays": 7,
            },
            {"intune-connector:heartbeat"},
        ),
    ],
)
def test_the_mtd_connector_record_becomes_connector_health(
    sqlite_store: Store, fake_graph: FakeGraph, tls: Tls, record: dict[str, object] | None, expected: set[str]
) -> None:
    lookout_tenant(sqlite_store)
    contoso(fake_graph)
    fake_graph.connector = record
    refresh(sqlite_store, fake_graph, tls)
    found = {f for f in open_errors(sqlite_store) if f.startswith("intune-connector:")}
    assert found == expected
    with sqlite_store.read() as session:
        assert session.exec(select(Connector.state)).one() == (record or {}).get("partnerState", "notSetUp")
    contoso(fake_graph)  # healthy again
    refresh(sqlite_store, fake_graph, tls, NOW + timedelta(hours=1))
    assert not any(f.startswith("intune-connector:") for f in open_errors(sqlite_store))


def test_intunes_view_is_written_by_external_id(store: Store, fake_graph: FakeGraph, tls: Tls) -> None:
    lookout_tenant(store)
    owned_device(store, "dev-1", "alice@contoso.example", external_id="md-1")
    owned_device(store, "dev-2", "alice@contoso.example")
    fake_graph.devices = [
        {"id": "md-1", "complianceState": "noncompliant", "partnerReportedThreatState": "highSeverity"},
        {"id": "md-unknown", "complianceState": "compliant", "partnerReportedThreatState": "secured"},
    ]
    result = refresh(store, fake_graph, tls)
    assert result.devices == "2 managed device(s), 1 matched to a Lookout device"
    with store.read() as session:
        one, two = session.get(Device, "dev-1"), session.get(Device, "dev-2")
        assert one is not None and two is not None
        assert (one.intune_compliance, one.intune_threat_state, one.intune_seen_at) == (
            "noncompliant",
            "highSeverity",
            NOW,
        )
        assert two.intune_compliance is None and two.intune_seen_at is None


def test_a_429_on_the_way_is_waited_out(sqlite_store: Store, fake_graph: FakeGraph, tls: Tls) -> None:
    from tests.sources.graph_fixtures import RecordedSleep

    lookout_tenant(sqlite_store, "Mobile Users")
    contoso(fake_graph)
    fake_graph.fail("/transitiveMembers", Failure(429, retry_after="2"))
    sleep = RecordedSleep()
    assert refresh(sqlite_store, fake_graph, tls, sleep=sleep).ok
    assert sleep.waits == [2.0]


def test_jobs_run_enrollment_scan_on_the_command_line(
    sqlite_store: Store, fake_graph: FakeGraph, tls: Tls, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from bot.cli import main

    lookout_tenant(sqlite_store, "Mobile Users")
    contoso(fake_graph)
    env = {
        **graph_env(fake_graph),
        "MESBOT_DATABASE_URL": sqlite_store.url,
        "SSL_CERT_FILE": str(tls.ca_file(tmp_path)),
    }
    wrong = CliRunner().invoke(
        main, ["jobs", "run", "enrollment-scan"], env={**env, "GRAPH_CLIENT_SECRET": "nope-x"}
    )
    assert wrong.exit_code == 1
    assert wrong.output.startswith("enrollment-scan: failed: ") and "GRAPH_CLIENT_SECRET" in wrong.output
    assert "Traceback" not in wrong.output and "nope-x" not in wrong.output
    right = CliRunner().invoke(main, ["jobs", "run", "enrollment-scan"], env=env)
    assert right.exit_code == 0, right.output
    assert "2 member(s) added as pending devices" in right.output


def test_a_failed_directory_stage_leaves_the_other_stages_running(
    sqlite_store: Store, fake_graph: FakeGraph, tls: Tls
) -> None:
    lookout_tenant(sqlite_store, "Mobile Users")
    contoso(fake_graph)
    fake_graph.connector = {"partnerState": "unresponsive"}
    fake_graph.denied.add("/groups")
    result = refresh(sqlite_store, fake_graph, tls)
    assert not result.ok and result.directory is None
    assert result.connector is not None and result.devices is not None
    errors = open_errors(sqlite_store)
    assert "GroupMember.Read.All" in errors["graph:directory"]
    assert "intune-connector:unresponsive" in errors


def test_a_large_change_keeps_the_tallies_exact(store: Store, fake_graph: FakeGraph, tls: Tls) -> None:
    """Past `BULK_CHANGES` memberships the tallies are recounted instead of counted by the triggers
    (SQLite); either way `enrollment` must count exactly what is there."""
    from tests.integration.test_sync import opened

    lookout_tenant(store, "Mobile Users")
    ids = [f"u{n:04d}" for n in range(260)]
    for user_id in ids:
        fake_graph.add_user(user_id, f"{user_id}@contoso.example")
    fake_graph.add_group(MOBILE, "Mobile Users", *ids[:150])
    fake_graph.add_group(FULL, "Lookout Admins", *ids[100:180])
    for n in range(0, 200, 2):
        owned_device(store, f"dev-{n}", f"{ids[n]}@contoso.example")
    with store.write() as session:
        active = [
            sync.DeviceReport(
                id=f"act-{n}",
                owner_email=f"{ids[n]}@contoso.example",
                platform=Platform.ANDROID,
                activation_status=ActivationStatus.ACTIVATED,
                checkin_time=NOW,
                enrolled_at=NOW - timedelta(days=5),
            )
            for n in range(1, 200, 3)
        ]
        sync.apply(session, [*active, *(opened(f"act-{n}") for n in range(1, 200, 9))], now=NOW)
    assert refresh(store, fake_graph, tls).ok
    check_tallies(store, "a first refresh of 230 memberships")
    fake_graph.members[MOBILE] = ids[110:260]  # 110 leave, 110 join
    for user_id in ids[150:155]:  # in the full-access group too, whose memberships do not change
        fake_graph.users[user_id]["mail"] = f"new.{user_id}@contoso.example"
    assert refresh(store, fake_graph, tls).ok
    check_tallies(store, "220 membership changes")
    fake_graph.members[FULL] = ids[101:180]  # a small change: the triggers count it
    assert refresh(store, fake_graph, tls).ok
    check_tallies(store, "one membership fewer")
