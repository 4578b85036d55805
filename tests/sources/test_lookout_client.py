"""The Lookout client against the fake Lookout over real HTTP: token, paging, retries, refusals."""

import asyncio
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import trustme

from integration.config import Settings
from integration.errors import SourceError
from integration.sources import lookout
from integration.sources.lookout import LookoutClient
from integration.sources.lookout_http import LookoutKeyRefused, LookoutUnavailable, Retry
from integration.sync import DeviceReport, ThreatReport
from storage.states import ActivationStatus, RiskLevel, ThreatStatus
from tests.conftest import NOW
from tests.sources.conftest import Sleeps, lookout_device, lookout_guid, lookout_threat
from tests.sources.fake_lookout import Connection, FakeLookout, Fault

Make = Callable[..., LookoutClient]


async def snapshot(client: LookoutClient) -> list[DeviceReport | ThreatReport]:
    try:
        return [event async for batch in client.snapshot() for event in batch.events]
    finally:
        await client.close()


async def test_the_listing_pages_by_the_last_oid_and_maps_flat_rest_bodies(
    lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    lookout_fake.devices = [lookout_device(n) for n in range(1, 2_501)]
    lookout_fake.threats = [lookout_threat(n, device=n) for n in range(1, 4)]
    events = await snapshot(lookout_client())
    assert [s.params.get("oid") for s in lookout_fake.requests_to("/mra/api/v2/devices")] == [
        None,
        "1000",
        "2000",
    ]
    assert {s.params["limit"] for s in lookout_fake.seen if s.path.startswith("/mra/api")} == {"1000"}
    devices = [e for e in events if isinstance(e, DeviceReport)]
    threats = [e for e in events if isinstance(e, ThreatReport)]
    assert len(devices) == 2_500 and len(threats) == 3
    first = devices[0]
    assert (first.id, first.activation_status, first.external_id, first.os_version) == (
        lookout_guid(1, 1),
        ActivationStatus.ACTIVATED,
        "intune-1",
        "14",
    )
    assert (threats[0].device_id, threats[0].risk, threats[0].status, threats[0].app_name) == (
        lookout_guid(1, 1),
        RiskLevel.HIGH,
        ThreatStatus.OPEN,
        "App 1",
    )
    assert lookout_fake.tokens_issued == 1  # one token for every page


async def test_an_advisory_rest_threat_reads_as_none_and_a_closed_one_keeps_its_closing_time(
    lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    advisory = lookout_threat(1, device=1, risk="ADVISORY")
    closed = lookout_threat(2, device=1, status="RESOLVED") | {"closed_at": "2026-11-26T11:00:00Z"}
    lookout_fake.threats = [advisory, closed]
    first, second = await snapshot(lookout_client())
    assert isinstance(first, ThreatReport) and first.risk == RiskLevel.NONE
    assert isinstance(second, ThreatReport) and second.resolved_at == datetime.fromisoformat(
        "2026-11-26T11:00Z"
    )


async def test_an_unreadable_record_is_reported_and_the_rest_of_the_page_is_kept(
    lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    lookout_fake.devices = [
        lookout_device(1),
        lookout_device(2) | {"platform": "WINDOWS_PHONE"},
        lookout_device(3),
    ]
    client = lookout_client()
    try:
        [devices] = [batch async for batch in client.snapshot()]  # no threats: no page
    finally:
        await client.close()
    assert [e.id for e in devices.events] == [lookout_guid(1, 1), lookout_guid(1, 3)]
    assert devices.malformed == [f"unknown platform 'WINDOWS_PHONE' (id '{lookout_guid(1, 2)}')"]


async def test_a_429_waits_as_long_as_retry_after_says(
    lookout_fake: FakeLookout, lookout_client: Make, lookout_sleeps: Sleeps
) -> None:
    lookout_fake.devices = [lookout_device(1)]
    lookout_fake.fail("/mra/api/v2/devices", Fault(429, retry_after="7"))
    events = await snapshot(lookout_client())
    assert len(events) == 1 and lookout_sleeps == [7.0]


async def test_server_errors_back_off_exponentially_with_jitter_then_succeed(
    lookout_fake: FakeLookout, lookout_client: Make, lookout_sleeps: Sleeps
) -> None:
    lookout_fake.devices = [lookout_device(1)]
    lookout_fake.fail("/mra/api/v2/devices", Fault(503, times=3))
    assert len(await snapshot(lookout_client())) == 1
    assert len(lookout_sleeps) == 3
    for wait, ceiling in zip(lookout_sleeps, (1, 2, 4), strict=True):
        assert ceiling / 2 <= wait <= ceiling


async def test_a_429_without_retry_after_backs_off_and_gives_up_after_the_last_try(
    lookout_fake: FakeLookout, lookout_client: Make, lookout_sleeps: Sleeps
) -> None:
    lookout_fake.fail("/mra/api/v2/devices", Fault(429, times=10))
    with pytest.raises(LookoutUnavailable, match=r"HTTP 429 \(6 tries\)"):
        await snapshot(lookout_client())
    assert len(lookout_sleeps) == 5


async def test_an_expired_token_is_renewed_once_and_the_call_retried(
    lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    lookout_fake.devices = [lookout_device(n) for n in range(1, 4)]
    client = lookout_client(page_limit=2)
    try:
        pages = client.snapshot()
        first = await anext(pages)
        lookout_fake.expire_tokens()  # mid-listing, as after two hours
        rest = [batch async for batch in pages]
    finally:
        await client.close()
    assert len(first.events) + sum(len(b.events) for b in rest) == 3
    assert lookout_fake.tokens_issued == 2
    tokens = [s.authorization for s in lookout_fake.requests_to("/mra/api/v2/devices")]
    assert tokens == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


async def test_a_token_that_keeps_being_refused_is_an_error_not_a_loop(
    lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    lookout_fake.fail("/mra/api/v2/devices", Fault(401, times=5))
    with pytest.raises(SourceError, match=r"GET /mra/api/v2/devices with HTTP 401"):
        await snapshot(lookout_client())
    assert lookout_fake.tokens_issued == 2


async def test_a_wrong_key_is_one_clear_error_naming_the_variable_with_no_retry(
    lookout_fake: FakeLookout, lookout_client: Make, lookout_sleeps: Sleeps
) -> None:
    with pytest.raises(LookoutKeyRefused) as refused:
        await snapshot(lookout_client(key="not-the-key"))
    message = str(refused.value)
    assert (
        "LOOKOUT_APP_KEY" in message
        and "invalid_client" in message
        and "System → Application Keys" in message
    )
    assert "not-the-key" not in message
    assert len(lookout_fake.requests_to("/oauth2/token")) == 1 and lookout_sleeps == []


async def test_the_stream_asks_for_threat_and_device_events_from_at_most_ten_days_back(
    lookout_fake: FakeLookout, lookout_client: Make
) -> None:
    lookout_fake.plans = [Connection(after=0, then="end")]
    client = lookout_client()
    try:
        stream = client.stream(None, start=datetime(2020, 1, 1, tzinfo=NOW.tzinfo))
        assert (await anext(stream)).events == []  # `end`: idle
        await stream.aclose()
    finally:
        await client.close()
    [request] = lookout_fake.requests_to("/mra/stream/v2/events")
    assert request.params["types"] == "THREAT,DEVICE" and "id" not in request.params
    start = datetime.fromisoformat(request.params["start_time"].replace("Z", "+00:00"))
    assert 9.9 < (datetime.now(NOW.tzinfo) - start).total_seconds() / 86_400 < 10


async def test_a_token_is_renewed_before_it_expires(lookout_fake: FakeLookout, lookout_client: Make) -> None:
    lookout_fake.token_seconds = 60  # inside the two minutes before expiry in which it is renewed
    lookout_fake.devices = [lookout_device(n) for n in range(1, 4)]
    assert len(await snapshot(lookout_client(page_limit=1))) == 3
    tokens = [s.authorization for s in lookout_fake.requests_to("/mra/api/v2/devices")]
    assert tokens == ["Bearer token-1", "Bearer token-2", "Bearer token-3", "Bearer token-4"]


def test_https_trusts_the_private_ca_in_ssl_cert_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    served = ca.issue_cert("127.0.0.1")
    key, chain, ca_file = tmp_path / "key.pem", tmp_path / "chain.pem", tmp_path / "ca.pem"
    served.private_key_pem.write_to_path(str(key))
    served.cert_chain_pems[0].write_to_path(str(chain))
    ca.cert_pem.write_to_path(str(ca_file))
    for fake in FakeLookout.running(tls=(str(key), str(chain)), devices=[lookout_device(1)]):
        settings = Settings(LOOKOUT_APP_KEY=fake.key, LOOKOUT_API_URL=fake.url)  # type: ignore[call-arg]
        assert fake.url.startswith("https://")
        with pytest.raises(SourceError, match="could not be reached"):  # the CA is not trusted yet
            asyncio.run(snapshot(lookout.from_settings(settings, retry=Retry(attempts=1))))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        assert len(asyncio.run(snapshot(lookout.from_settings(settings)))) == 1
