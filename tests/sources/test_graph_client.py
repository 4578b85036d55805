"""The Graph client against the fake Graph + Entra server over real HTTPS: tokens (secret and
certificate), paging, nested groups, global administrators, Intune's devices and the MTD connector,
and the failure policy (Retry-After, 5xx backoff, 401 renewal, wrong credentials, missing permissions)."""

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from integration.config import Settings
from integration.sources.graph import GraphClient
from integration.sources.graph_errors import (
    GraphCredentialsError,
    GraphError,
    GraphPermissionError,
    GraphUnavailable,
)
from integration.sources.graph_token import Credentials
from tests.sources.fake_graph import Failure, FakeGraph
from tests.sources.graph_fixtures import (  # noqa: F401 (fixtures)
    RecordedSleep,
    Tls,
    app_certificate,
    client,
    fake_graph_fixture,
    tls_fixture,
)

MOBILE, NESTED = "g-mobile", "g-nested"


def with_people(fake: FakeGraph, count: int = 3) -> list[str]:
    ids = [f"u{n:04d}" for n in range(count)]
    for user_id in ids:
        fake.add_user(user_id, f"{user_id.upper()}@Contoso.example")
    return ids


async def test_a_client_secret_buys_one_token_that_later_calls_reuse(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.add_group(MOBILE, "Mobile Users", *with_people(fake_graph))
    async with client(fake_graph, tls) as graph:
        first = await graph.directory(["Mobile Users"], [])
        await graph.directory(["Mobile Users"], [])
    assert len(fake_graph.tokens_issued) == 1
    (form,) = fake_graph.token_forms
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "https://graph.microsoft.com/.default"
    assert form["client_secret"] == fake_graph.secret
    assert first.groups == [(MOBILE, "Mobile Users")]
    assert sorted(u.email for u in first.users) == [
        "u0000@contoso.example",
        "u0001@contoso.example",
        "u0002@contoso.example",
    ]
    assert all(r.authorization == f"Bearer {fake_graph.tokens_issued[0]}" for r in fake_graph.graph_calls())


async def test_a_certificate_signs_the_token_request_and_no_secret_is_sent(
    fake_graph: FakeGraph, tls: Tls, tmp_path: Path
) -> None:
    path, certificate = app_certificate(tmp_path)
    fake_graph.secret, fake_graph.certificate = None, certificate
    fake_graph.connector = {"partnerState": "enabled"}
    async with client(fake_graph, tls, secret=None, certificate=str(path)) as graph:
        health = await graph.connector_health()
    assert health.partner_state == "enabled"
    (form,) = fake_graph.token_forms
    assert "client_secret" not in form
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


async def test_a_certificate_entra_does_not_know_names_the_setting(
    fake_graph: FakeGraph, tls: Tls, tmp_path: Path
) -> None:
    _registered_path, registered = app_certificate(tmp_path, "registered")
    other, _ = app_certificate(tmp_path, "another")
    fake_graph.secret, fake_graph.certificate = None, registered
    async with client(fake_graph, tls, secret=None, certificate=str(other)) as graph:
        with pytest.raises(GraphCredentialsError) as refused:
            await graph.connector_health()
    assert "GRAPH_CLIENT_CERTIFICATE" in str(refused.value)
    assert "AADSTS700027" in str(refused.value)
    assert fake_graph.graph_calls() == []


async def test_a_certificate_file_without_a_key_is_refused_before_any_request(
    fake_graph: FakeGraph, tls: Tls, tmp_path: Path
) -> None:
    path, certificate = app_certificate(tmp_path)
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    async with client(fake_graph, tls, secret=None, certificate=str(path)) as graph:
        with pytest.raises(GraphCredentialsError, match=r"GRAPH_CLIENT_CERTIFICATE .* private key"):
            await graph.connector_health()
    assert fake_graph.token_forms == []


async def test_a_wrong_secret_is_one_clear_error_without_the_secret(fake_graph: FakeGraph, tls: Tls) -> None:
    wrong = "s3cr3t-that-is-wrong"
    async with client(fake_graph, tls, secret=SecretStr(wrong)) as graph:
        with pytest.raises(GraphCredentialsError) as refused:
            await graph.directory(["Mobile Users"], [])
    message = str(refused.value)
    assert "GRAPH_CLIENT_SECRET" in message and "AADSTS7000215" in message
    assert wrong not in message and "Trace ID" not in message
    assert len(fake_graph.token_forms) == 1  # not retried: it would fail the same way


async def test_missing_settings_are_named() -> None:
    with pytest.raises(GraphCredentialsError) as missing:
        GraphClient.from_settings(Settings(GRAPH_TENANT_ID="t"))  # type: ignore[call-arg]
    assert "GRAPH_CLIENT_ID" in str(missing.value)
    assert "GRAPH_CLIENT_SECRET (or GRAPH_CLIENT_CERTIFICATE)" in str(missing.value)
    assert "GRAPH_TENANT_ID" not in str(missing.value)


async def test_transitive_members_are_read_over_every_page(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.page_size = 100
    fake_graph.add_group(MOBILE, "Mobile Users", *with_people(fake_graph, 250))
    async with client(fake_graph, tls) as graph:
        report = await graph.directory(["Mobile Users"], [])
    assert len(report.users) == 250 and len(report.memberships) == 250
    pages = fake_graph.graph_calls("/transitiveMembers")
    assert [r.query.get("$skiptoken") for r in pages] == [None, "100", "200"]
    assert all(r.query["$select"] == "id,mail,userPrincipalName,displayName" for r in pages)


async def test_nested_groups_count_their_users_and_other_objects_are_skipped(
    fake_graph: FakeGraph, tls: Tls
) -> None:
    a, b, c = with_people(fake_graph)
    fake_graph.add_user("u-upn", None, upn="Only.UPN@Contoso.example")
    fake_graph.add_user("u-none", None, upn=None)
    fake_graph.add_group(NESTED, "Field Sales", b, c, "u-upn", "u-none", "device-1")
    fake_graph.add_group(MOBILE, "Mobile Users", a, NESTED)
    async with client(fake_graph, tls) as graph:
        report = await graph.directory(["Mobile Users"], [])
    assert report.groups == [(MOBILE, "Mobile Users")]
    members = {u for g, u in report.memberships if g == MOBILE}
    assert members == {a, b, c, "u-upn"}
    assert {u.email for u in report.users if u.id == "u-upn"} == {"only.upn@contoso.example"}
    assert report.unaddressed == 1


async def test_every_group_matching_the_name_is_returned_with_its_real_name(
    fake_graph: FakeGraph, tls: Tls
) -> None:
    fake_graph.add_group("g-lower", "mobile users", *with_people(fake_graph, 1))
    fake_graph.add_group("g-quote", "O'Brien's phones")
    async with client(fake_graph, tls) as graph:
        report = await graph.directory(["Mobile Users", "O'Brien's phones"], [])
    assert sorted(report.groups) == [("g-lower", "mobile users"), ("g-quote", "O'Brien's phones")]
    filters = [r.query["$filter"] for r in fake_graph.graph_calls("/groups") if "$filter" in r.query]
    assert "displayName eq 'O''Brien''s phones'" in filters


async def test_role_groups_and_global_administrators(fake_graph: FakeGraph, tls: Tls) -> None:
    a, b, _ = with_people(fake_graph)
    fake_graph.add_user("u-admin", "Boss@Contoso.example", "The Boss")
    fake_graph.add_group("g-full", "Lookout Admins", a)
    fake_graph.admins = ["u-admin", a]
    async with client(fake_graph, tls) as graph:
        report = await graph.directory([], ["g-full", "g-gone"])
    assert report.groups == [("g-full", "Lookout Admins")]  # a configured id Graph lacks is left out
    admins = {u.id for u in report.users if u.is_global_admin}
    assert admins == {"u-admin", a}
    assert ("g-full", a) in report.memberships and b not in {u.id for u in report.users}


async def test_managed_devices_and_the_connector_record(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.page_size = 2
    fake_graph.devices = [
        {"id": f"md-{n}", "complianceState": "compliant", "partnerReportedThreatState": "secured"}
        for n in range(5)
    ]
    fake_graph.connector = {
        "partnerState": "unresponsive",
        "lastHeartbeatDateTime": "2026-11-20T08:30:15.1234567Z",
        "partnerUnresponsivenessThresholdInDays": 7,
    }
    async with client(fake_graph, tls) as graph:
        pages = [page async for page in graph.managed_devices()]
        health = await graph.connector_health()
    assert [len(p) for p in pages] == [2, 2, 1]
    assert pages[0][0].external_id == "md-0" and pages[0][0].threat_state == "secured"
    call = fake_graph.graph_calls("/managedDevices")[0]
    assert call.query["$select"] == "id,complianceState,partnerReportedThreatState"
    assert health.partner_state == "unresponsive"
    assert health.last_heartbeat == datetime(2026, 11, 20, 8, 30, 15, 123456, tzinfo=UTC)
    assert health.unresponsive_after_days == 7


async def test_no_connector_record_means_not_set_up(fake_graph: FakeGraph, tls: Tls) -> None:
    async with client(fake_graph, tls) as graph:
        health = await graph.connector_health()
    assert health.partner_state == "notSetUp" and health.last_heartbeat is None


async def test_429_waits_exactly_retry_after(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.fail(
        "/managedDevices", Failure(429, retry_after="7", error={"code": "TooManyRequests", "message": "slow"})
    )
    sleep = RecordedSleep()
    async with client(fake_graph, tls, sleep=sleep) as graph:
        pages = [page async for page in graph.managed_devices()]
    assert sleep.waits == [7.0]
    assert pages == [[]]
    assert len(fake_graph.graph_calls("/managedDevices")) == 2


async def test_503_then_success_backs_off_with_jitter(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.connector = {"partnerState": "enabled"}
    fake_graph.fail("/mobileThreatDefenseConnectors", Failure(503, times=2))
    sleep = RecordedSleep()
    async with client(fake_graph, tls, sleep=sleep) as graph:
        health = await graph.connector_health()
    assert health.partner_state == "enabled"
    assert len(sleep.waits) == 2
    assert 0.5 <= sleep.waits[0] <= 1.0 and 1.0 <= sleep.waits[1] <= 2.0


async def test_a_lasting_outage_gives_up_after_the_bounded_attempts(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.fail("/mobileThreatDefenseConnectors", Failure(502, times=99))
    sleep = RecordedSleep()
    async with client(fake_graph, tls, sleep=sleep) as graph:
        with pytest.raises(GraphUnavailable, match="502"):
            await graph.connector_health()
    assert len(fake_graph.graph_calls("/mobileThreatDefenseConnectors")) == 5
    assert len(sleep.waits) == 4


async def test_a_very_long_retry_after_gives_up_instead_of_waiting(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.fail("/managedDevices", Failure(429, retry_after="3600"))
    sleep = RecordedSleep()
    async with client(fake_graph, tls, sleep=sleep) as graph:
        with pytest.raises(GraphUnavailable, match="wait 3600 s"):
            _ = [page async for page in graph.managed_devices()]
    assert sleep.waits == []


async def test_a_refused_token_is_renewed_once(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.connector = {"partnerState": "enabled"}
    async with client(fake_graph, tls) as graph:
        await graph.connector_health()
        fake_graph.revoked.add(fake_graph.tokens_issued[0])  # e.g. revoked by an admin
        await graph.connector_health()
    assert len(fake_graph.tokens_issued) == 2  # msal's cached copy was not handed out again
    calls = fake_graph.graph_calls()
    assert [c.authorization for c in calls[1:]] == [
        f"Bearer {fake_graph.tokens_issued[0]}",
        f"Bearer {fake_graph.tokens_issued[1]}",
    ]


async def test_a_401_after_renewal_is_a_credentials_error(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.fail("/deviceManagement", Failure(401, times=2))
    async with client(fake_graph, tls) as graph:
        with pytest.raises(GraphCredentialsError, match="refused the token"):
            await graph.connector_health()
    assert len(fake_graph.tokens_issued) == 2


@pytest.mark.parametrize(
    ("fragment", "call", "permission"),
    [
        ("/managedDevices", "devices", "DeviceManagementManagedDevices.Read.All"),
        ("/mobileThreatDefenseConnectors", "connector", "DeviceManagementServiceConfig.Read.All"),
        ("/groups", "directory", "GroupMember.Read.All"),
        ("/directoryRoles", "directory", "RoleManagement.Read.Directory"),
    ],
)
async def test_a_403_names_the_permission_the_call_needs(
    fake_graph: FakeGraph, tls: Tls, fragment: str, call: str, permission: str
) -> None:
    fake_graph.denied.add(fragment)
    async with client(fake_graph, tls) as graph:
        with pytest.raises(GraphPermissionError) as refused:
            if call == "devices":
                _ = [page async for page in graph.managed_devices()]
            elif call == "connector":
                await graph.connector_health()
            else:
                await graph.directory(["Mobile Users"], [])
    assert permission in str(refused.value)
    assert "Authorization_RequestDenied" in str(refused.value)
    assert "admin consent" in str(refused.value)


async def test_a_next_link_off_graphs_host_is_not_followed(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.page_size = 1
    fake_graph.devices = [{"id": "a"}, {"id": "b"}]
    original = fake_graph._page

    def hostile(path, query, items):  # type: ignore[no-untyped-def]
        status, headers, body = original(path, query, items)
        if "@odata.nextLink" in body:
            body["@odata.nextLink"] = body["@odata.nextLink"].replace(fake_graph.base, "https://evil.example")
        return status, headers, body

    fake_graph._page = hostile  # type: ignore[method-assign]
    async with client(fake_graph, tls) as graph:
        with pytest.raises(GraphError, match="leads off"):
            _ = [page async for page in graph.managed_devices()]


def test_with_both_a_secret_and_a_certificate_the_certificate_is_used() -> None:
    settings = Settings(  # type: ignore[call-arg]
        GRAPH_TENANT_ID="t", GRAPH_CLIENT_ID="c", GRAPH_CLIENT_SECRET="old", GRAPH_CLIENT_CERTIFICATE="/x.pem"
    )
    credentials = Credentials.from_settings(settings)
    assert credentials.uses_certificate and credentials.secret is None


async def test_the_token_is_kept_only_until_it_expires(fake_graph: FakeGraph, tls: Tls) -> None:
    fake_graph.expires_in = 1  # kept half its life when shorter than the renewal margin: 0.5 s
    fake_graph.connector = {"partnerState": "enabled"}
    async with client(fake_graph, tls) as graph:
        await graph.connector_health()
        await graph.connector_health()
        assert len(fake_graph.tokens_issued) == 1
        await asyncio.sleep(0.6)
        await graph.connector_health()
    assert len(fake_graph.tokens_issued) == 2
