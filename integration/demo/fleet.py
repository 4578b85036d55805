"""The demo fleet: device and threat rows for the demo tenant, drawn from one seeded random source.

Rows are tuples in `DEVICE_COLUMNS` / `THREAT_COLUMNS` order, with states as their plain values and
timestamps as the loader takes them (`storage.bulk`): ~13 µs a device, half the cost of the dicts of
enums, datetimes and `uuid.UUID`s drawn before, and nothing left to convert per value when loading.
"""

import random
from collections.abc import Callable, Iterator
from typing import Any

from integration.catalogue import CATALOGUE
from integration.demo import data, mix
from integration.demo.draws import guid, pick
from integration.levels import RiskLevel, security_status
from storage.states import ActivationStatus, Platform, ProtectionStatus, ThreatStatus

DEVICE_COLUMNS = (
    *("id", "owner_email", "name", "platform", "activation_status", "protection_status"),
    *("security_status", "checkin_time", "activated_at", "enrolled_at", "os_version"),
    *("security_patch_level", "manufacturer", "model", "client_version", "open_classifications"),
)
THREAT_COLUMNS = (
    *("id", "device_id", "status", "classification", "risk", "type", "detected_at", "resolved_at"),
    *("app_name", "package_name", "path", "network_ssid", "url"),
)
DAY = 86_400
SECURITY = {level.rank: security_status(level).value for level in RiskLevel}  # by the worst open rank
IOS, ANDROID = Platform.IOS.value, Platform.ANDROID.value
PATCHES = [f"2024-{month:02d}-01" for month in range(1, 13)]
PENDING, ACTIVATED = ActivationStatus.PENDING.value, ActivationStatus.ACTIVATED.value
DEACTIVATED, DELETED = ActivationStatus.DEACTIVATED.value, ActivationStatus.DELETED.value
PROTECTED, DISCONNECTED = ProtectionStatus.PROTECTED.value, ProtectionStatus.DISCONNECTED.value
UNINSTALLED = ProtectionStatus.UNINSTALLED.value
OPEN, RESOLVED = ThreatStatus.OPEN.value, ThreatStatus.RESOLVED.value
# Days since the last check-in: recent when protected, past the 30-day default when disconnected.
CHECKIN_DAYS = {PROTECTED: (0, 2.5), DISCONNECTED: (31, 120), UNINSTALLED: (5, 60)}


class Fleet:
    """Builds device and threat rows; one instance per seed run so the draws stay in order."""

    def __init__(
        self,
        rng: random.Random,
        ids: Iterator[str],
        bits: dict[str, int],
        stamp: Callable[[int], Any],
    ) -> None:
        self.rng = rng
        self.ids = ids  # device ids, one per device built
        self.stamp = stamp  # so many seconds before now, as the store's loader takes a timestamp
        self.bits = bits  # `Classification.bit`: a device carries its open threats' (triggers are off)
        self.risks = {name: (entry.default_risk, entry.category) for name, entry in CATALOGUE.items()}

    def build(self, owners: list[tuple[str, str]]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Rows for devices owned by (e-mail, scenario) pairs, and their threats."""
        devices: list[tuple[Any, ...]] = []
        threats: list[tuple[Any, ...]] = []
        for email, scenario in owners:
            self._device(next(self.ids), email, scenario, devices, threats)
        return devices, threats

    def _ago(self, low: float, high: float) -> int:
        """How many seconds before now: between `low` and `high` days."""
        return int((low + (high - low) * self.rng.random()) * DAY)

    def _device(
        self,
        device_id: str,
        email: str,
        scenario: str,
        devices: list[tuple[Any, ...]],
        threats: list[tuple[Any, ...]],
    ) -> None:
        rng, stamp = self.rng, self.stamp
        random_ = scenario == "random"
        ios = rng.random() < 0.55 if random_ else scenario == "healthy"
        activation, protection = ACTIVATED, PROTECTED
        if random_:
            roll = rng.random()
            if roll < 0.13:
                activation = PENDING if roll < 0.08 else DEACTIVATED if roll < 0.12 else DELETED
            roll = rng.random()
            if activation != PENDING and roll < 0.07:
                protection = DISCONNECTED if roll < 0.06 else UNINSTALLED
        checkin = activated = None
        if activation == PENDING:
            enrolled = self._ago(0, 30)
        else:
            enrolled = self._ago(40, 400)
            checkin = stamp(self._ago(*CHECKIN_DAYS[protection]))
            activated = stamp(enrolled - 3600 * (1 + int(72 * rng.random())))
        if ios:
            manufacturer, model = "Apple", pick(rng, data.IOS_MODELS)
            os_version, patch = pick(rng, data.IOS_VERSIONS), None
        else:
            manufacturer, model = pick(rng, data.ANDROID_MODELS)
            os_version, patch = pick(rng, data.ANDROID_VERSIONS), PATCHES[int(12 * rng.random())]
        client = f"10.{int(10 * rng.random())}.{int(41 * rng.random())}"
        top, bits = 0, 0  # the worst open threat's rank, and the open classifications
        if scenario == "trojan" or (random_ and activation != PENDING):
            for threat, rank, bit in self._threats(device_id, scenario):
                threats.append(threat)
                if threat[2] == OPEN:
                    top, bits = max(top, rank), bits | bit
        name = f"{email.split('.', 1)[0].split('@', 1)[0].capitalize()}'s {model}"
        devices.append(
            (
                *(device_id, email, name, IOS if ios else ANDROID, activation, protection, SECURITY[top]),
                *(checkin, activated, stamp(enrolled), os_version, patch, manufacturer, model, client, bits),
            )
        )

    def _threats(self, device_id: str, scenario: str) -> list[tuple[tuple[Any, ...], int, int]]:
        if scenario == "trojan":
            return [self._threat(device_id, "TROJAN", OPEN, app="Flashlight Pro")]
        rng = self.rng
        roll = rng.random()
        count = (1 if roll < 0.13 else 2 + int(3 * rng.random())) if roll < 0.16 else 0
        rows = [self._threat(device_id, mix.classification(rng), OPEN) for _ in range(count)]
        if rng.random() < 0.2:
            rows.append(self._threat(device_id, mix.classification(rng), RESOLVED))
        return rows

    def _threat(
        self, device_id: str, name: str, status: str, app: str | None = None
    ) -> tuple[tuple[Any, ...], int, int]:
        """A threat row, with its risk's rank and its classification's bit."""
        rng = self.rng
        risk, category = self.risks[name]
        detected = self._ago(0.05, 20)
        resolved = self.stamp(detected - 3600 * (1 + int(48 * rng.random()))) if status == RESOLVED else None
        found = mix.details(rng, category, app)
        kind = data.THREAT_TYPES[category]
        row = (guid(rng), device_id, status, name, risk.value, kind, self.stamp(detected), resolved)
        return (*row, *found), risk.rank, self.bits[name]
