"""What happened to one message a sender tried to send: the deliverer marks its outbox row by it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Sent:
    detail: str | None = None  # e.g. the Slack message ts, the SMTP queue id


@dataclass(frozen=True)
class Retry:
    """Transient (SMTP 4xx, Slack 429/5xx, timeouts, connection errors): try again later."""

    reason: str
    after_seconds: float | None = None  # the server's Retry-After, when it gave one


@dataclass(frozen=True)
class Failed:
    """Permanent (SMTP 5xx, Slack `channel_not_found`, `invalid_auth`, …): do not retry unchanged."""

    reason: str


Outcome = Sent | Retry | Failed
