"""Slack ack latency: signed `/lookout status EMAIL` over HTTP to `mesbot serve`, side by side with
bare Bolt apps on the same server stack (uvicorn + Starlette + Bolt's async adapter) that ack the same
request with a constant reply.

    .venv/bin/python bench/slack_ack.py --devices 100000

Each server runs in its own process; requests go one at a time over loopback, round-robin across the
servers so they share the machine's noise; then 16 clients (`--clients`) load each server in turn, in
rounds. A fake Slack Web API answers `users.info`/`auth.test`
(mesbot caches the e-mail, so the measured path is verify → parse → query → Block Kit). Run by hand;
tests never assert timings (PERFORMANCE.md).
"""

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import httpx
from sqlmodel import col, select

from bot.console import Console
from bot.slack.answer import render
from bot.slack.verify import sign
from integration.clock import SystemClock
from storage.engine import Store
from storage.models import Device

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the fake Slack Web API lives with the tests
from tests.slack.fake_slack import FakeSlack, start  # noqa: E402

SECRET = "bench-signing-secret"
ROUNDS = 5  # of the concurrent run: `--samples` requests per server per round
MESBOT = str(Path(sys.executable).with_name("mesbot"))

BARE_APP = """
import sys
import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.routing import Route

import json

inline = sys.argv[3] != "default"
reply = json.loads(open(sys.argv[5]).read()) if sys.argv[3] == "inline-blocks" else {"text": "ok"}
client = AsyncWebClient(token="xoxb-bench", base_url=sys.argv[2])
app = AsyncApp(client=client, signing_secret=sys.argv[4], process_before_response=inline)

@app.command("/lookout")
async def on_command(ack):
    await ack(**reply)

handler = AsyncSlackRequestHandler(app)

async def events(request):
    return await handler.handle(request)

web = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
uvicorn.run(web, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, path: str = "/slack/events") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}{path}", content=b"", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server on port {port} did not start")


def seed(db: Path, devices: int) -> None:
    env = {**os.environ, "MESBOT_DATABASE_URL": f"sqlite:///{db}"}
    users = max(3, int(devices * 0.8))
    subprocess.run(
        [MESBOT, "demo", "seed", "--devices", str(devices), "--users", str(users)], env=env, check=True
    )


def owners(db: Path, count: int) -> list[str]:
    store = Store(f"sqlite:///{db}")
    with store.read() as session:
        rows = session.exec(
            select(Device.owner_email).distinct().order_by(col(Device.owner_email)).limit(count)
        )
        return list(rows.all())


def typical_reply(db: Path, email: str) -> dict[str, object]:
    """What mesbot acks for one `status EMAIL`, for the bare app to send as a constant: isolates
    the cost of the payload (Block Kit JSON through the same stack) from the cost of the lookup."""
    console = Console(Store(f"sqlite:///{db}"), SystemClock())
    return render(console.run("admin@contoso.example", f"status {email}"))


def command_body(email: str, fake_url: str) -> bytes:
    return urlencode(
        {
            "command": "/lookout",
            "text": f"status {email}",
            "user_id": "UADMIN",
            "team_id": "T1",
            "channel_id": "C1",
            "trigger_id": uuid.uuid4().hex,
            "response_url": f"{fake_url}/response/x",
        }
    ).encode()


def signed(body: bytes) -> dict[str, str]:
    """The headers Slack would send with `body`."""
    timestamp = str(int(time.time()))
    return {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-request-timestamp": timestamp,
        "x-slack-signature": sign(SECRET, timestamp, body),
    }


def send(client: httpx.Client, port: int, body: bytes) -> float:
    headers = signed(body)
    started = time.perf_counter()
    response = client.post(f"http://127.0.0.1:{port}/slack/events", content=body, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"port {port} answered {response.status_code}: {response.text[:200]}")
    return elapsed * 1000


async def _concurrent(port: int, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    """`clients` keep-alive connections sending `bodies` between them as fast as answers come:
    (seconds it took, latencies in ms).

    A few lines of HTTP/1.1 over asyncio streams, with every request signed before the clock starts,
    rather than httpx: httpx's async client spends ~2 ms of CPU a request, so with 16 clients on this
    2-core machine it was the bottleneck — every server measured the same ~350 requests/s and a p99
    of ~250 ms, the bare app included — and shared the cores with the server it was measuring."""
    queue = [_request(port, body) for body in reversed(bodies)]
    latencies: list[float] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status, length = _status_and_length(head)
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    raise SystemExit(f"port {port} answered {status}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started, latencies


def _request(port: int, body: bytes) -> bytes:
    headers = {**signed(body), "host": f"127.0.0.1:{port}", "content-length": str(len(body))}
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST /slack/events HTTP/1.1\r\n{lines}\r\n".encode() + body


def _status_and_length(head: bytes) -> tuple[int, int]:
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    length = next(
        (int(line.split(":", 1)[1]) for line in header_lines if line.lower().startswith("content-length:")),
        None,
    )
    if length is None:  # uvicorn sends Content-Length for every Starlette response; chunked is not read here
        raise SystemExit(f"answer without Content-Length: {head[:200]!r}")
    return int(status_line.split()[1]), length


def concurrent(port: int, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    return asyncio.run(_concurrent(port, bodies, clients))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients in the second run")
    parser.add_argument("--db", type=Path, default=None, help="an already seeded SQLite file to reuse")
    args = parser.parse_args()

    fake = FakeSlack(users={"UADMIN": "admin@contoso.example"})
    fake_server = start(fake)
    workdir = Path(tempfile.mkdtemp(prefix="mesbot-bench-"))
    db = args.db or workdir / "mesbot.db"
    if args.db is None:
        print(f"seeding {args.devices:,} devices …", file=sys.stderr)
        seed(db, args.devices)
    emails = owners(db, 500)

    bare_modes = {
        "bare Bolt, default": "default",
        "bare Bolt, inline": "inline",
        "bare Bolt, inline, mesbot's reply as a constant": "inline-blocks",
    }
    servers: dict[str, int] = {name: free_port() for name in ("mesbot serve", *bare_modes)}
    env = {
        **os.environ,
        "MESBOT_DATABASE_URL": f"sqlite:///{db}",
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "MESBOT_SLACK_API_URL": f"{fake.url}/api/",
        "MESBOT_HTTP_PORT": str(servers["mesbot serve"]),
    }
    script = workdir / "bare_app.py"
    script.write_text(BARE_APP)
    reply = workdir / "reply.json"
    reply.write_text(json.dumps(typical_reply(db, emails[0])))
    api = f"{fake.url}/api/"
    processes = [
        subprocess.Popen([MESBOT, "serve", "--role", "web"], env=env, cwd=workdir, stdout=subprocess.DEVNULL),
        *(
            subprocess.Popen([sys.executable, str(script), str(servers[name]), api, mode, SECRET, str(reply)])
            for name, mode in bare_modes.items()
        ),
    ]
    try:
        for port in servers.values():
            wait_ready(port)
        samples: dict[str, list[float]] = {name: [] for name in servers}
        with httpx.Client() as client:
            for n in range(50):  # warm-up: caches, connections, first auth.test
                for port in servers.values():
                    send(client, port, command_body(emails[n % len(emails)], fake.url))
            for n in range(args.samples):
                body = command_body(emails[n % len(emails)], fake.url)
                for name, port in servers.items():
                    samples[name].append(send(client, port, body))
        # in rounds, each server in turn, so that they share the machine's noise as the sequential
        # run does (one burst per server, one after another, differed by 10 % between two runs of
        # the same bare app)
        spent: dict[str, float] = dict.fromkeys(servers, 0.0)
        latencies: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(ROUNDS):
            for name, port in servers.items():
                bodies = [command_body(emails[n % len(emails)], fake.url) for n in range(args.samples)]
                seconds, round_latencies = concurrent(port, bodies, args.clients)
                spent[name] += seconds
                latencies[name] += round_latencies
        loaded = {name: (len(latencies[name]) / spent[name], latencies[name]) for name in servers}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
        fake_server.shutdown()
        fake_server.server_close()

    inline_p50 = statistics.median(samples["bare Bolt, inline"])
    default_p50 = statistics.median(samples["bare Bolt, default"])
    mesbot = samples["mesbot serve"]
    print(f"\n## Slack ack latency, signed `/lookout status EMAIL`, {args.devices:,}-device SQLite store\n")
    print(
        f"mesbot p50 / bare inline p50 = {statistics.median(mesbot) / inline_p50:.2f}×; "
        f"mesbot p50 / bare default p50 = {statistics.median(mesbot) / default_p50:.2f}×\n"
    )
    mesbot_p99, inline_p99 = percentile(mesbot, 99), percentile(samples["bare Bolt, inline"], 99)
    print(f"mesbot p99 / bare inline p99 = {mesbot_p99 / inline_p99:.2f}×\n")
    print("| server | samples | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    for name, values in samples.items():
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.2f} "
            f"| {percentile(values, 99):.2f} | {max(values):.2f} |"
        )
    bare_rate = loaded["bare Bolt, inline"][0]
    concurrent_p99 = percentile(loaded["mesbot serve"][1], 99)
    ratios = [
        ("Slack ack p50: mesbot ÷ bare inline Bolt", statistics.median(mesbot) / inline_p50, "≤ 1.5×", 1.5),
        ("Slack ack p99: mesbot ÷ bare inline Bolt", mesbot_p99 / inline_p99, "≤ 2×", 2.0),
    ]
    print("| ratio | measured | target | ok? |\n|---|---:|---|---|")
    for name, ratio, goal, limit in ratios:
        print(f"| {name} | {ratio:.2f}× | {goal} | {'yes' if ratio <= limit else '**NO**'} |")
    rate_ratio = loaded["mesbot serve"][0] / bare_rate
    print(
        f"| Slack ack, {args.clients} clients: mesbot ÷ bare inline throughput | {rate_ratio:.2f}× | ≥ 0.5× "
        f"| {'yes' if rate_ratio >= 0.5 else '**NO**'} |"
    )
    print(
        f"| Slack ack, {args.clients} clients: mesbot p99 (bare inline: "
        f"{percentile(loaded['bare Bolt, inline'][1], 99):.0f} ms) | {concurrent_p99:.0f} ms | < 100 ms "
        f"| {'yes' if concurrent_p99 < 100 else '**NO**'} |"
    )
    print(f"\n### {args.clients} concurrent clients\n")
    print(f"mesbot throughput / bare inline throughput = {loaded['mesbot serve'][0] / bare_rate:.2f}\n")
    print("| server | requests | requests/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|")
    for name, (rate, values) in loaded.items():
        print(
            f"| {name} | {len(values)} | {rate:,.0f} | {statistics.median(values):.2f} "
            f"| {percentile(values, 99):.2f} |"
        )
    print(
        f"\nmachine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}; "
        "client: httpx, one request at a time over loopback, round-robin across servers (the concurrent run: "
        "raw keep-alive HTTP/1.1 over asyncio, requests signed beforehand); load average "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} at the end (load over the core count inflates "
        "the server doing more work per request most)"
    )


if __name__ == "__main__":
    main()
