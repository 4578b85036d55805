"""The real Bolt app behind the real Starlette app, driven by signed requests, talking to a fake Slack."""

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from slack_bolt.async_app import AsyncApp

from bot.serve import build
from bot.slack.services import SlackServices
from bot.slack.verify import sign
from integration.config import Settings
from storage.engine import Store
from tests.conftest import make_store, seed_demo
from tests.slack.fake_slack import FakeSlack, start

SECRET = "test-signing-secret"
USERS = {
    "UADMIN": "admin@contoso.example",
    "UANALYST": "analyst@contoso.example",
    "UALICE": "alice@contoso.example",
    "UNOMAIL": None,
    "USTRANGER": "stranger@elsewhere.example",
}
IDENTITIES = {"UADMIN": "full", "UANALYST": "restricted", "UALICE": "none"}


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(users=dict(USERS))
    server = start(fake)
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def slack_store(tmp_path: object) -> Iterator[Store]:
    store = make_store("sqlite", tmp_path)
    seed_demo(store)
    yield store
    store.dispose()


def settings_for(fake: FakeSlack, **extra: Any) -> Settings:
    return Settings(  # no `.env` is read: the working directory is the test's own (tests/conftest.py)
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SECRET,
        MESBOT_SLACK_API_URL=f"{fake.url}/api/",
        **extra,
    )


@dataclass
class SlackClient:
    """Sends requests the way Slack does: signed, form-encoded commands, `payload=` for interactivity."""

    http: httpx.AsyncClient
    services: SlackServices
    fake: FakeSlack
    app: AsyncApp | None = None
    now: Callable[[], float] = field(default=time.time)  # when requests are signed

    def signed_headers(self, body: bytes, content_type: str) -> dict[str, str]:
        timestamp = str(int(self.now()))
        return {
            "content-type": content_type,
            "x-slack-request-timestamp": timestamp,
            "x-slack-signature": sign(SECRET, timestamp, body),
        }

    async def signed(
        self, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        signed_headers = {**self.signed_headers(body, content_type), **(headers or {})}
        return await self.http.post("/slack/events", content=body, headers=signed_headers)

    def command_body(
        self, text: str, user: str = "UADMIN", *, trigger_id: bool = True, response_url: str | None = None
    ) -> bytes:
        fields = {
            "command": "/lookout",
            "text": text,
            "user_id": user,
            "user_name": "spoofable",
            "team_id": "T1",
            "channel_id": "C1",
            "trigger_id": uuid.uuid4().hex,
            "response_url": response_url or f"{self.fake.url}/response/{uuid.uuid4().hex}",
        }
        if not trigger_id:
            del fields["trigger_id"]
        return urlencode(fields).encode()

    async def command(
        self, text: str, user: str = "UADMIN", response_url: str | None = None
    ) -> httpx.Response:
        body = self.command_body(text, user, response_url=response_url)
        return await self.signed(body, "application/x-www-form-urlencoded")

    def action_body(
        self, action_id: str, value: str, user: str = "UADMIN", response_url: str | None = None
    ) -> bytes:
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": "spoofable", "team_id": "T1"},
            "team": {"id": "T1"},
            "api_app_id": "A1",
            "trigger_id": uuid.uuid4().hex,
            "response_url": response_url or f"{self.fake.url}/response/{uuid.uuid4().hex}",
            "container": {"type": "message", "message_ts": "1.2", "channel_id": "C1"},
            "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": value}],
        }
        return urlencode({"payload": json.dumps(payload)}).encode()

    async def action(
        self, action_id: str, value: str, user: str = "UADMIN", response_url: str | None = None
    ) -> httpx.Response:
        return await self.signed(
            self.action_body(action_id, value, user, response_url), "application/x-www-form-urlencoded"
        )

    async def event(self, event: dict[str, Any], event_id: str, retry: int | None = None) -> httpx.Response:
        body = json.dumps(
            {
                "type": "event_callback",
                "team_id": "T1",
                "api_app_id": "A1",
                "event": event,
                "event_id": event_id,
            }
        ).encode()
        headers = {"x-slack-retry-num": str(retry), "x-slack-retry-reason": "http_timeout"} if retry else None
        return await self.signed(body, "application/json", headers)


@pytest.fixture
async def slack(fake_slack: FakeSlack, slack_store: Store) -> AsyncIterator[SlackClient]:
    web, app, services = build(settings_for(fake_slack), slack_store)
    assert services is not None and app is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web), base_url="http://mesbot") as http:
        yield SlackClient(http, services, fake_slack, app)
    await services.drain()
