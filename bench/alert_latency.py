"""Time from a threat's commit to its alert mail and Slack DM, with the worker idle (issue #8's target:
p50 ≤ 1 s, p99 ≤ 5 s in `serve --role all`).

    .venv/bin/python bench/alert_latency.py --alerts 40

Two rows per channel:

- *in process*: the scheduler and deliverer run here as `serve` runs them (real channels: a local
  aiosmtpd over STARTTLS with trustme certificates, the recording fake Slack Web API); each threat is
  committed through `sync.apply` by a job-like step that rings the doorbell, as the source stream does
  in `serve`. This is the path real threats take.
- *another process*: a real `mesbot serve --role all` and threats injected by `mesbot demo threat`, a
  separate process: no doorbell reaches the server, so its one-query look at the outbox every
  `DELIVER_POLL_SECONDS` finds them.

A threat is committed only when the previous one's mail and DM have arrived (the worker is idle).
Run by hand; tests never assert timings (PERFORMANCE.md).
"""

import argparse
import asyncio
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlmodel import col, select

from integration import sync
from integration.clock import SystemClock
from integration.config import Settings
from integration.demo import seed as demo_seed
from notifications import jobs, wiring
from notifications.scheduler import Scheduler
from storage import migrate
from storage.engine import Store
from storage.models import Device, OutboxMessage
from storage.states import ActivationStatus, ProtectionStatus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake Slack Web API and the test certificates live with the tests
from tests.integration.test_sync import opened  # noqa: E402
from tests.notifications.smtp_server import Certificates  # noqa: E402
from tests.slack.fake_slack import FakeSlack, start  # noqa: E402

MESBOT = str(Path(sys.executable).with_name("mesbot"))
MARKER = re.compile(rb"benchapp[0-9]+x")  # each alert's app name: unique, and unchanged by any escaping


class Arrivals:
    """When each alert's mail and DM arrived (wall clock, as the outbox stamps rows), by its app name."""

    def __init__(self) -> None:
        self.mail: dict[str, float] = {}
        self.dm: dict[str, float] = {}
        self.changed = threading.Condition()

    def arrived(self, where: dict[str, float], threat_id: str) -> None:
        with self.changed:
            where.setdefault(threat_id, time.time())
            self.changed.notify_all()

    def wait_for(self, threat_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while threat_id not in self.mail or threat_id not in self.dm:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"alert for {threat_id} did not arrive")
                self.changed.wait(left)


class Inbox:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        found = MARKER.search(envelope.original_content or b"")
        if found:
            self.arrivals.arrived(self.arrivals.mail, found.group(0).decode())
        return "250 OK"


class TimedSlack(FakeSlack):
    arrivals: Arrivals | None = None

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if path.endswith("chat.postMessage") and self.arrivals is not None:
            for marker in MARKER.findall(str(body.get("blocks", "")).encode()):
                self.arrivals.arrived(self.arrivals.dm, marker.decode())
        return super().answer(path, body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def activated_devices(store: Store) -> list[str]:
    with store.read() as session:
        query = select(Device.id).where(
            Device.activation_status == ActivationStatus.ACTIVATED,
            Device.protection_status == ProtectionStatus.PROTECTED,
        )
        return list(session.exec(query.order_by(col(Device.id))).all())


def in_process(store: Store, env: dict[str, str], arrivals: Arrivals, count: int) -> list[float]:
    os.environ.update(env)
    settings = Settings()
    deps = wiring.deps(settings, store, SystemClock())
    devices = activated_devices(store)
    waits: list[float] = []

    async def run() -> None:
        scheduler = Scheduler(deps)
        scheduler.start()
        try:
            for n in range(count):
                await asyncio.sleep(0.3)  # idle
                marker = f"benchapp{n}x"
                threat = opened(devices[n % len(devices)], at=datetime.now(UTC), app=marker)
                await asyncio.to_thread(commit, store, threat, deps.policy)
                committed = time.time()
                deps.ring()  # what the source-sync job does after a commit that queued alerts
                await asyncio.to_thread(arrivals.wait_for, marker)
                waits.append(max(arrivals.mail[marker], arrivals.dm[marker]) - committed)
        finally:
            await scheduler.stop()

    asyncio.run(run())
    return waits


def queued_at(store: Store, marker: str) -> float:
    with store.read() as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.channel == "email")).all()
        return min(r.created_at.timestamp() for r in rows if r.payload.get("app_name") == marker)


