"""A real `mesbot serve --role worker` delivering threat alerts over STARTTLS to a real SMTP server is
killed (SIGKILL) mid-batch and started again: nothing is lost, and no alert arrives more than twice
(DESIGN §2: a crash may re-send at most once)."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlmodel import col, func, select

from integration import preferences, sync
from integration.access import sign_in
from integration.alerts import AlertPolicy
from integration.demo.data import ADMIN
from storage.engine import Store
from storage.models import OutboxMessage
from storage.states import OutboxState
from tests.conftest import make_store, seed_demo
from tests.integration.test_sync import clean_device, opened
from tests.notifications.smtp_server import Certificates, Inbox

MESBOT = str(Path(sys.executable).with_name("mesbot"))
ALERTS = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _email_states(store_url: str) -> Counter[OutboxState]:
    store = Store(store_url)  # reads only: the worker may be writing
    try:
        with store.read() as session:
            rows = session.exec(
                select(OutboxMessage.state, func.count())
                .where(OutboxMessage.channel == "email")
                .group_by(col(OutboxMessage.state))
            ).all()
        return Counter({OutboxState(state): n for state, n in rows})
    finally:
        store.dispose()


def test_a_worker_killed_mid_delivery_loses_nothing_and_duplicates_at_most_once(tmp_path: Path) -> None:
    store = make_store("sqlite", tmp_path)
    seed_demo(store)
    now = datetime.now(UTC)
    with store.write() as session:  # alerts by e-mail only (Slack is not configured here)
        admin = sign_in(session, ADMIN)[0]
        preferences.set_preferences(
            session, admin.id, ("threat-high",), ("slack",), False, actor=ADMIN, at=now
        )
        device = clean_device(session)
        events = [opened(device.id, at=now, app=f"App {n}") for n in range(ALERTS)]
        sync.apply(session, events, now=now, policy=AlertPolicy(storm_threshold=0))  # no folding
    url = store.given_url
    store.dispose()

    certificates = Certificates()
    ca_file = tmp_path / "ca.pem"
    certificates.ca.cert_pem.write_to_path(str(ca_file))
    recorder = Inbox(delay=0.02)  # slow enough that a batch can be interrupted
    port = _free_port()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, tls_context=certificates.server_context(), ready_timeout=10
    )
    controller.start()
    env = {
        **os.environ,
        "MESBOT_DATABASE_URL": url,
        "MESBOT_SMTP_HOST": "127.0.0.1",
        "MESBOT_SMTP_PORT": str(port),
        "MESBOT_SMTP_TLS": "starttls",
        "MESBOT_MAIL_FROM": "mesbot@contoso.example",
        "MESBOT_OUTBOX_LEASE_SECONDS": "5",
        "SSL_CERT_FILE": str(ca_file),
    }

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [MESBOT, "serve", "--role", "worker"], env=env, cwd=tmp_path, stderr=subprocess.PIPE
        )

    try:
        first = worker()
        deadline = time.monotonic() + 60
        while len(recorder.received) < 40:
            assert first.poll() is None, first.stderr.read() if first.stderr else b""
            assert time.monotonic() < deadline, "the worker sent nothing"
            time.sleep(0.01)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
        killed_at = len(recorder.received)
        assert killed_at < ALERTS, "the batch finished before the kill: nothing was tested"
        assert _email_states(url)[OutboxState.CLAIMED] > 0  # the dead worker's claim

        second = worker()
        try:
            deadline = time.monotonic() + 60
            while _email_states(url)[OutboxState.SENT] < ALERTS:
                assert second.poll() is None, second.stderr.read() if second.stderr else b""
                assert time.monotonic() < deadline, f"not all sent: {_email_states(url)}"
                time.sleep(0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            _, stderr = second.communicate(timeout=20)
        assert b"Traceback" not in stderr
    finally:
        controller.stop()

    parser = BytesParser(policy=default)
    mails = [parser.parsebytes(raw) for raw in recorder.received]
    # the alerts (the worker's start-up heartbeat may also mail the error address about the gap)
    ids = Counter(str(m["Message-ID"]) for m in mails if m["To"] == ADMIN)
    assert len(ids) == ALERTS  # every alert arrived
    assert max(ids.values()) <= 2  # at most one duplicate per key
    assert sum(ids.values()) - ALERTS <= 100  # only the batch in flight at the kill can repeat
