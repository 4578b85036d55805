"""The notifier's Slack side against the recording fake Slack Web API on a free port."""

from collections.abc import Iterator

import pytest

from tests.slack.fake_slack import FakeSlack, start

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
