"""`notify test` through the real delivery path, as `mesbot ask` runs it: a mail over STARTTLS to a real
SMTP server and a Slack DM through the (fake) Web API, and an answer per channel."""

import json
import os
import socket
import subprocess
import sys
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import make_store, seed_demo
from tests.notifications.smtp_server import Certificates, Inbox
from tests.slack.fake_slack import FakeSlack, start

MESBOT = str(Path(sys.executable).with_name("mesbot"))
ADMIN = "admin@contoso.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ask(env: dict[str, str], cwd: Path, text: str) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [MESBOT, "ask", "--as", ADMIN, "--json", text], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def test_notify_test_sends_on_each_channel_the_user_has_on_and_says_how_it_went(tmp_path: Path) -> None:
    store = make_store("sqlite", tmp_path)
    seed_demo(store)
    store.dispose()
    certificates = Certificates()
    ca_file = tmp_path / "ca.pem"
    certificates.ca.cert_pem.write_to_path(str(ca_file))
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=certificates.server_context())
    controller.start()
    fake = FakeSlack(users={"UADMIN": ADMIN})
    slack = start(fake)
    env = {
        **os.environ,
        "MESBOT_DATABASE_URL": f"sqlite:///{tmp_path}/mesbot.db",
        "MESBOT_SMTP_HOST": "127.0.0.1",
        "MESBOT_SMTP_PORT": str(port),
        "MESBOT_MAIL_FROM": "mesbot@contoso.example",
        "SSL_CERT_FILE": str(ca_file),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "MESBOT_SLACK_API_URL": f"{fake.url}/api/",
    }
    try:
        code, answer = _ask(env, tmp_path, "notify test")  # the demo admin has threat-high on both
        assert (code, answer["ok"], answer["data"]["sent"]) == (0, True, {"email": "ok", "slack": "ok"})
        mail = BytesParser(policy=default).parsebytes(inbox.received[0])
        assert mail["To"] == ADMIN and mail["Subject"].startswith("[mesbot] Test")
        assert [c.method for c in fake.calls] == [
            "users.lookupByEmail",
            "conversations.open",
            "chat.postMessage",
        ]

        controller.stop()  # the relay goes away: the answer says so, and the command is not "ok"
        code, answer = _ask(env, tmp_path, "notify test")
        assert code == 1 and answer["data"]["sent"]["slack"] == "ok"
        assert answer["data"]["sent"]["email"] == "error"  # DESIGN §5: ok | error
        assert "tried again" in answer["data"]["details"]["email"] and "tried again" in answer["text"]

        _ask(env, tmp_path, "notify all off")
        code, answer = _ask(env, tmp_path, "notify test")
        assert code == 1 and "nothing to test" in answer["text"]
    finally:
        if controller.loop.is_running():
            controller.stop()
        slack.shutdown()
        slack.server_close()
