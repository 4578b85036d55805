"""Lookout Mobile Risk API v2 stream events → source events (DOMAIN.md, "Event envelope").

One stream event (an element of an SSE `events` frame's `events` array) becomes the `DeviceReport`s and
`ThreatReport`s that `integration.sync.apply` writes. What mesbot does not track (`AUDIT`,
`SMISHING_ALERT`) becomes nothing; what it cannot read raises `MalformedEvent` with the reason, so the
stream can record a connector error, skip the event and go on.

Shapes worth knowing (fixtures in tests/integration/fixtures/lookout-events/, captured from real tenants):
THREAT events name the device in `actor.guid` (an actor of type SYSTEM names none: the threat's stored
device is kept); DEVICE events nest state under `device.status`; `severity` includes `ADVISORY`, which
mesbot reads as `none` (DESIGN §8).
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from integration.catalogue import CATALOGUE
from integration.errors import SourceError
from integration.sync import DeviceReport, SourceEvent, ThreatReport
from storage.states import (
    ActivationStatus,
    Platform,
    ProtectionStatus,
    RiskLevel,
    SecurityStatus,
    ThreatStatus,
)

IGNORED_TYPES = frozenset({"AUDIT", "SMISHING_ALERT"})
SEVERITY = {
    "HIGH": RiskLevel.HIGH,
    "MEDIUM": RiskLevel.MEDIUM,
    "LOW": RiskLevel.LOW,
    "ADVISORY": RiskLevel.NONE,
    "NONE": RiskLevel.NONE,
}


class MalformedEvent(SourceError):
    """A stream event mesbot cannot read: recorded as a connector error and skipped."""


def parse(event: Mapping[str, Any]) -> list[SourceEvent]:
    if not isinstance(event, Mapping):
        raise MalformedEvent("the event is not a JSON object")
    kind = event.get("type")
    if kind in IGNORED_TYPES:
        return []
    if kind == "THREAT":
        return [_threat(event)]
    if kind == "DEVICE":
        return [_device(event)]
    raise MalformedEvent(f"unknown event type {_shown(kind)}")


def _threat(event: Mapping[str, Any]) -> ThreatReport:
    body = _object(event, "threat")
    at = _time(event.get("created_time"))
    actor = _part(event, "actor")
    device_id = actor.get("guid", "") if actor.get("type") == "DEVICE" else ""
    return _threat_report(body, body.get("severity"), device_id=device_id, at=at, closed=at)


def _threat_report(
    body: Mapping[str, Any], severity_value: Any, *, device_id: Any, at: datetime, closed: datetime | None
) -> ThreatReport:
    classifications = body.get("classifications")
    if not (isinstance(classifications, list) and classifications and isinstance(classifications[0], str)):
        raise MalformedEvent("the threat has no classification")
    classification = classifications[0].upper()
    if classification not in CATALOGUE:
        raise MalformedEvent(f"unknown threat classification {_shown(classification)}")
    severity = SEVERITY.get(str(severity_value or "").upper())
    if severity is None:
        raise MalformedEvent(f"unknown threat severity {_shown(severity_value)}")
    status = _enum(ThreatStatus, body.get("status"), "threat status")
    details = _part(body, "details")
    return ThreatReport(
        id=_guid(body.get("guid"), "threat guid"),
        device_id=_guid(device_id, "device guid") if device_id else "",
        status=status,
        classification=classification,
        risk=severity,
        type=str(body.get("type") or "UNKNOWN")[:40],
        detected_at=at,
        resolved_at=(closed or at) if status != ThreatStatus.OPEN else None,
        app_name=_text(details.get("application_name")),
        package_name=_text(details.get("package_name")),
        path=_text(details.get("path")),
        network_ssid=_text(details.get("ssid")),
        url=_text(details.get("url")),
    )


def _device(event: Mapping[str, Any]) -> DeviceReport:
    return device(_object(event, "device"))


def device(body: Mapping[str, Any]) -> DeviceReport:
    """A device body from the stream (state nested under `status`, the MDM link under `info`) or from
    the REST listing (both flat at the top level; DOMAIN.md marks those names unconfirmed): one shape."""
    status = _part(body, "status") or body
    info = _part(body, "info") or body
    hardware = _part(body, "hardware")
    software = _part(body, "software")
    client = _part(body, "client")
    platform = body.get("platform")
    return DeviceReport(
        id=_guid(body.get("guid"), "device guid"),
        owner_email=_text(body.get("email")),
        platform=_enum(Platform, platform, "platform") if platform is not None else None,
        activation_status=_optional_enum(ActivationStatus, status.get("activation_status")),
        protection_status=_optional_enum(ProtectionStatus, status.get("protection_status")),
        security_status=_optional_enum(SecurityStatus, status.get("security_status")),
        checkin_time=_time(body["checkin_time"]) if body.get("checkin_time") else None,
        activated_at=_time(body["activated_at"]) if body.get("activated_at") else None,
        os_version=_text(software.get("os_version")),
        security_patch_level=_text(software.get("security_patch_level")),
        manufacturer=_text(hardware.get("manufacturer")),
        model=_text(hardware.get("model")),
        client_version=_text(client.get("package_version")),
        external_id=_text(info.get("external_id")),
    )


def rest_threat(body: Mapping[str, Any]) -> ThreatReport:
    """A threat from the REST listing (`/mra/api/v2/threats`). It names its device in `device_guid` and
    its severity in `risk`; its times are `detected_at` and `closed_at` (DOMAIN.md: unconfirmed names,
    so `severity` and `created_time` are read too)."""
    if not isinstance(body, Mapping):
        raise MalformedEvent("the threat is not a JSON object")
    severity_value = body.get("risk", body.get("severity"))
    return _threat_report(
        body,
        severity_value,
        device_id=body.get("device_guid") or "",
        at=_time(body.get("detected_at") or body.get("created_time")),
        closed=_time(body["closed_at"]) if body.get("closed_at") else None,
    )


def _part(body: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """An optional nested object; anything else reads as empty."""
    value = body.get(name)
    return value if isinstance(value, Mapping) else {}


def _object(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    body = event.get(name)
    if not isinstance(body, Mapping):
        raise MalformedEvent(f"a {event.get('type')} event without a `{name}` object")
    return body


def _enum(kind: Any, value: Any, what: str) -> Any:
    try:
        return kind(str(value).upper())
    except ValueError:
        raise MalformedEvent(f"unknown {what} {_shown(value)}") from None


def _optional_enum(kind: Any, value: Any) -> Any:
    return None if value is None else _enum(kind, value, kind.__name__)


def _guid(value: Any, what: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 64 or not value.replace("-", "").isalnum():
        raise MalformedEvent(f"the {what} is missing or not a guid")
    return value.lower()


def _time(value: Any) -> datetime:
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"the time {_shown(value)} is not ISO 8601") from None
    if at.tzinfo is None:
        raise MalformedEvent(f"the time {_shown(value)} has no time zone")
    return at


def _text(value: Any) -> str | None:
    """Untrusted text as it came (renderers escape it), cut to a sane length."""
    return value[:500] if isinstance(value, str) and value else None


def _shown(value: Any) -> str:
    return repr(str(value)[:40])
