"""Fixtures for the notifier tests: certificates from a private CA, a recording SMTP server's handler,
settings pointing at a server; the recording fake Slack Web API."""

from collections.abc import Iterator
from typing import Any

import pytest

from integration.config import Settings
from tests.notifications.smtp_server import Certificates, Recorder
from tests.slack.fake_slack import FakeSlack, start


@pytest.fixture(scope="session")
def certificates() -> Certificates:
    return Certificates()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def smtp_settings(port: int, tls: str = "starttls", **more: Any) -> Settings:
    return Settings(
        MESBOT_SMTP_HOST="127.0.0.1",
        MESBOT_SMTP_PORT=port,
        MESBOT_SMTP_TLS=tls,
        MESBOT_MAIL_FROM="mesbot@contoso.example",
        **more,
    )


USERS: dict[str, str | None] = {
    "UADMIN": "admin@contoso.example",
    "UANALYST": "analyst@contoso.example",
    "UNOMAIL": None,
}


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack(users=dict(USERS))
    server = start(fake)
    yield fake
    server.shutdown()
    server.server_close()


class RecordedSleep:
    """Stands in for asyncio.sleep: remembers each wait instead of spending it."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
