"""Lookout source benchmark: events applied per second from a local SSE server, and a full sync's time.

    .venv/bin/python bench/lookout_stream.py
    .venv/bin/python bench/lookout_stream.py --url postgresql://postgres@127.0.0.1:5432/mesbot_bench

The fake Lookout of the tests (tests/sources/fake_lookout.py) runs in a child process, so its JSON
encoding does not share this process's interpreter lock. The stream runs: `--devices` devices are stored
first, then `--events` events are followed from the start with `StreamFollower.follow` exactly as
`mesbot sync` does it, and timed from the first request to the last commit — once for each share in
`--threats`: that share of the events open a HIGH threat on a random device, the others are device
updates that change its security status. The full-sync run lists `--full-devices` devices and one threat
per ten devices over HTTP (1,000 per page) into an empty store, and removes nothing. Prints a markdown
table and a line about the machine. Run by hand; tests never assert timings (PERFORMANCE.md).
"""

import argparse
import asyncio
import gc
import multiprocessing
import os
import platform
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.cli import GC_THRESHOLDS  # noqa: E402
from integration import sync, tenant  # noqa: E402
from integration.alerts import AlertPolicy  # noqa: E402
from integration.clock import SystemClock  # noqa: E402
from integration.sources import lookout_events  # noqa: E402
from integration.sources.follow import StreamFollower  # noqa: E402
from integration.sources.full_sync import full_sync  # noqa: E402
from integration.sources.lookout import LookoutClient  # noqa: E402
from integration.sources.lookout_http import LookoutHTTP  # noqa: E402
from storage import migrate  # noqa: E402
from storage.engine import Store  # noqa: E402
from tests.sources.conftest import (  # noqa: E402
    lookout_device,
    lookout_device_event,
    lookout_threat,
    lookout_threat_event,
)
from tests.sources.fake_lookout import FakeLookout  # noqa: E402

KEY = "bench-key"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events streamed (default 100000)")
    parser.add_argument("--devices", type=int, default=10_000, help="devices stored before the stream")
    parser.add_argument("--full-devices", type=int, default=100_000, help="devices listed by the full sync")
    parser.add_argument("--frame", type=int, default=100, help="events per SSE frame (default 100)")
    parser.add_argument(
        "--threats",
        type=float,
        nargs="+",
        default=[0.8, 0.0],
        help="share of events that open a new threat, one stream run each (default 0.8 0: threat-heavy, "
        "then device updates only)",
    )
    parser.add_argument("--url", default=None, help="PostgreSQL URL (default: a temporary SQLite file)")
    return parser.parse_args()


def stream_events(count: int, devices: int, threats: float = 0.8) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [
        lookout_threat_event(n, threat=n, device=rng.randrange(1, devices + 1))
        if rng.random() < threats
        else lookout_device_event(
            n, rng.randrange(1, devices + 1), security=rng.choice(("SECURE", "THREATS_HIGH"))
        )
        for n in range(1, count + 1)
    ]


def full_listing(devices: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return [lookout_device(n) for n in range(1, devices + 1)], [
        lookout_threat(n, device=n * 10) for n in range(1, devices // 10 + 1)
    ]


def serve_fake(listening: socket.socket, args: argparse.Namespace, threats: float) -> None:
    import uvicorn

    fake = FakeLookout(key=KEY, frame_size=args.frame, heartbeat_seconds=0.5)
    fake.events = stream_events(args.events, args.devices, threats)
    fake.devices, fake.threats = full_listing(args.full_devices)
    config = uvicorn.Config(fake.app(), log_level="critical", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[listening])


def fresh_store(url: str | None, folder: Path, name: str) -> Store:
    if url is None:
        store = Store(f"sqlite:///{folder}/{name}.db")
    else:
        store = Store(url)
        with store.engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(store)
    with store.write() as session:
        tenant.ensure_defaults(session)
    return store


def client(url: str) -> LookoutClient:
    return LookoutClient(LookoutHTTP(url, KEY), heartbeat_timeout=15.0)


async def time_stream(store: Store, url: str, args: argparse.Namespace) -> tuple[float, int, int]:
    with store.write() as session:
        sync.apply(
            session,
            [lookout_events.device(lookout_device(n)) for n in range(1, args.devices + 1)],
            now=SystemClock().now(),
        )
    source = client(url)
    follower = StreamFollower(store, source, clock=SystemClock(), policy=AlertPolicy())
    started = time.perf_counter()
    try:
        done = await follower.follow(until_idle=True, max_seconds=3_600)
    finally:
        await source.close()
    return time.perf_counter() - started, done.events, done.transactions


async def time_full_sync(store: Store, url: str) -> tuple[float, int]:
    source = client(url)
    started = time.perf_counter()
    try:
        summary = await full_sync(store, source, now=SystemClock().now, policy=AlertPolicy())
    finally:
        await source.close()
    return time.perf_counter() - started, summary.added


def start_fake(args: argparse.Namespace, threats: float) -> tuple[multiprocessing.process.BaseProcess, str]:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = multiprocessing.get_context("fork").Process(
        target=serve_fake, args=(listening, args, threats), daemon=True
    )
    server.start()
    url = f"http://127.0.0.1:{listening.getsockname()[1]}"
    # The child builds its data before it listens; a stream started earlier would be timed through the
    # client's connection retries (a fixed sleep was too short for 100,000 listed devices).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/mra/api/v2/devices", timeout=5)  # 401 without a token: it is up
            return server, url
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the fake Lookout did not start within 120 s")


def main() -> None:
    args = parse_args()
    gc.set_threshold(*GC_THRESHOLDS)  # as every `mesbot` command runs (bot/cli.py)
    backend = "PostgreSQL" if args.url else "SQLite"
    target = 10_000 if backend == "SQLite" else 5_000
    print(f"| measure ({backend}) | value | target | ok? |\n|---|---:|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for run, threats in enumerate(args.threats):
            server, url = start_fake(args, threats)
            try:
                store = fresh_store(args.url, Path(folder), f"stream-{run}")
                seconds, events, transactions = asyncio.run(time_stream(store, url, args))
                store.dispose()
                rate = events / seconds
                print(
                    f"| stream: {events:,} events applied, {threats:.0%} new threats, the rest device "
                    f"updates ({transactions:,} transactions, {args.frame} per frame) "
                    f"| {rate:,.0f} events/s | ≥ {target:,}/s | {'yes' if rate >= target else '**NO**'} |"
                )
                if run == 0:
                    store = fresh_store(args.url, Path(folder), "full")
                    full_seconds, added = asyncio.run(time_full_sync(store, url))
                    store.dispose()
            finally:
                server.terminate()
    print(
        f"| full sync: {added:,} devices + {added // 10:,} threats listed and applied "
        f"| {full_seconds:.1f} s | ≤ 60 s | {'yes' if full_seconds <= 60 else '**NO**'} |"
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    python = f"{platform.python_implementation()} {platform.python_version()}"
    print(f"\n{python}, {os.cpu_count()} cores, load {load}")


if __name__ == "__main__":
    main()
