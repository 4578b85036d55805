"""Scale-out on PostgreSQL (issue 10), measured with real `mesbot serve --role worker` processes:

- delivery throughput with 1, 2 and 3 workers (5,000 alert mails to a local aiosmtpd, plain SMTP on
  the loopback), and whether any key arrived twice;
- take-over: seconds from the leader's SIGKILL (or `pg_terminate_backend` of its lock session) until
  the store names another leader.

    .venv/bin/python bench/scale_out.py --url postgresql://postgres@127.0.0.1:5432/mesbot_bench

It works in a schema of its own (`mesbot_bench_scale_out`, dropped and made again). Run by hand;
tests never assert timings (PERFORMANCE.md).
"""

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.controller import Controller
from sqlalchemy import text
from sqlmodel import col, func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the SMTP recorder and the payloads live with the tests
from integration import tenant  # noqa: E402
from integration.access import sign_in  # noqa: E402
from integration.demo import seed as demo_seed  # noqa: E402
from integration.demo.data import ADMIN  # noqa: E402
from storage import fleet, migrate, outbox  # noqa: E402
from storage.engine import Store  # noqa: E402
from storage.models import OutboxMessage  # noqa: E402
from storage.states import OutboxState  # noqa: E402
from tests.notifications.payloads import threat  # noqa: E402
from tests.notifications.smtp_server import Inbox  # noqa: E402

MESBOT = str(Path(sys.executable).with_name("mesbot"))
SCHEMA = "mesbot_bench_scale_out"
STARTUP_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_store(url: str) -> Store:
    separator = "&" if "?" in url else "?"
    store = Store(f"{url}{separator}options=-csearch_path%3D{SCHEMA}")
    with store.engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    migrate.upgrade(store)
    with store.write() as session:
        tenant.ensure_defaults(session)
        demo_seed.seed(session, users=60, devices=150, seed=7, now=datetime.now(UTC))
    return store


class Workers:
    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder, self.running = env, folder, list[subprocess.Popen[bytes]]()

    def start(self, n: int) -> None:
        for _ in range(n):
            self.running.append(
                subprocess.Popen(
                    [MESBOT, "serve", "--role", "worker"],
                    env=self.env,
                    cwd=self.folder,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def stop(self) -> None:
        for worker in self.running:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.running:
            worker.wait(timeout=30)
        self.running.clear()

    def by_pid(self, pid: int) -> subprocess.Popen[bytes]:
        return next(w for w in self.running if w.pid == pid)


def enqueue(store: Store, count: int, tag: str) -> None:
    now = datetime.now(UTC)
    with store.write() as session:
        admin = sign_in(session, ADMIN)[0]
        outbox.enqueue(
            session,
            [
                outbox.NewMessage(
                    key=f"{tag}-{n}",
                    recipient_id=admin.id,
                    channel="email",
                    category="threat-high",
                    payload=dict(threat(threat_id=f"thr-{tag}-{n}")),
                    available_at=now,
                    expires_at=now + timedelta(hours=1),
                )
                for n in range(count)
            ],
            now,
        )


def sent(store: Store, tag: str) -> int:
    with store.read() as session:
        query = select(func.count()).where(
            col(OutboxMessage.idempotency_key).startswith(f"{tag}-"), OutboxMessage.state == OutboxState.SENT
        )
        return int(session.exec(query).one())


def leader(store: Store) -> str | None:
    with store.read() as session:
        record = fleet.leader(session)
        return record.process if record else None


def throughput(store: Store, workers: Workers, inbox: Inbox, n: int, mails: int) -> tuple[float, int]:
    tag = f"w{n}"
    workers.start(n)
    time.sleep(STARTUP_SECONDS)  # started and idle: the rows are timed from their commit
    before = len(inbox.received)
    started = time.monotonic()
    enqueue(store, mails, tag)
    while sent(store, tag) < mails:
        time.sleep(0.05)
    seconds = time.monotonic() - started
    workers.stop()
    ids = Counter(raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0] for raw in inbox.received[before:])
    return mails / seconds, sum(c - 1 for c in ids.values() if c > 1)


def takeover(store: Store, workers: Workers, how: str) -> float:
    while (current := leader(store)) is None:
        time.sleep(0.05)
    time.sleep(1)
    if how == "SIGKILL":
        victim = workers.by_pid(int(current.rsplit(":", 1)[1]))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        workers.running.remove(victim)
    else:
        with store.engine.begin() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"),
                {"n": f"mesbot leader {current}"},
            )
    at = time.monotonic()
    while leader(store) in (current, None):
        time.sleep(0.02)
    seconds = time.monotonic() - at
    if how == "SIGKILL":
        workers.start(1)  # keep three
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True, help="a PostgreSQL database URL")
    parser.add_argument("--mails", type=int, default=5_000)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    store = fresh_store(args.url)
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    folder = Path(tempfile.mkdtemp())
    env = {
        **os.environ,
        "MESBOT_DATABASE_URL": store.given_url,
        "MESBOT_SMTP_HOST": "127.0.0.1",
        "MESBOT_SMTP_PORT": str(port),
        "MESBOT_SMTP_TLS": "none",
        "MESBOT_MAIL_FROM": "mesbot@contoso.example",
    }
    workers = Workers(env, folder)
    try:
        rates = {n: throughput(store, workers, inbox, n, args.mails) for n in (1, 2, 3)}
        workers.start(3)
        kills = [takeover(store, workers, "SIGKILL") for _ in range(args.trials)]
        drops = [takeover(store, workers, "terminate") for _ in range(args.trials)]
    finally:
        workers.stop()
        controller.stop()
        store.dispose()

    print(f"| workers | mails/s ({args.mails:,} mails, commit → all sent) | ÷ one worker | duplicates |")
    print("|---:|---:|---:|---:|")
    for n, (rate, duplicates) in rates.items():
        print(f"| {n} | {rate:,.0f} | {rate / rates[1][0]:.2f}× | {duplicates} |")
    print()
    print("| leader lost by | trials | median | max | target |")
    print("|---|---:|---:|---:|---|")
    for how, times in (("SIGKILL", kills), ("pg_terminate_backend", drops)):
        print(f"| {how} | {len(times)} | {statistics.median(times):.1f} s | {max(times):.1f} s | ≤ 30 s |")
    load = os.getloadavg()[0]
    print(
        f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load {load:.1f}; PostgreSQL"
    )


if __name__ == "__main__":
    main()
