"""What the directory and Intune's view from Graph change for console users, through `Console.run` as
`mesbot ask` and Slack run it: console roles from the role groups, consent by a global administrator
known only from Graph, and `status` showing Intune's view beside Lookout's with the sync-lag flag."""

from datetime import timedelta

from bot.console import Console
from integration import sync
from integration.clock import FixedClock
from storage.engine import Store
from storage.states import ActivationStatus, Platform, ProtectionStatus
from tests.conftest import NOW
from tests.integration.test_sync import opened
from tests.sources.fake_graph import FakeGraph
from tests.sources.graph_fixtures import Tls, fake_graph_fixture, tls_fixture  # noqa: F401 (fixtures)
from tests.sources.test_graph_sync import contoso, lookout_tenant, refresh

ALICE, ANN, CARL, GIL = (f"{name}@contoso.example" for name in ("alice", "ann", "carl", "gil"))


def test_console_roles_come_from_the_role_groups_in_graph(
    store: Store, fake_graph: FakeGraph, tls: Tls
) -> None:
    lookout_tenant(store, "Mobile Users")
    contoso(fake_graph)
    console = Console(store, FixedClock(NOW))
    assert "not a user in the directory" in console.run(ANN, "connector").text
    refresh(store, fake_graph, tls)
    assert console.run(ANN, "connector").ok
    assert console.run(ANN, "connector set heartbeat 30").ok
    assert console.run(CARL, "connector").ok
    refused = console.run(CARL, "connector set heartbeat 45")
    assert not refused.ok and "restricted" in refused.text
    assert "Lookout Admins" in refused.text  # how to get full access, by the group's name from Graph
    assert not console.run(ALICE, "connector").ok
    assert console.run(ALICE, "status me").ok

    fake_graph.members["g-full"] = []  # Ann is taken out of the full-access group
    refresh(store, fake_graph, tls, NOW + timedelta(hours=1))
    assert not console.run(ANN, "connector set heartbeat 60").ok


def test_a_global_administrator_known_from_graph_can_grant_consent(
    sqlite_store: Store, fake_graph: FakeGraph, tls: Tls
) -> None:
    lookout_tenant(sqlite_store, "Mobile Users", consent=False)
    contoso(fake_graph)
    refresh(sqlite_store, fake_graph, tls)
    console = Console(sqlite_store, FixedClock(NOW))
    assert not console.run(ALICE, "subscription consent").ok
    granted = console.run(GIL, "subscription consent")
    assert granted.ok, granted.text
    assert console.run(ANN, "connector").ok


def device(store: Store, device_id: str, external_id: str, *, threat: bool = False) -> None:
    report = sync.DeviceReport(
        id=device_id,
        owner_email=ALICE,
        name=f"Phone {device_id}",
        platform=Platform.IOS,
        activation_status=ActivationStatus.ACTIVATED,
        protection_status=ProtectionStatus.PROTECTED,
        checkin_time=NOW - timedelta(hours=1),
        activated_at=NOW - timedelta(days=10),
        enrolled_at=NOW - timedelta(days=11),
        external_id=external_id,
    )
    with store.write() as session:
        sync.apply(session, [report, *([opened(device_id)] if threat else [])], now=NOW)


def test_status_shows_intunes_view_and_flags_sync_lag(store: Store, fake_graph: FakeGraph, tls: Tls) -> None:
    lookout_tenant(store, "Mobile Users")
    contoso(fake_graph)
    device(store, "dev-threat", "md-1", threat=True)  # an open TROJAN: noncompliant at the default policy
    device(store, "dev-fixed", "md-2")
    device(store, "dev-agree", "md-3")
    device(store, "dev-other", "md-4")
    device(store, "dev-hostile", "md-5")
    fake_graph.devices = [
        {"id": "md-1", "complianceState": "compliant", "partnerReportedThreatState": "secured"},
        {"id": "md-2", "complianceState": "noncompliant", "partnerReportedThreatState": "highSeverity"},
        {"id": "md-3", "complianceState": "compliant", "partnerReportedThreatState": "secured"},
        {"id": "md-4", "complianceState": "noncompliant", "partnerReportedThreatState": "secured"},
        {
            "id": "md-5",
            "complianceState": "compliant",
            "partnerReportedThreatState": "<!channel>\x1b[2J\u202e",
        },
    ]
    refresh(store, fake_graph, tls)
    reply = Console(store, FixedClock(NOW + timedelta(minutes=5))).run(ANN, f"status {ALICE}")
    assert reply.ok, reply.text
    shown = {d["id"]: d["intune"] for d in reply.data["devices"]}
    assert shown["dev-threat"] == {
        "compliance": "compliant",
        "threat_state": "secured",
        "seen_at": "2026-11-26T12:00:00Z",
        "sync_lag": True,
        "disagreement": "mesbot (from Lookout) says noncompliant, Intune still says compliant",
        "note": None,
    }
    assert shown["dev-fixed"]["sync_lag"] is True and "highSeverity" in shown["dev-fixed"]["disagreement"]
    assert shown["dev-agree"]["sync_lag"] is False and shown["dev-agree"]["note"] is None
    assert shown["dev-other"]["sync_lag"] is False and "outside Lookout" in shown["dev-other"]["note"]
    assert shown["dev-hostile"]["threat_state"] == "<!channel>\x1b[2J\u202e"  # data keeps the raw value
    assert reply.text.count("Intune has not caught up (sync lag)") == 2
    assert "Intune last reported 2026-11-26T12:00:00Z" in reply.text
    assert "\x1b" not in reply.text and "\u202e" not in reply.text


def test_a_device_intune_has_not_reported_shows_nothing_extra(console: Console) -> None:
    reply = console.run("admin@contoso.example", "status alice@contoso.example")
    assert reply.ok and reply.data["devices"]
    assert all(d["intune"] is None for d in reply.data["devices"])
    assert "Intune" not in reply.text


def test_a_hostile_group_name_from_graph_is_shown_not_obeyed(
    sqlite_store: Store, fake_graph: FakeGraph, tls: Tls
) -> None:
    lookout_tenant(sqlite_store, "Mobile Users")
    contoso(fake_graph)
    fake_graph.groups["g-full"] = "Admins\nYou have full access now\x1b[2J"
    refresh(sqlite_store, fake_graph, tls)
    refused = Console(sqlite_store, FixedClock(NOW)).run(CARL, "connector set heartbeat 45")
    assert not refused.ok
    assert "\n" not in refused.text and "\x1b" not in refused.text
    assert "Admins␊You have full access now␛[2J" in refused.text
