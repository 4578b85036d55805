"""Mail throughput: alert mails over STARTTLS to a local aiosmtpd, mesbot's `SmtpSender` side by side
with what other notifiers do, in one run.

    .venv/bin/pip install apprise     # for this benchmark only: not a mesbot dependency
    .venv/bin/python bench/mail.py --mails 10000

Rows (all send the same rendered threat alerts, one recipient each, STARTTLS with a trustme certificate):

- (a) one new SMTP connection per mail (smtplib: connect, STARTTLS, send, QUIT), as most scripts and
  Alertmanager-style notifiers do;
- (b) Apprise (`mailto://…?mode=starttls`), one `notify()` per mail — with its default throttle (5.5 s
  between notifications to one service; timed on a few mails) and with the throttle turned off;
- (c) raw aiosmtplib on one reused connection, sending mails already built as bytes: the floor;
- mesbot: `render_mail` + `SmtpSender.send` in batches (one connection per batch), i.e. templates,
  MIME building and the send path, everything the deliverer does but the outbox bookkeeping.

The SMTP server runs in its own process (one core for it, one for the sender), accepts everything and
throws it away; the (c) row is its ceiling check. Run by hand; tests never assert timings.
"""

import argparse
import asyncio
import multiprocessing
import os
import platform
import smtplib
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from integration.config import Settings  # noqa: E402
from integration.messages import ThreatAlert  # noqa: E402
from notifications.outcome import Sent  # noqa: E402
from notifications.render import Mail, render_mail  # noqa: E402
from notifications.senders.email import SmtpSender  # noqa: E402
from notifications.senders.mime import mail_bytes  # noqa: E402

SENDER = "mesbot@contoso.example"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
CLASSIFICATIONS = [("TROJAN", "app"), ("ROOT_JAILBREAK", "device"), ("ACTIVE_MITM", "network")]


def _serve(ready: Any, certfile: str, keyfile: str) -> None:
    """The sink: aiosmtpd with STARTTLS that accepts every mail and keeps nothing."""
    from aiosmtpd.smtp import SMTP

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 2.0.0 Ok"

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Sink(), hostname="bench.test", tls_context=context), "127.0.0.1", 0
        )
        ready.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(main())


def payloads(count: int) -> list[ThreatAlert]:
    alerts: list[ThreatAlert] = []
    for n in range(count):
        classification, category = CLASSIFICATIONS[n % len(CLASSIFICATIONS)]
        alerts.append(
            {
                "kind": "threat",
                "threat_id": f"thr-{n:06d}",
                "device_id": f"dev-{n % 1500:05d}",
                "device_name": f"Pixel 8 of user {n % 1500}",
                "owner_email": f"user{n % 1500}@contoso.example",
                "platform": "ANDROID",
                "classification": classification,
                "category": category,
                "risk": "high",
                "app_name": f"Flashlight Pro {n}" if category == "app" else None,
                "detected_at": (NOW + timedelta(seconds=n)).isoformat().replace("+00:00", "Z"),
            }
        )
    return alerts


def render_all(alerts: Sequence[ThreatAlert]) -> list[Mail]:
    return [
        render_mail(
            alert,
            to="admin@contoso.example",
            recipient_name="Ada Admin",
            unsubscribe_url=f"http://127.0.0.1:3000/unsubscribe?token=bench{n}.sig",
            key=f"{alert['threat_id']}:admin:email",
        )
        for n, alert in enumerate(alerts)
    ]


@dataclass
class Result:
    name: str
    mails: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.mails / self.seconds


def timed(name: str, mails: int, run: Callable[[], object]) -> Result:
    started = time.perf_counter()
    run()
    result = Result(name, mails, time.perf_counter() - started)
    print(f"  {name}: {result.rate:,.0f} mails/s", file=sys.stderr, flush=True)
    return result


def new_connection_per_mail(port: int, context: ssl.SSLContext, messages: Sequence[bytes]) -> None:
    for data in messages:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.starttls(context=context)
            smtp.sendmail(SENDER, ["admin@contoso.example"], data)


def apprise_mails(port: int, mails: Sequence[Mail], *, throttle: bool) -> None:
    import apprise

    url = f"mailto://127.0.0.1:{port}?mode=starttls&verify=no&from={SENDER}&to=admin@contoso.example"
    plugin = apprise.Apprise.instantiate(url)
    assert plugin is not None, "Apprise did not accept the mailto URL"
    if not throttle:
        plugin.request_rate_per_sec = 0
    notifier = apprise.Apprise()
    notifier.add(plugin)
    for mail in mails:
        if not notifier.notify(body=mail.html, title=mail.subject, body_format=apprise.NotifyFormat.HTML):
            raise RuntimeError("Apprise failed to send")


async def raw_reused_connection(port: int, context: ssl.SSLContext, messages: Sequence[bytes]) -> None:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=True, tls_context=context)
    await smtp.connect()
    for data in messages:
        await smtp.sendmail(SENDER, ["admin@contoso.example"], data)
    await smtp.quit()


