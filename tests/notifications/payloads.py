"""Outbox payloads as the notifier commits them (`integration.messages`), for the mail tests."""

from typing import Any

from integration.messages import (
    CatchUp,
    ConnectorErrorNotice,
    DigestFacts,
    StormSummary,
    TestAlert,
    ThreatAlert,
    ThreatFacts,
)

HOSTILE = [
    "=?UTF-8?Q?=0A?=Bcc: evil@attacker.example",
    "line\r\nBcc: evil@attacker.example",
    "<script>alert(1)</script>",
    "<!channel>",
    "\u202egnp.exe",
    "\x1b]0;title\x07",
]


def threat_facts(**changes: Any) -> ThreatFacts:
    facts: ThreatFacts = {
        "threat_id": "thr-0001",
        "device_id": "dev-0001",
        "device_name": "Alice's Pixel 8",
        "owner_email": "alice@contoso.example",
        "platform": "ANDROID",
        "classification": "TROJAN",
        "category": "app",
        "risk": "high",
        "app_name": "Flashlight Pro",
        "detected_at": "2026-11-26T11:58:00Z",
    }
    return {**facts, **changes}  # type: ignore[typeddict-item]


def threat(**changes: Any) -> ThreatAlert:
    return {"kind": "threat", **threat_facts(**changes)}


def storm(**changes: Any) -> StormSummary:
    summary: StormSummary = {
        "kind": "storm",
        "classification": "TROJAN",
        "risk": "high",
        "count": 37,
        "window_start": "2026-11-26T11:50:00Z",
        "window_end": "2026-11-26T12:00:00Z",
        "devices": [f"dev-{n:04d}" for n in range(10)],
    }
    return {**summary, **changes}  # type: ignore[typeddict-item]


def catchup(**changes: Any) -> CatchUp:
    alerts = [
        threat_facts(classification="ROGUE_WIFI", category="network", risk="medium", app_name=None),
        threat_facts(threat_id="thr-0002", classification="ADWARE", risk="low"),
    ]
    held: CatchUp = {"kind": "catchup", "quiet_until": "2026-11-26T07:00:00Z", "count": 5, "alerts": alerts}
    return {**held, **changes}  # type: ignore[typeddict-item]


def self_test() -> TestAlert:
    return {"kind": "test", "requested_at": "2026-11-26T12:00:00Z"}


def connector_error(message: str = "Graph answered 401 invalid_client") -> ConnectorErrorNotice:
    return {
        "kind": "connector-error",
        "fingerprint": "graph-401",
        "message": message,
        "first_seen": "2026-11-26T11:00:00Z",
    }


def digest(**changes: Any) -> DigestFacts:
    error = {
        "fingerprint": "graph-401",
        "message": "Graph answered 401",
        "count": 3,
        "first_seen": "2026-11-26T11:00:00Z",
        "last_seen": "2026-11-26T11:45:00Z",
    }
    facts: DigestFacts = {
        "kind": "digest",
        "since": "2026-11-26T11:00:00Z",
        "until": "2026-11-26T12:00:00Z",
        "new_errors": [error],  # type: ignore[list-item]
        "ongoing_errors": [],
        "resolved_errors": [],
        "about_to_disconnect": [
            {
                "device_id": "dev-0009",
                "owner_email": "bob@contoso.example",
                "last_checkin": "2026-11-20T08:00:00Z",
            }
        ],
        "compliance_flips": [
            {
                "device_id": "dev-0001",
                "owner_email": "alice@contoso.example",
                "became": "noncompliant",
                "at": "2026-11-26T11:58:00Z",
            }
        ],
        "delivery_failures": [
            {"recipient": "u-1", "channel": "email", "category": "threat-high", "reason": "550 no such user"}
        ],
        "expired": 2,
    }
    return {**facts, **changes}  # type: ignore[typeddict-item]
