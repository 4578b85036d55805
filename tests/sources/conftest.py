"""Fixtures for the source clients' tests. Lookout's are prefixed `lookout_` (Graph's sit beside them)."""

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from integration.sources.lookout import LookoutClient
from integration.sources.lookout_http import LookoutHTTP, Retry
from tests.sources.fake_lookout import FakeLookout


def lookout_guid(kind: int, n: int) -> str:
    return f"00000000-0000-4000-{kind:04d}-{n:012d}"


def lookout_device(n: int, *, activation: str = "ACTIVATED", email: str | None = None) -> dict[str, Any]:
    """A device as the REST listing shows it: state flat at the top level."""
    return {
        "oid": n,
        "guid": lookout_guid(1, n),
        "email": email or f"user{n % 97}@contoso.example",
        "platform": "ANDROID" if n % 2 else "IOS",
        "activation_status": activation,
        "protection_status": "PROTECTED",
        "security_status": "SECURE",
        "checkin_time": "2026-11-26T11:00:00.000+00:00",
        "external_id": f"intune-{n}",
        "software": {"os_version": "14", "security_patch_level": "2026-10-01"},
        "hardware": {"manufacturer": "samsung", "model": "sm-a346b"},
        "client": {"package_version": "9.1.1"},
    }


def lookout_threat(n: int, device: int, *, status: str = "OPEN", risk: str = "HIGH") -> dict[str, Any]:
    return {
        "oid": n,
        "guid": lookout_guid(2, n),
        "device_guid": lookout_guid(1, device),
        "status": status,
        "risk": risk,
        "type": "APPLICATION",
        "classifications": ["TROJAN"],
        "detected_at": "2026-11-26T10:00:00.000+00:00",
        "details": {"application_name": f"App {n}", "package_name": f"com.example.app{n}"},
    }


def lookout_threat_event(
    n: int, threat: int, device: int, *, status: str = "OPEN", severity: str = "HIGH"
) -> dict[str, Any]:
    """A THREAT event as the stream sends it: the device is the actor."""
    return {
        "id": lookout_guid(3, n),
        "enterprise_guid": lookout_guid(9, 1),
        "created_time": "2026-11-26T11:30:00.000+00:00",
        "type": "THREAT",
        "change_type": "CREATED" if status == "OPEN" else "UPDATED",
        "threat": {
            "guid": lookout_guid(2, threat),
            "status": status,
            "severity": severity,
            "type": "APPLICATION",
            "classifications": ["TROJAN"],
            "details": {"application_name": f"App {threat}"},
        },
        "target": {"guid": lookout_guid(2, threat), "type": "THREAT"},
        "actor": {"guid": lookout_guid(1, device), "type": "DEVICE"},
    }


def lookout_device_event(n: int, device: int, *, security: str = "SECURE") -> dict[str, Any]:
    """A DEVICE event: state nested under `device.status`, the Intune id under `device.info`."""
    return {
        "id": lookout_guid(3, n),
        "enterprise_guid": lookout_guid(9, 1),
        "created_time": "2026-11-26T11:30:00.000+00:00",
        "type": "DEVICE",
        "change_type": "UPDATED",
        "device": {
            "guid": lookout_guid(1, device),
            "platform": "ANDROID",
            "info": {"external_id": f"intune-{device}", "mdm_connector_id": "1"},
            "status": {
                "activation_status": "ACTIVATED",
                "protection_status": "PROTECTED",
                "security_status": security,
            },
            "software": {"os_version": "15"},
        },
        "target": {"guid": lookout_guid(1, device), "type": "DEVICE"},
        "actor": {"guid": lookout_guid(1, device), "type": "DEVICE"},
    }


class Sleeps(list[float]):
    """The injected sleep: records each wait and yields to the loop without waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def lookout_fake() -> Iterator[FakeLookout]:
    yield from FakeLookout.running()


@pytest.fixture
def lookout_sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def lookout_client(lookout_fake: FakeLookout, lookout_sleeps: Sleeps) -> Callable[..., LookoutClient]:
    """A client on the fake; build it inside the test's event loop (and close it there)."""

    def make(
        *, key: str | None = None, page_limit: int = 1000, heartbeat_timeout: float = 0.5
    ) -> LookoutClient:
        http = LookoutHTTP(
            lookout_fake.url,
            key if key is not None else lookout_fake.key,
            sleep=lookout_sleeps,
            rng=random.Random(1),
            retry=Retry(attempts=6),
        )
        return LookoutClient(http, page_limit=page_limit, heartbeat_timeout=heartbeat_timeout)

    return make
