"""What an outbox row carries: the facts of one message, as JSON, fixed when the row is committed.

The notifier renders these (mail, Slack) at send time; it re-checks opt-in and access then, but never
re-reads what happened. Every string that came from a phone or the directory (`device_name`,
`owner_email`, `app_name`, `message`) is untrusted: renderers escape it for their medium, and mail
headers never carry it (subjects are built from catalogue values and counts only).

Recipients (`OutboxMessage.recipient_id`) are a directory user's id, or `mailto:ADDRESS` (the
connector's error-report address), or `slack-channel:ID` (the on-call channel).
"""

from typing import Literal, NotRequired, TypedDict

Kind = Literal["threat", "storm", "catchup", "test", "connector-error", "digest"]

MAILTO = "mailto:"
SLACK_CHANNEL = "slack-channel:"


class ThreatFacts(TypedDict):
    """One threat as an alert shows it (`kind: "threat"`, and each item of a catch-up)."""

    threat_id: str
    device_id: str
    device_name: str | None  # untrusted
    owner_email: str  # untrusted
    platform: str  # ANDROID | IOS
    classification: str  # catalogue name, e.g. TROJAN
    category: str  # app | device | network | web (catalogue)
    risk: str  # the classification's *current* level in mesbot's catalogue: high | medium | low
    app_name: str | None  # untrusted
    detected_at: str  # ISO 8601 UTC, `…Z`


class ThreatAlert(ThreatFacts):
    kind: Literal["threat"]


class StormSummary(TypedDict):
    """More than the storm threshold of one classification to one recipient within one window."""

    kind: Literal["storm"]
    classification: str
    risk: str
    count: int  # threats folded into this summary
    window_start: str
    window_end: str
    devices: list[str]  # the first few device ids (at most 10)


class CatchUp(TypedDict):
    """Non-high alerts held during the recipient's quiet hours, sent as one message when they end."""

    kind: Literal["catchup"]
    quiet_until: str
    count: int
    alerts: list[ThreatFacts]  # the first ones (at most 20); `count` says how many in all


class TestAlert(TypedDict):
    kind: Literal["test"]
    requested_at: str


class ConnectorErrorNotice(TypedDict):
    """A new connector-error fingerprint, mailed at once to the error-report address."""

    kind: Literal["connector-error"]
    fingerprint: str
    message: str  # may quote what an API said: untrusted
    first_seen: str


class ErrorLine(TypedDict):
    fingerprint: str
    message: str
    count: int
    first_seen: str
    last_seen: str


class DigestFacts(TypedDict):
    """The on-call digest: what happened since `since` (nothing is sent when every list is empty)."""

    kind: Literal["digest"]
    since: str
    until: str
    new_errors: list[ErrorLine]
    ongoing_errors: list[ErrorLine]
    resolved_errors: list[ErrorLine]
    about_to_disconnect: list[dict[str, str]]  # {device_id, owner_email, last_checkin}
    compliance_flips: list[dict[str, str]]  # {device_id, owner_email, became, at}
    delivery_failures: list[dict[str, str]]  # {recipient, channel, category, reason}
    expired: int  # rows that passed their TTL unsent
    policy_drift: NotRequired[list[dict[str, str]]]  # Lookout mode (issue 9)


Payload = ThreatAlert | StormSummary | CatchUp | TestAlert | ConnectorErrorNotice | DigestFacts
