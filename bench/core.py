"""Core benchmark: seed the demo tenant at a given size, then time console commands in process.

    .venv/bin/python bench/core.py --devices 1000000
    .venv/bin/python bench/core.py --devices 1000000 --url postgresql://postgres@127.0.0.1:5432/mesbot_bench

It seeds with `integration.demo.seed.seed` in one write transaction (timed), then calls
`Console.run` as the demo admin: warm-up first, then `--samples` calls per read command and fewer
(but at least 20 previews and 10 applies) for `risk set` and `policy set`. It prints a markdown table
and a line describing the machine and the store. `--reuse` times the commands on a store seeded by an
earlier run (`--db PATH` or `--url`) without seeding again. Run by hand; tests never assert timings
(PERFORMANCE.md).
"""

import argparse
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, text
from sqlmodel import col, select

from bot.console import Console
from integration import tenant
from integration.clock import FixedClock
from integration.demo import data
from integration.demo.seed import seed
from integration.levels import RiskLevel
from storage import migrate
from storage.engine import Store
from storage.models import Device, DirectoryUser, Threat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.table import HEADER, MS, Row, Target  # noqa: E402

ADMIN = data.ADMIN
WARMUP = 20
GROUP = f'group "{data.MOBILE_GROUP}"'
READ = Target("p99", 50)
CHANGE = Target("p99", 300)
POLICY_LEVELS = (RiskLevel.HIGH, RiskLevel.MEDIUM, RiskLevel.LOW)  # `none` is no policy level

# Classifications previewed and applied: several categories and default levels.
CHANGED = ("TROJAN", "ROOT_JAILBREAK", "PHISHING_CONTENT", "OUT_OF_DATE_OS", "ADWARE", "ROGUE_WIFI")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--devices", type=int, default=100_000, help="devices to seed (default 100000)")
    parser.add_argument("--users", type=int, default=None, help="directory users (default devices × 0.8)")
    parser.add_argument("--seed", type=int, default=42, help="demo seed (default 42)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temporary file)")
    where.add_argument("--url", default=None, help="PostgreSQL URL; every mesbot table in it is wiped")
    parser.add_argument("--reuse", action="store_true", help="time an already seeded --db/--url store")
    parser.add_argument("--samples", type=int, default=500, help="calls per read command (default 500)")
    parser.add_argument("--previews", type=int, default=50, help="previews per command (default 50, ≥ 20)")
    parser.add_argument("--applies", type=int, default=20, help="applies per command (default 20, ≥ 10)")
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="stop a row after this many seconds (marked 'capped'): for timing a slow old version",
    )
    args = parser.parse_args(argv)
    if args.users is None:
        args.users = max(3, int(args.devices * 0.8))
    if args.samples < 500 or args.previews < 20 or args.applies < 10:
        parser.error("take at least 500 samples, 20 previews and 10 applies")
    if args.reuse and not (args.db or args.url):
        parser.error("--reuse needs --db or --url")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    scratch = None
    if args.url:
        url = args.url
    else:
        if args.db is None:
            scratch = tempfile.TemporaryDirectory(prefix="mesbot-bench-")
            args.db = Path(scratch.name) / "bench.db"
        url = f"sqlite:///{args.db}"
    store = Store(url)
    try:
        rows = [] if args.reuse else [seed_store(store, args)]
        rows += measure(store, args)
        print_report(store, args, rows)
    finally:
        store.dispose()
        if scratch is not None:
            scratch.cleanup()


