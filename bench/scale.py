"""Scale run (issue 10): delivery throughput with 1, 2 and 4 `mesbot serve --role worker` processes on
a store of 100,000 or 1,000,000 devices, on SQLite and PostgreSQL, and the peak RSS of
`mesbot serve --role all` at 100,000 devices.

    .venv/bin/python bench/scale.py                                   # 100,000 devices, both stores
    .venv/bin/python bench/scale.py --devices 100000 1000000 --workers 1 2 4 --alerts 5000

For each store and size: seed the demo tenant (`mesbot demo seed --devices N`), queue `--alerts` threat
alerts by e-mail in one transaction (`sync.apply`, storm folding off), start W workers at once and time
until a local SMTP server (aiosmtpd, plain SMTP so TLS does not hide mesbot's own cost) has every mail;
duplicates are counted by Message-ID. On SQLite DESIGN §2 allows one worker, so only W = 1 runs there.
Run by hand; tests never assert timings (PERFORMANCE.md).
"""

import argparse
import asyncio
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from integration import preferences, sync  # noqa: E402
from integration.access import sign_in  # noqa: E402
from integration.alerts import AlertPolicy  # noqa: E402
from integration.demo.data import ADMIN  # noqa: E402
from storage.engine import Store  # noqa: E402
from tests.integration.test_sync import clean_device, opened  # noqa: E402

MESBOT = str(Path(sys.executable).with_name("mesbot"))
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/mesbot_bench"


