"""A recording fake of the Slack Web API (and of response_url endpoints) on a free local port."""

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from tests.json_http import send_json, serve_in_thread


@dataclass
class Call:
    path: str  # "/api/chat.postMessage" or "/response/…"
    body: dict[str, Any]

    @property
    def method(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class Failure:
    status: int  # RESET: close the connection without answering
    error: str | None = None  # Slack's `error` for a 200 {"ok": false}
    retry_after: int | None = None
    times: int = 1


@dataclass
class FakeSlack:
    users: dict[str, str | None]  # Slack user ID → e-mail (None: no e-mail visible)
    calls: list[Call] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    url: str = ""
    zones: dict[str, str] = field(default_factory=dict)  # Slack user ID → profile `tz`
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, method: str, failure: Failure) -> None:
        self.failures.setdefault(method, []).append(failure)

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def responses(self) -> list[dict[str, Any]]:
        """What was posted to response_url endpoints, in order."""
        return [c.body for c in self.calls if c.path.startswith("/response/")]

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            self.calls.append(Call(path, body))
            method = path.rsplit("/", 1)[-1]
            queue = self.failures.get(method)
            if queue:
                failure = queue[0]
                failure.times -= 1
                if failure.times <= 0:
                    queue.pop(0)
                headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
                if failure.error:
                    return 200, headers, {"ok": False, "error": failure.error}
                return failure.status, headers, {"ok": False, "error": "fake_failure"}
        if path.startswith("/response/"):
            return 200, {}, {"ok": True}
        if method == "users.info":
            user = body.get("user", "")
            if user not in self.users:
                return 200, {}, {"ok": False, "error": "user_not_found"}
            email = self.users[user]
            profile = {"email": email} if email else {}
            answer: dict[str, Any] = {"id": user, "profile": profile}
            if user in self.zones:
                answer["tz"] = self.zones[user]
            return 200, {}, {"ok": True, "user": answer}
        if method == "users.lookupByEmail":
            email = str(body.get("email", "")).lower()
            found = [user for user, address in self.users.items() if address and address.lower() == email]
            if not found:
                return 200, {}, {"ok": False, "error": "users_not_found"}
            return 200, {}, {"ok": True, "user": {"id": found[0], "profile": {"email": email}}}
        if method == "conversations.open":
            return 200, {}, {"ok": True, "channel": {"id": f"D{body.get('users', '')}"}}
        if method == "auth.test":
            return 200, {}, {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1"}
        return 200, {}, {"ok": True, "ts": "1700000000.000100", "channel": body.get("channel", "C1")}


RESET = -1


def start(fake: FakeSlack) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: dict[str, Any] = {k: v[0] for k, v in parse_qs(parsed.query).items()}
            if raw:
                if "json" in (self.headers.get("content-type") or ""):
                    body.update(json.loads(raw))
                else:
                    body.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
            status, headers, payload = fake.answer(parsed.path, body)
            if status == RESET:
                self.close_connection = True
                return
            send_json(self, status, headers, payload)

        do_GET = do_POST = _handle

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    serve_in_thread(server)
    return server