def seed_store(store: Store, args: argparse.Namespace) -> Row:
    """Seed as `mesbot demo seed` does (schema, one write transaction, then VACUUM ANALYZE on
    PostgreSQL), timed as a whole."""
    started = time.perf_counter()
    migrate.upgrade(store)
    with store.write() as session:
        tenant.ensure_defaults(session)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    step = max(args.devices // 10, 1)

    def progress(done: int, total: int) -> None:
        if done % step < 5_000 or done == total:
            print(f"  seeded {done:,}/{total:,} devices", file=sys.stderr, flush=True)

    with store.write() as session:
        seed(session, users=args.users, devices=args.devices, seed=args.seed, now=now, progress=progress)
    store.vacuum_analyze()
    elapsed = time.perf_counter() - started
    print(f"  seed committed in {elapsed:.1f} s", file=sys.stderr, flush=True)
    return Row(f"demo seed ({args.devices:,} devices)", [elapsed], Target("max", 60 * MS))


def measure(store: Store, args: argparse.Namespace) -> list[Row]:
    console = Console(store, FixedClock(datetime.now(UTC)))

    def timed(texts: Iterator[str], count: int, check: Callable[[str, dict[str, object]], None]) -> Row:
        seconds: list[float] = []
        deadline = time.perf_counter() + args.budget if args.budget else None
        for _ in range(count):
            command = next(texts)
            started = time.perf_counter()
            reply = console.run(ADMIN, command)
            seconds.append(time.perf_counter() - started)
            if not reply.ok:
                raise SystemExit(f"`{command}` was refused: {reply.text}")
            check(command, reply.data)
            if deadline is not None and time.perf_counter() > deadline:
                return Row("", seconds, None, capped=True)
        return Row("", seconds, None)

    def row(label: str, texts: Iterator[str], count: int, target: Target, check: Check = _no_check) -> Row:
        print(f"  timing {label}", file=sys.stderr, flush=True)
        timed(texts, min(WARMUP, max(count // 10, 3)), _no_check)
        done = timed(texts, count, check)
        return Row(label, done.seconds, target, done.capped)

    owners = _owner_sample(store, args.seed, args.samples + WARMUP)
    rows = [row("status EMAIL", _cycle([f"status {email}" for email in owners]), args.samples, READ)]
    for command in (
        "enrollment",
        f"enrollment {GROUP}",
        "enrollment pending",
        f"enrollment pending {GROUP}",
        "enrollment disconnected",
        f"enrollment disconnected {GROUP}",
        "risk list",
        "policy",
        "connector",
        "audit",
    ):
        rows.append(row(command, _cycle([command]), args.samples, READ))

    levels, policy = _current(store)
    risk_previews = [f"risk set {name} {_other(levels[name]).value}" for name in CHANGED]
    rows.append(row("risk set X LEVEL (preview)", _cycle(risk_previews), args.previews, CHANGE, _is_preview))
    rows.append(row("risk set X LEVEL --yes", _risk_applies(levels), args.applies, CHANGE, _is_applied))
    policy_previews = [f"policy set {level.value}" for level in POLICY_LEVELS if level is not policy]
    rows.append(
        row("policy set LEVEL (preview)", _cycle(policy_previews), args.previews, CHANGE, _is_preview)
    )
    rows.append(row("policy set LEVEL --yes", _policy_applies(policy), args.applies, CHANGE, _is_applied))
    return rows


Check = Callable[[str, dict[str, object]], None]


def _no_check(_command: str, _data: dict[str, object]) -> None:
    return None


def _is_preview(command: str, data: dict[str, object]) -> None:
    if "applied" in data:
        raise SystemExit(f"`{command}` changed nothing to preview: {data}")


def _is_applied(command: str, data: dict[str, object]) -> None:
    if data.get("applied") is not True:
        raise SystemExit(f"`{command}` applied nothing: {data}")


def _cycle(texts: list[str]) -> Iterator[str]:
    while True:
        yield from texts


def _owner_sample(store: Store, seed_value: int, count: int) -> list[str]:
    """Distinct device owners, a seeded random sample of them (repeating only if there are too few)."""
    with store.read() as session:
        emails: list[str] = sorted(session.exec(select(col(Device.owner_email)).distinct()).all())
    if not emails:
        raise SystemExit("the store has no devices to look up")
    rng = random.Random(seed_value)
    picked = rng.sample(emails, min(count, len(emails)))
    return picked * (count // len(picked)) + picked[: count % len(picked)]


def _current(store: Store) -> tuple[dict[str, RiskLevel], RiskLevel]:
    with store.read() as session:
        return tenant.risk_levels(session), tenant.policy_level(session)


def _other(level: RiskLevel) -> RiskLevel:
    """A different level, so the change always does something."""
    return RiskLevel.MEDIUM if level is RiskLevel.HIGH else RiskLevel.HIGH


def _risk_applies(levels: dict[str, RiskLevel]) -> Iterator[str]:
    """Each classification to another level and back, so every apply really changes something."""
    while True:
        for name in CHANGED:
            yield f"risk set {name} {_other(levels[name]).value} --yes"
            yield f"risk set {name} {levels[name].value} --yes"


def _policy_applies(policy: RiskLevel) -> Iterator[str]:
    """The policy to each other level and back."""
    while True:
        for level in POLICY_LEVELS:
            if level is not policy:
                yield f"policy set {level.value} --yes"
                yield f"policy set {policy.value} --yes"


def store_size(store: Store, args: argparse.Namespace) -> str:
    if store.is_sqlite:
        files = [args.db, Path(f"{args.db}-wal")]
        size = sum(f.stat().st_size for f in files if f.exists())
        return f"SQLite file, {size / 2**20:,.0f} MiB (WAL included)"
    with store.engine.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar_one()
        size = connection.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    host = store.engine.url.host
    return f"PostgreSQL {version.split()[0]} at {host}, database {int(size) / 2**20:,.0f} MiB"


def print_report(store: Store, args: argparse.Namespace, rows: list[Row]) -> None:
    with store.read() as session:
        devices, users, threats = (
            session.exec(select(func.count()).select_from(model)).one()
            for model in (Device, DirectoryUser, Threat)
        )
    print(f"\n### mesbot core benchmark: {devices:,} devices, {users:,} users, {threats:,} threats\n")
    print(HEADER)
    for row in rows:
        print(row.markdown())
    print(
        f"\nMachine: {os.cpu_count()} cores ({platform.machine()}, {platform.system()}), "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
        f"store: {store_size(store, args)}. In process through `Console.run` as {ADMIN}; "
        "warm-up calls before each row; p50/p99 by nearest rank. Load average at the end: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + " (other processes inflate p99)."
    )


if __name__ == "__main__":
    main()
