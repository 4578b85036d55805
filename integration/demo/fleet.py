"""The demo fleet: device and threat rows for the demo tenant, drawn from one seeded random source."""

import random
import uuid
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from integration.catalogue import CATALOGUE
from integration.demo import data
from integration.levels import RiskLevel, security_status
from storage.states import ActivationStatus, Platform, ProtectionStatus, ThreatStatus


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class Fleet:
    """Builds device and threat rows; one instance per seed run so the draws stay in order."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        names = list(data.CLASSIFICATION_WEIGHTS)
        self.classifications = names
        self.cum_weights = list(accumulate(data.CLASSIFICATION_WEIGHTS.values()))

    def build(self, owners: list[tuple[str, str]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        devices: list[dict[str, Any]] = []
        threats: list[dict[str, Any]] = []
        for email, scenario in owners:
            device = self._device(email, scenario)
            device_threats = self._threats(device, scenario)
            top = max(
                (t["risk"] for t in device_threats if t["status"] == ThreatStatus.OPEN),
                key=lambda level: level.rank,
                default=RiskLevel.NONE,
            )
            device["security_status"] = security_status(top)
            devices.append(device)
            threats.extend(device_threats)
        return devices, threats

    def _ago(self, low: float, high: float) -> datetime:
        """A moment between `low` and `high` days before now, to the second."""
        return self.now - timedelta(seconds=int(self.rng.uniform(low, high) * 86_400))

    def _device(self, email: str, scenario: str) -> dict[str, Any]:
        rng = self.rng
        ios = rng.random() < 0.55 if scenario == "random" else scenario == "healthy"
        activation, protection = ActivationStatus.ACTIVATED, ProtectionStatus.PROTECTED
        if scenario == "random":
            roll = rng.random()
            activation = (
                ActivationStatus.PENDING
                if roll < 0.08
                else ActivationStatus.DEACTIVATED
                if roll < 0.12
                else ActivationStatus.DELETED
                if roll < 0.13
                else activation
            )
            roll = rng.random()
            if roll < 0.06:
                protection = ProtectionStatus.DISCONNECTED
            elif roll < 0.07:
                protection = ProtectionStatus.UNINSTALLED
        pending = activation == ActivationStatus.PENDING
        enrolled = self._ago(0, 30) if pending else self._ago(40, 400)
        checkin = None
        if not pending:
            # all three are drawn, whichever is used: the draws of a seed stay in the same order
            by_state = {
                ProtectionStatus.PROTECTED: self._ago(0, 2.5),
                ProtectionStatus.DISCONNECTED: self._ago(31, 120),
            }
            checkin = by_state.get(protection, self._ago(5, 60))
        first = email.split(".")[0].split("@")[0].capitalize()
        if ios:
            manufacturer, model = "Apple", rng.choice(data.IOS_MODELS)
            os_version, patch = rng.choice(data.IOS_VERSIONS), None
        else:
            manufacturer, model = rng.choice(data.ANDROID_MODELS)
            os_version, patch = (
                rng.choice(data.ANDROID_VERSIONS),
                f"2024-{rng.randint(1, 12):02d}-01",
            )
        return {
            "id": guid(rng),
            "owner_email": email,
            "name": f"{first}'s {model}",
            "platform": Platform.IOS if ios else Platform.ANDROID,
            "activation_status": activation,
            "protection_status": ProtectionStatus.PROTECTED if pending else protection,
            "checkin_time": checkin,
            "activated_at": None
            if activation == ActivationStatus.PENDING
            else enrolled + timedelta(hours=rng.randint(1, 72)),
            "enrolled_at": enrolled,
            "os_version": os_version,
            "security_patch_level": patch,
            "manufacturer": manufacturer,
            "model": model,
            "client_version": f"10.{rng.randint(0, 9)}.{rng.randint(0, 40)}",
        }

    def _threats(self, device: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
        if scenario == "trojan":
            return [self._threat(device, "TROJAN", ThreatStatus.OPEN, app="Flashlight Pro")]
        if scenario != "random" or device["activation_status"] == ActivationStatus.PENDING:
            return []
        rng = self.rng
        roll = rng.random()
        open_count = 1 if roll < 0.13 else rng.randint(2, 4) if roll < 0.16 else 0
        rows = [self._threat(device, self._classification(), ThreatStatus.OPEN) for _ in range(open_count)]
        if rng.random() < 0.2:
            rows.append(self._threat(device, self._classification(), ThreatStatus.RESOLVED))
        return rows

    def _classification(self) -> str:
        return self.rng.choices(self.classifications, cum_weights=self.cum_weights)[0]

    def _threat(
        self, device: dict[str, Any], name: str, status: ThreatStatus, app: str | None = None
    ) -> dict[str, Any]:
        rng = self.rng
        entry = CATALOGUE[name]
        detected = self._ago(0.05, 20)
        row: dict[str, Any] = {
            "id": guid(rng),
            "device_id": device["id"],
            "status": status,
            "classification": name,
            "risk": entry.default_risk,
            "type": data.THREAT_TYPES[entry.category],
            "detected_at": detected,
            "resolved_at": (
                detected + timedelta(hours=rng.randint(1, 48)) if status == ThreatStatus.RESOLVED else None
            ),
            "app_name": None,
            "package_name": None,
            "path": None,
            "network_ssid": None,
            "url": None,
        }
        if entry.category == "app":
            row["app_name"] = app or rng.choice(data.APP_NAMES)
            row["package_name"] = f"com.example.app{rng.randint(1, 999)}"
            row["path"] = f"package://{row['package_name']}"
        elif entry.category == "network":
            row["network_ssid"] = rng.choice(data.SSIDS)
        elif entry.category == "web":
            row["url"] = rng.choice(data.URLS)
        return row
