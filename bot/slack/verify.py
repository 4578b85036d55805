"""Slack request signatures, checked before Bolt sees the request.

Bolt answers a non-numeric timestamp with a 500 and logs the whole rejected body; this check answers
every malformed or forged request with 400/401 and never logs the body (RELIABILITY.md).
"""

import hashlib
import hmac
from dataclasses import dataclass

MAX_SKEW_SECONDS = 300


@dataclass(frozen=True)
class Verdict:
    status: int  # 200 when valid
    reason: str


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> Verdict:
    if not timestamp or not signature:
        return Verdict(401, "missing signature headers")
    if not signature.isascii():
        return Verdict(401, "bad signature")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return Verdict(400, "malformed timestamp")
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        return Verdict(401, "stale or future timestamp")
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return Verdict(401, "bad signature")
    return Verdict(200, "ok")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Slack would send (for tests, benchmarks and the fake)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
