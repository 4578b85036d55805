"""How long a directory refresh from Microsoft Graph takes, and how long it holds the store's write lock.

    .venv/bin/python bench/graph_refresh.py --members 100000 --devices 100000

The fake Graph + Entra server from the tests (real HTTPS on loopback, pages of 999 members and 1,000
managed devices, as Graph sends them) serves an enrollment group of `--members` users and `--devices`
managed devices, each matching a Lookout device by `external_id`. Timed, on a SQLite file:

- the first refresh (every user and membership inserted, the tally triggers counting each),
- the same directory again (nothing to write),
- 1 % of the members replaced (as many leave as join),

each with its total time, the number of write transactions and the longest one (the time other writers
wait at most). Run by hand; tests never assert timings (PERFORMANCE.md).
"""

import argparse
import asyncio
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the fake Graph and the test certificates live with the tests
from integration import tenant  # noqa: E402
from integration.sources import directory_sync  # noqa: E402
from storage import migrate  # noqa: E402
from storage.engine import Store  # noqa: E402
from storage.models import EnrollmentGroup  # noqa: E402
from tests.sources.fake_graph import FakeGraph, start  # noqa: E402
from tests.sources.graph_fixtures import Tls, client  # noqa: E402

GROUP = "g-mobile"


class TimedStore(Store):
    """A store that remembers how long each write transaction was open."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.writes: list[float] = []

    @contextmanager
    def write(self) -> Iterator[Session]:
        started = time.perf_counter()
        with super().write() as session:
            yield session
        self.writes.append(time.perf_counter() - started)


def directory(fake: FakeGraph, members: int, first: int = 0) -> None:
    fake.users.clear()
    ids = [f"u{n:07d}" for n in range(first, first + members)]
    for user_id in ids:
        fake.add_user(user_id, f"{user_id}@contoso.example", f"User {user_id}")
    fake.add_group(GROUP, "Mobile Users", *ids)


def lookout_devices(path: str, count: int, now: datetime) -> None:
    """Lookout devices for the first `count` members, each with its Intune id (sqlite3: fast to load)."""
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    rows = [
        (
            f"dev-{n}",
            f"u{n:07d}@contoso.example",
            "IOS",
            "ACTIVATED",
            "PROTECTED",
            "SECURE",
            stamp,
            stamp,
            f"md-{n}",
        )
        for n in range(count)
    ]
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO device (id, owner_email, platform, activation_status, protection_status, "
            "security_status, checkin_time, enrolled_at, external_id, open_classifications) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            rows,
        )


async def timed(store: TimedStore, fake: FakeGraph, tls: Tls) -> tuple[float, int, float, str]:
    store.writes = []
    requests = len(fake.requests)
    started = time.perf_counter()
    async with client(fake, tls) as graph:
        result = await directory_sync.refresh(store, graph, datetime.now(UTC))
    took = time.perf_counter() - started
    assert result.ok, result.summary()
    return took, len(store.writes), max(store.writes), f"{len(fake.requests) - requests} requests"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=100_000)
    args = parser.parse_args()
    tls = Tls()
    fake = FakeGraph()
    fake.page_size = 999
    server = start(fake, tls.server_context())
    folder = tempfile.mkdtemp(prefix="mesbot-graph-bench-")
    path = os.path.join(folder, "mesbot.db")
    store = TimedStore(f"sqlite:///{path}")
    migrate.upgrade(store)
    now = datetime.now(UTC)
    with store.write() as session:
        tenant.ensure_defaults(session)
        session.add(EnrollmentGroup(name="Mobile Users", added_at=now))
    directory(fake, args.members)
    fake.connector = {"partnerState": "enabled", "lastHeartbeatDateTime": now.isoformat()}
    lookout_devices(path, min(args.devices, args.members), now - timedelta(hours=1))
    fake.devices = [
        {"id": f"md-{n}", "complianceState": "compliant", "partnerReportedThreatState": "secured"}
        for n in range(args.devices)
    ]
    rows = []
    for label, change in (
        (f"first refresh ({args.members:,} members, {args.devices:,} managed devices)", None),
        ("the same directory again", None),
        ("1 % of the members replaced", args.members // 100),
    ):
        if change:
            directory(fake, args.members, first=change)
        took, writes, longest, requests = asyncio.run(timed(store, fake, tls))
        rows.append(f"| {label} | {took:.2f} s | {writes} | {longest * 1000:.0f} ms | {requests} |")
    server.shutdown()
    print("\n### Directory refresh from Graph (fake Graph over HTTPS on loopback), SQLite file\n")
    print("| refresh | total | write transactions | longest write transaction | Graph + Entra requests |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nMachine: {os.cpu_count()} cores ({platform.machine()}, {platform.system()}), Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}; load average at the end: {load}."
    )


if __name__ == "__main__":
    main()
