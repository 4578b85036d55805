"""Outbox payloads of every kind (integration.messages), with room for hostile strings."""

from typing import Any

from integration.messages import (
    CatchUp,
    ConnectorErrorNotice,
    DigestFacts,
    ErrorLine,
    Payload,
    StormSummary,
    TestAlert,
    ThreatAlert,
    ThreatFacts,
)

HOSTILE = "<!channel> <@U123> & <script>alert(1)</script> <https://evil.example|click>"
WHEN = "2026-11-26T12:00:00Z"


def facts(
    name: str = "Alice's iPhone",
    app: str | None = "Flashlight",
    owner: str = "alice@contoso.example",
    device_id: str = "dev-1",
) -> ThreatFacts:
    return {
        "threat_id": "thr-1",
        "device_id": device_id,
        "device_name": name,
        "owner_email": owner,
        "platform": "IOS",
        "classification": "TROJAN",
        "category": "app",
        "risk": "high",
        "app_name": app,
        "detected_at": WHEN,
    }


def threat(**names: Any) -> ThreatAlert:
    return {"kind": "threat", **facts(**names)}  # type: ignore[typeddict-item]


def storm(text: str = "dev-1", count: int = 40) -> StormSummary:
    return {
        "kind": "storm",
        "classification": "TROJAN",
        "risk": "high",
        "count": count,
        "window_start": WHEN,
        "window_end": "2026-11-26T12:10:00Z",
        "devices": [f"{text}-{i}" for i in range(10)],
    }


def catchup(text: str = "x", count: int = 20) -> CatchUp:
    alerts = [facts(name=f"{text} {i}", app=text, owner=text, device_id=text) for i in range(min(count, 20))]
    return {"kind": "catchup", "quiet_until": WHEN, "count": count, "alerts": alerts}


def test_alert() -> TestAlert:
    return {"kind": "test", "requested_at": WHEN}


def connector_error(text: str = "Graph answered 401") -> ConnectorErrorNotice:
    return {"kind": "connector-error", "fingerprint": f"graph:{text}", "message": text, "first_seen": WHEN}


def digest(text: str = "Graph answered 401", items: int = 3) -> DigestFacts:
    error: ErrorLine = {
        "fingerprint": text,
        "message": text,
        "count": 3,
        "first_seen": WHEN,
        "last_seen": WHEN,
    }
    row = {"device_id": text, "owner_email": text, "last_checkin": WHEN}
    flip = {"device_id": text, "owner_email": text, "became": "noncompliant", "at": WHEN}
    failure = {"recipient": text, "channel": "slack", "category": "threat-high", "reason": text}
    return {
        "kind": "digest",
        "since": WHEN,
        "until": "2026-11-26T13:00:00Z",
        "new_errors": [error] * items,
        "ongoing_errors": [error] * items,
        "resolved_errors": [error] * items,
        "about_to_disconnect": [row] * items,
        "compliance_flips": [flip] * items,
        "delivery_failures": [failure] * items,
        "expired": items,
        "policy_drift": [{"classification": "TROJAN", "lookout": text}] * items,
    }


def every_kind(text: str = HOSTILE, items: int = 3) -> list[Payload]:
    return [
        threat(name=text, app=text, owner=text, device_id=text),
        storm(text),
        catchup(text, count=items),
        test_alert(),
        connector_error(text),
        digest(text, items),
    ]