class Sink:
    """An SMTP server that only counts: the Message-ID of every mail it accepts."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.first = self.last = 0.0  # perf_counter of the first and the latest accepted mail
        self._parser = BytesParser(policy=default)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.original_content, bytes)
        head = envelope.original_content.split(b"\r\n\r\n", 1)[0]
        self.ids.append(str(self._parser.parsebytes(head, headersonly=True)["Message-ID"]))
        self.last = time.perf_counter()
        self.first = self.first or self.last
        return "250 OK"


@dataclass(frozen=True)
class Result:
    store: str
    devices: int
    workers: int
    alerts: int
    seconds: float  # from the workers' start to the last mail
    sending: float  # from the first mail to the last: start-up left out
    duplicates: int
    lost: int

    @property
    def rate(self) -> float:
        return (self.alerts - 1) / self.sending if self.sending > 0 else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(url: str, devices: int) -> float:
    started = time.perf_counter()
    env = {**os.environ, "MESBOT_DATABASE_URL": url}
    subprocess.run([MESBOT, "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [MESBOT, "demo", "seed", "--devices", str(devices)], env=env, check=True, stdout=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def queue_alerts(url: str, count: int) -> None:
    """`count` high-risk threats on one device, alerted by e-mail to the admin (no folding)."""
    store = Store(url)
    now = datetime.now(UTC)
    try:
        with store.write() as session:
            admin = sign_in(session, ADMIN)[0]
            preferences.set_preferences(
                session, admin.id, ("threat-high",), ("slack",), False, actor=ADMIN, at=now
            )
            device = clean_device(session)
            events = [opened(device.id, at=now, app=f"Scale {n}") for n in range(count)]
            sync.apply(session, events, now=now, policy=AlertPolicy(storm_threshold=0))
    finally:
        store.dispose()


def deliver(url: str, workers: int, alerts: int, workdir: Path) -> tuple[float, float, int, int]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    env = {
        **os.environ,
        "MESBOT_DATABASE_URL": url,
        "MESBOT_SMTP_HOST": "127.0.0.1",
        "MESBOT_SMTP_PORT": str(port),
        "MESBOT_SMTP_TLS": "none",
        "MESBOT_MAIL_FROM": "mesbot@contoso.example",
    }
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [MESBOT, "serve", "--role", "worker"], env=env, cwd=workdir, stderr=subprocess.DEVNULL
        )
        for _ in range(workers)
    ]
    try:
        deadline = time.monotonic() + 600
        while len(set(sink.ids)) < alerts and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        sending = sink.last - sink.first
        time.sleep(1.0)  # a late duplicate would arrive now
    finally:
        stop(processes)
        controller.stop()
    counts = Counter(sink.ids)
    # every alert mail goes to the admin; the start-up heartbeat may also mail the error address
    return elapsed, sending, sum(counts.values()) - len(counts), max(0, alerts - len(counts))


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL after a grace: a worker in the middle of a long job at 1,000,000 devices
    finishes that transaction first (a thread cannot be cancelled), which can take minutes."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            print(f"  a worker did not stop within {STOP_GRACE_SECONDS} s: killed", file=sys.stderr)
            process.kill()
            process.wait()


STOP_GRACE_SECONDS = 60


def peak_rss_serve_all(url: str, workdir: Path, settle: float) -> float:
    """MiB: VmHWM of `serve --role all` after its start-up jobs ran and `settle` seconds of serving."""
    port = free_port()
    env = {**os.environ, "MESBOT_DATABASE_URL": url, "MESBOT_HTTP_PORT": str(port)}
    process = subprocess.Popen(
        [MESBOT, "serve", "--role", "all"], env=env, cwd=workdir, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
                if {"source-sync", "enrollment-scan", "disconnected-sweep"} <= set(health.get("jobs", {})):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        for _ in range(int(settle * 10)):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            time.sleep(0.1)
        status = Path(f"/proc/{process.pid}/status").read_text()
        kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
        return kib / 1024
    finally:
        stop([process])


def fresh_postgres(url: str) -> None:
    """Drop and re-create the benchmark database (its name must end in `_bench`)."""
    base, _, name = url.rpartition("/")
    if not name.endswith("_bench"):
        raise SystemExit(f"refusing to wipe {name!r}: the PostgreSQL database's name must end in _bench")
    admin = Store(f"{base}/postgres")
    try:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[100_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--alerts", type=int, default=5_000)
    parser.add_argument(
        "--stores", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument(
        "--pg-url", default=PG_DEFAULT, help="wiped and re-created; its name must end in _bench"
    )
    parser.add_argument(
        "--rss-settle", type=float, default=10.0, help="seconds serving before reading peak RSS"
    )
    args = parser.parse_args()

    results: list[Result] = []
    seeds: list[tuple[str, int, float]] = []
    rss: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="mesbot-scale-") as tmp:
        workdir = Path(tmp)
        for store in args.stores:
            for devices in args.devices:
                if store == "sqlite":
                    url = f"sqlite:///{workdir / f'scale-{devices}.db'}"
                else:
                    url = args.pg_url
                    fresh_postgres(url)
                seeds.append((store, devices, seed(url, devices)))
                if devices == 100_000:
                    rss.append((store, devices, peak_rss_serve_all(url, workdir, args.rss_settle)))
                # DESIGN §2: on SQLite the same code runs with one worker
                for workers in args.workers if store == "postgresql" else [1]:
                    queue_alerts(url, args.alerts)
                    elapsed, sending, duplicates, lost = deliver(url, workers, args.alerts, workdir)
                    result = Result(store, devices, workers, args.alerts, elapsed, sending, duplicates, lost)
                    results.append(result)
                    rate = result.rate
                    print(
                        f"  {store} {devices:,} devices, {workers} worker(s): {rate:,.0f} mails/s",
                        file=sys.stderr,
                    )
    print(report(results, seeds, rss))


def report(
    results: list[Result], seeds: list[tuple[str, int, float]], rss: list[tuple[str, int, float]]
) -> str:
    lines = ["### Scale: alert mails delivered by N workers", ""]
    lines += [
        "| store | devices | workers | mails | mails/s | × one | start → last mail | dup. | lost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    single = {(r.store, r.devices): r.rate for r in results if r.workers == 1}
    for r in results:
        base = single.get((r.store, r.devices))
        speedup = f"{r.rate / base:.2f}×" if base else "—"
        cells = [
            r.store,
            f"{r.devices:,}",
            r.workers,
            f"{r.alerts:,}",
            f"{r.rate:,.0f}",
            speedup,
            f"{r.seconds:.1f} s",
        ]
        lines.append("| " + " | ".join(str(c) for c in [*cells, r.duplicates, r.lost]) + " |")
    lines += [
        "",
        "| store | devices | `demo seed` | peak RSS of `serve --role all` (target ≤ 250 MB at 100,000) |",
        "|---|---:|---:|---:|",
    ]
    peaks = {(s, d): mib for s, d, mib in rss}
    for store, devices, seconds in seeds:
        peak = peaks.get((store, devices))
        lines.append(f"| {store} | {devices:,} | {seconds:.1f} s | {f'{peak:.0f} MB' if peak else '—'} |")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    lines += ["", f"machine: {machine}; load average {load} at the end; this process's peak RSS {own:.0f} MB"]
    return "\n".join(lines)


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
