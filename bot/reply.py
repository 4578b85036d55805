"""What a command answers, before any front end renders it."""

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Reply:
    ok: bool  # False: refused (bad input, no permission, no consent); `mesbot ask` exits 1
    text: str  # plain text, for the terminal and as Slack's fallback (escape before Slack)
    data: dict[str, Any] = field(default_factory=dict)
    command: str = ""  # which command answered, e.g. "risk set"
    confirm: str | None = None  # for a preview: the command that applies it (Slack's Confirm button)
    send_now: tuple[str, ...] = ()  # outbox keys the front end delivers before answering (`notify test`)

    @classmethod
    def refused(cls, text: str, command: str = "") -> "Reply":
        return cls(ok=False, text=text, command=command)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "text": self.text, "data": self.data}
