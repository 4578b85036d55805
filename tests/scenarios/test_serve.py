"""`mesbot serve` as a user runs it: a real uvicorn process answering /healthz, /metrics and a
signed slash command, talking to the fake Slack Web API."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from bot.slack.verify import sign
from tests.conftest import make_store, seed_demo
from tests.slack.fake_slack import FakeSlack, start

SECRET = "serve-secret"
MESBOT = str(Path(sys.executable).with_name("mesbot"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, FakeSlack]]:
    store = make_store("sqlite", tmp_path)
    seed_demo(store)
    store.dispose()
    fake = FakeSlack(users={"UANALYST": "analyst@contoso.example"})
    server = start(fake)
    port = _free_port()
    env = {
        **os.environ,
        "MESBOT_DATABASE_URL": f"sqlite:///{tmp_path}/mesbot.db",
        "MESBOT_HTTP_PORT": str(port),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "MESBOT_SLACK_API_URL": f"{fake.url}/api/",
    }
    process = subprocess.Popen(
        [MESBOT, "serve", "--role", "web"], env=env, cwd=tmp_path, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, fake
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
        server.shutdown()
        server.server_close()
    assert b"Traceback" not in stderr


def test_serve_answers_health_metrics_and_a_signed_command(served: tuple[str, FakeSlack]) -> None:
    base, fake = served
    health = httpx.get(f"{base}/healthz").json()
    assert health == {
        "db": "ok",
        "connector": "enabled",
        "last_heartbeat": health["last_heartbeat"],
        "scheduler": "off",  # `--role web`
        "source": "demo",
        "jobs": {},
        "leader": {"this_process": False, "process": None, "since": None, "seen": None, "current": False},
    }
    body = urlencode(
        {"command": "/lookout", "text": "policy", "user_id": "UANALYST", "team_id": "T1"}
    ).encode()
    timestamp = str(int(time.time()))
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": sign(SECRET, timestamp, body),
    }
    reply = httpx.post(f"{base}/slack/events", content=body, headers=headers).json()
    assert reply["text"].startswith("Devices are noncompliant with an open threat at high risk or above")
    assert (
        httpx.post(
            f"{base}/slack/events", content=body, headers={**headers, "x-slack-signature": "v0=0"}
        ).status_code
        == 401
    )
    metrics = httpx.get(f"{base}/metrics").text
    assert 'mesbot_commands_total{command="policy",outcome="ok"} 1.0' in metrics
    assert "mesbot_leader_seen_age_seconds +Inf" in metrics  # no worker runs: no leader
    assert "mesbot_duplicate_sends_total 0.0" in metrics
    assert "mesbot_outbox_oldest_due_seconds 0.0" in metrics
    assert [c.method for c in fake.calls] == ["users.info"]  # no auth.test before the first ack