def commit(store: Store, threat: Any, policy: Any) -> None:
    with store.write() as session:
        sync.apply(session, [threat], now=datetime.now(UTC), policy=policy)


def another_process(
    store: Store, env: dict[str, str], arrivals: Arrivals, count: int, cwd: Path
) -> list[float]:
    port = free_port()
    full_env = {**os.environ, **env, "MESBOT_HTTP_PORT": str(port)}
    server = subprocess.Popen([MESBOT, "serve"], env=full_env, cwd=cwd, stderr=subprocess.DEVNULL)
    devices = activated_devices(store)
    waits: list[float] = []
    try:
        time.sleep(3)  # start-up
        for n in range(count):
            time.sleep(0.3)
            marker = f"benchapp{1000 + n}x"
            device = devices[-1 - n]
            inject = ["demo", "threat", "--device", device, "--classification", "TROJAN", "--app", marker]
            subprocess.run([MESBOT, *inject], env=full_env, cwd=cwd, capture_output=True, check=True)
            arrivals.wait_for(marker)
            committed = queued_at(store, marker)  # stamped by the CLI just before its commit
            waits.append(max(arrivals.mail[marker], arrivals.dm[marker]) - committed)
    finally:
        server.terminate()
        server.wait(timeout=20)
    return waits


def row(name: str, waits: list[float]) -> str:
    ordered = sorted(waits)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    ok = "yes" if p50 <= 1 and p99 <= 5 else "NO"
    return f"| {name} | {len(waits)} | {p50 * 1000:.0f} ms | {p99 * 1000:.0f} ms | {ok} |"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--alerts", type=int, default=40)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="mesbot-latency-"))
    store = Store(f"sqlite:///{folder}/mesbot.db")
    migrate.upgrade(store)
    with store.write() as session:
        demo_seed.seed(session, users=1_200, devices=1_500, seed=42, now=datetime.now(UTC))

    arrivals = Arrivals()
    certificates = Certificates()
    ca_file = folder / "ca.pem"
    certificates.ca.cert_pem.write_to_path(str(ca_file))
    smtp_port = free_port()
    controller = Controller(
        Inbox(arrivals), hostname="127.0.0.1", port=smtp_port, tls_context=certificates.server_context()
    )
    controller.start()
    fake = TimedSlack(users={"UADMIN": "admin@contoso.example"})
    fake.arrivals = arrivals
    slack = start(fake)
    env = {
        "MESBOT_DATABASE_URL": store.given_url,
        "MESBOT_SMTP_HOST": "127.0.0.1",
        "MESBOT_SMTP_PORT": str(smtp_port),
        "MESBOT_MAIL_FROM": "mesbot@contoso.example",
        "SSL_CERT_FILE": str(ca_file),
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "MESBOT_SLACK_API_URL": f"{fake.url}/api/",
        "MESBOT_STORM_THRESHOLD": "0",  # every alert its own message
    }
    try:
        local = in_process(store, env, arrivals, args.alerts)
        remote = another_process(store, env, arrivals, max(args.alerts // 2, 5), folder)
    finally:
        controller.stop()
        slack.shutdown()
    print(
        f"Commit → mail (STARTTLS) and Slack DM, both arrived; SQLite, 1,500 devices; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}; deliverer poll {jobs.DELIVER_POLL_SECONDS:g} s\n"
    )
    print("| path | alerts | p50 | p99 | p50 ≤ 1 s, p99 ≤ 5 s |")
    print("|---|---:|---:|---:|---|")
    print(row("in process (woken on commit, as `serve` with the source stream)", local))
    print(row("another process (`mesbot demo threat` → `serve`: outbox look every second)", remote))


if __name__ == "__main__":
    main()