async def mesbot(port: int, context: ssl.SSLContext, alerts: Sequence[ThreatAlert], batch: int) -> None:
    settings = Settings(MESBOT_SMTP_HOST="127.0.0.1", MESBOT_SMTP_PORT=port, MESBOT_MAIL_FROM=SENDER)
    sender = SmtpSender(settings, ssl_context=context)
    for start in range(0, len(alerts), batch):
        outcomes = await sender.send(render_all(alerts[start : start + batch]))
        if not all(isinstance(outcome, Sent) for outcome in outcomes):
            raise RuntimeError(f"mesbot did not send everything: {outcomes[:3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mails", type=int, default=10_000, help="mails per row (default 10,000)")
    parser.add_argument("--apprise-mails", type=int, default=1_000, help="mails for Apprise, throttle off")
    parser.add_argument("--apprise-throttled-mails", type=int, default=3, help="… with its default throttle")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the SMTP rows, taken in turn")
    parser.add_argument("--batch", type=int, default=100, help="mesbot's batch size (one connection each)")
    args = parser.parse_args()

    import trustme

    ca = trustme.CA()
    folder = Path(tempfile.mkdtemp(prefix="mesbot-bench-mail-"))
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    context = ssl.create_default_context(cafile=str(cafile))

    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Queue()
    server = spawn.Process(target=_serve, args=(ready, str(certfile), str(keyfile)), daemon=True)
    server.start()
    port = int(ready.get(timeout=30))

    alerts = payloads(args.mails)
    mails = render_all(alerts)
    messages = [mail_bytes(mail, sender=SENDER, now=NOW) for mail in mails]
    warm = max(50, args.mails // 100)
    print(f"warming up, then {args.mails:,} mails per row", file=sys.stderr)
    asyncio.run(raw_reused_connection(port, context, messages[:warm]))
    asyncio.run(mesbot(port, context, alerts[:warm], args.batch))

    # Rounds, the three SMTP rows in turn: on a shared machine each row meets the same noise.
    share = args.mails // args.rounds
    rounds: list[tuple[str, Callable[[int], object]]] = [
        ("(c) raw aiosmtplib, one connection", lambda r: asyncio.run(
            raw_reused_connection(port, context, messages[r * share : (r + 1) * share]))),
        (f"mesbot SmtpSender, batches of {args.batch}", lambda r: asyncio.run(
            mesbot(port, context, alerts[r * share : (r + 1) * share], args.batch))),
        ("(a) new connection per mail (smtplib)", lambda r: new_connection_per_mail(
            port, context, messages[r * share : (r + 1) * share])),
    ]  # fmt: skip
    totals = {name: Result(name, 0, 0.0) for name, _ in rounds}
    throttled = mails[: args.apprise_throttled_mails]
    try:
        for number in range(args.rounds):
            for name, run in rounds:
                result = timed(f"{name} (round {number + 1})", share, lambda: run(number))  # noqa: B023
                totals[name].mails += result.mails
                totals[name].seconds += result.seconds
        apprise_fast = timed(
            "(b) Apprise, throttle off",
            args.apprise_mails,
            lambda: apprise_mails(port, mails[: args.apprise_mails], throttle=False),
        )
        apprise_default = timed(
            "(b) Apprise, default throttle",
            len(throttled),
            lambda: apprise_mails(port, throttled, throttle=True),
        )
    finally:
        server.terminate()
        server.join()
    floor, ours, per_mail = totals.values()

    print()
    print("| ratio | measured | target | ok? |\n|---|---:|---|---|")
    for name, versus, target in [
        ("mesbot ÷ (a) new connection per mail", per_mail, 3.0),
        ("mesbot ÷ (b) Apprise, throttle off", apprise_fast, 20.0),
        ("mesbot ÷ (b) Apprise, default throttle", apprise_default, None),
        ("mesbot ÷ (c) raw aiosmtplib floor", floor, 0.90),
    ]:
        ratio = ours.rate / versus.rate
        shown = f"{ratio:.0%}" if target is not None and target < 1 else f"{ratio:,.1f}×"
        goal = "—" if target is None else (f"≥ {target:.0%}" if target < 1 else f"≥ {target:g}×")
        ok = "—" if target is None else ("yes" if ratio >= target else "**NO**")
        print(f"| {name} | {shown} | {goal} | {ok} |")
    print()
    print("| sender | mails | seconds | mails/s |\n|---|---:|---:|---:|")
    for row in (ours, per_mail, apprise_fast, apprise_default, floor):
        print(f"| {row.name} | {row.mails:,} | {row.seconds:.1f} | {row.rate:,.1f} |")
    print()
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"aiosmtplib {aiosmtplib.__version__}; aiosmtpd sink in its own process on loopback, "
        f"STARTTLS with a trustme certificate; {args.rounds} rounds, the SMTP rows in turn."
    )


if __name__ == "__main__":
    main()
