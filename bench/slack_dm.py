"""Slack DMs per second: `SlackSender.send_dm` of rendered threat alerts against the recording fake
Slack Web API (tests/slack/fake_slack.py, in a process of its own so it does not share the GIL).

    .venv/bin/python bench/slack_dm.py --dms 2000 --recipients 200

Each run is N alerts round-robin over R recipients: the first alert to each costs users.lookupByEmail
+ conversations.open + chat.postMessage, later ones only chat.postMessage (the DM channel is cached).
Rows: concurrency 1 and 8 (DMs in flight at once), with slack_sdk's default of a new aiohttp session
per call and with one shared session. Run by hand; tests never assert timings (PERFORMANCE.md). The
fake answers at once, so this measures mesbot's side (render + client + HTTP on loopback); real Slack
allows about one message a second per channel, which a deliverer spreads over many recipients.
"""

import argparse
import asyncio
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from integration.clock import FixedClock
from integration.config import Settings
from notifications.senders.slack import SlackSender
from notifications.slack_blocks import TurnOff, alert_blocks
from storage import migrate
from storage.engine import Store

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake Slack Web API lives with the tests
from tests.notifications.payloads import threat  # noqa: E402

FAKE = """
import sys, threading
sys.path.insert(0, sys.argv[1])
from tests.slack.fake_slack import FakeSlack, start
fake = FakeSlack(users={f"U{i}": f"user{i}@contoso.example" for i in range(int(sys.argv[2]))})
start(fake)
print(fake.url, flush=True)
sys.stdin.read()  # until the bench closes our stdin
"""


async def run(url: str, store: Store, dms: int, recipients: int, concurrency: int, shared: bool) -> float:
    session = aiohttp.ClientSession() if shared else None
    settings = Settings(SLACK_BOT_TOKEN="xoxb-bench", MESBOT_SLACK_API_URL=f"{url}/api/")
    sender = SlackSender.from_settings(settings, store, FixedClock(datetime.now(UTC)), session=session)
    assert sender is not None
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(dms):
        queue.put_nowait(index)
    failures = 0

    async def worker() -> None:
        nonlocal failures
        while not queue.empty():
            index = queue.get_nowait()
            payload = threat(name=f"<!channel> phone {index}", app="Flashlight & <b>")
            text, blocks = alert_blocks(payload, turn_off=TurnOff("threat-high", "t" * 90))
            outcome = await sender.send_dm(f"user{index % recipients}@contoso.example", text, blocks)
            failures += type(outcome).__name__ != "Sent"

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if session is not None:
        await session.close()
    if failures:
        raise SystemExit(f"{failures} DMs were not sent")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dms", type=int, default=2_000)
    parser.add_argument("--recipients", type=int, default=200)
    args = parser.parse_args()
    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE, str(ROOT), str(args.recipients)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert fake.stdout is not None
        url = fake.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as folder:
            store = Store(f"sqlite:///{folder}/bench.db")
            migrate.upgrade(store)
            calls = args.dms + 2 * args.recipients
            print(
                f"{args.dms:,} DMs to {args.recipients} recipients ({calls:,} Web API calls) · "
                f"Python {platform.python_version()} · {platform.machine()}\n"
            )
            print("| concurrency | aiohttp session | seconds | DMs/s |")
            print("|---:|---|---:|---:|")
            rates: dict[tuple[int, bool], float] = {}
            for concurrency in (1, 8):
                for shared in (False, True):
                    seconds = asyncio.run(run(url, store, args.dms, args.recipients, concurrency, shared))
                    kind = "one shared" if shared else "new per call (default)"
                    rates[concurrency, shared] = args.dms / seconds
                    print(f"| {concurrency} | {kind} | {seconds:.2f} | {args.dms / seconds:,.0f} |")
            print("\n| ratio | measured | target | ok? |\n|---|---:|---|---|")
            for concurrency in (1, 8):
                ratio = rates[concurrency, True] / rates[concurrency, False]
                name = f"Slack DMs, {concurrency} in flight: one shared session ÷ slack_sdk's default"
                print(f"| {name} | {ratio:.2f}× | — | — |")
            store.dispose()
    finally:
        if fake.stdin is not None:
            fake.stdin.close()
        fake.wait(timeout=10)


if __name__ == "__main__":
    main()
