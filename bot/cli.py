"""The `mesbot` command line (DESIGN.md §4). Every `MesbotError` a command raises ends as its
message on stderr and exit code 1, never as a traceback.

What only one command needs (the shell, the demo seed, the web server, Alembic) is imported by that
command: `mesbot ask` is a whole process per question, and its start-up is most of what it costs.
"""

import gc
import json
import secrets
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from bot.console import Console, SendNow
from integration import tenant
from integration.clock import Clock, SystemClock
from integration.config import Settings
from integration.errors import MesbotError
from integration.text import neutralise, neutralise_lines
from storage import faults, migrate
from storage.engine import Store


class Runtime:
    """Settings, store and the clock, built once per invocation when a command needs them."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._store: Store | None = None
        self.clock: Clock = SystemClock()

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = Settings()
            except ValidationError as error:
                raise click.ClickException(f"Bad configuration: {_first_error(error)}") from None
        return self._settings

    @property
    def store(self) -> Store:
        if self._store is None:
            store = Store(self.settings.database_url)
            if store.is_memory:
                store.dispose()
                raise faults.in_memory(store.given_url)
            self._store = store
        return self._store

    def ready_store(self) -> Store:
        if not migrate.is_current(self.store):
            raise click.ClickException(
                "The store is not set up or is out of date: run `mesbot db upgrade` "
                "(or `mesbot demo seed` for the demo tenant)."
            )
        return self.store


def _first_error(error: ValidationError) -> str:
    first = error.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"


pass_runtime = click.make_pass_decorator(Runtime, ensure=True)


class MesbotGroup(click.Group):
    """Turns a `MesbotError` from any command (a store fault, a refusal) into click's one-line
    `Error: …` and exit code 1: its message is written for the user, a traceback is not."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MesbotError as error:
            raise click.ClickException(neutralise_lines(str(error))) from error
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:  # a bug: one line for the user, the traceback kept for whoever fixes it
            raise click.ClickException(_crash_report(error)) from None


def _crash_report(error: Exception) -> str:
    reference = secrets.token_hex(4)
    report = Path(tempfile.gettempdir()) / f"mesbot-crash-{reference}.txt"
    try:
        report.write_text("".join(traceback.format_exception(error)), encoding="utf-8")
        where = f"the details are in {report}"
    except OSError:
        where = "the details could not be written down"
    return f"Something went wrong inside mesbot (reference {reference}); {where}. Please report it."


# CPython runs a young-generation pass of its cyclic garbage collector every 700 net allocations. A
# batch apply keeps thousands of rows alive at once, so each pass walked them again and again: 19% of
# a threat-heavy stream's time (bench/lookout_stream.py, 80% new threats: 12,900 → 15,000 events/s
# with 10,000). Almost nothing mesbot allocates is cyclic; reference counting frees it either way.
GC_THRESHOLDS = (10_000, 10, 10)


@click.group(cls=MesbotGroup)
def main() -> None:
    """mesbot: the ops bot for Lookout Mobile Endpoint Security with Microsoft Intune."""
    gc.set_threshold(*GC_THRESHOLDS)


@main.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@pass_runtime
def db_upgrade(runtime: Runtime) -> None:
    """Create or migrate the schema."""
    _upgrade(runtime.store)
    click.echo("Store is up to date.")


def _upgrade(store: Store) -> None:
    migrate.upgrade(store)
    with store.write() as session:
        tenant.ensure_defaults(session)


@main.group()
def demo() -> None:
    """The built-in simulated tenant."""


@demo.command("seed")
@click.option(
    "--users",
    type=click.IntRange(3, 5_000_000),
    default=None,
    help="Directory users  [default: 0.8 per device, at least 3]",
)
@click.option("--devices", type=click.IntRange(0, 5_000_000), default=1_500, show_default=True)
@click.option("--seed", "seed_value", type=int, default=42, show_default=True)
@pass_runtime
def demo_seed_command(runtime: Runtime, users: int | None, devices: int, seed_value: int) -> None:
    """(Re)build the deterministic demo tenant."""
    from rich.progress import Progress

    from integration.demo import seed as demo_seed

    if users is None:
        users = demo_seed.default_users(devices)
    store = runtime.store
    _upgrade(store)
    now = runtime.clock.now().replace(minute=0, second=0, microsecond=0)
    with Progress(transient=True, disable=devices < 20_000) as bar:
        task = bar.add_task("Seeding devices", total=devices)
        with store.write() as session:
            summary = demo_seed.seed(
                session,
                users=users,
                devices=devices,
                seed=seed_value,
                now=now,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
    click.echo(
        f"Demo tenant ready: {summary.users:,} users, {summary.devices:,} devices, "
        f"{summary.threats:,} threats "
        f"(seed {seed_value}). Try: mesbot ask --as admin@contoso.example enrollment"
    )


@demo.command("threat")
@click.option("--device", "device_id", required=True, help="Device ID (see `status EMAIL`).")
@click.option("--classification", required=True, help="e.g. TROJAN, ROOT_JAILBREAK.")
@click.option("--app", default=None, help="Application name the threat reports.")
@click.option("--count", type=int, default=None, help="Inject N threats, app names ending #1 … #N.")
@pass_runtime
def demo_threat_command(
    runtime: Runtime, device_id: str, classification: str, app: str | None, count: int | None
) -> None:
    """Inject OPEN threats as if the device had reported them."""
    from integration import sync
    from integration.demo import threats as demo_threats
    from integration.sync import ThreatReport
    from notifications import wiring

    now = runtime.clock.now()
    with runtime.ready_store().write() as session:
        events = demo_threats.inject(
            session,
            device_id=device_id,
            classification=classification,
            app=app,
            count=1 if count is None else count,  # `--count 0` is refused, not read as 1
            numbered=count is not None,
            now=now,
        )
        applied = sync.apply(session, events, now=now, policy=wiring.policy(runtime.settings))
        ids = [e.id for e in events if isinstance(e, ThreatReport)]
    click.echo(
        f"Injected {len(ids)} OPEN threat{'s' if len(ids) != 1 else ''} on {device_id}: {', '.join(ids[:5])}"
        + (" …" if len(ids) > 5 else "")
        + (f"; {applied.alerts} alert(s) queued (`mesbot serve` sends them)" if applied.alerts else "")
    )


@demo.command("run")
@click.option("--hours", type=int, default=24, show_default=True, help="Simulated hours to run forward.")
@pass_runtime
def demo_run_command(runtime: Runtime, hours: int) -> None:
    """Run the demo tenant HOURS forward with every job, on an accelerated clock; print what happened."""
    import asyncio

    from notifications import demo_run

    store = runtime.ready_store()
    summary = asyncio.run(demo_run.run(runtime.settings, store, hours))
    for line in demo_run.report(summary):
        click.echo(neutralise_lines(line))


# Unknown options pass through as words, so `ask … risk set TROJAN low --yes` reaches the grammar.
@main.command("ask", context_settings={"ignore_unknown_options": True})
@click.option("--as", "email", required=True, help="Directory user to act as.")
@click.option("--json", "as_json", is_flag=True, help="Print {ok, text, data} as JSON.")
@click.argument("text", nargs=-1)
@pass_runtime
def ask(runtime: Runtime, email: str, as_json: bool, text: tuple[str, ...]) -> None:
    """Run one bot command as EMAIL and print the reply (exit 1 when refused)."""
    console = Console(runtime.ready_store(), runtime.clock, send_now=_send_now(runtime))
    reply = console.run(email, _join(text))
    shown = neutralise_lines(reply.text)  # no control or bidi character reaches a terminal or a log
    if as_json:
        click.echo(_json_for_a_terminal({**reply.as_json(), "text": shown}))
    else:
        click.echo(shown)
    sys.exit(0 if reply.ok else 1)


def _send_now(runtime: Runtime) -> SendNow:
    def send(keys: tuple[str, ...]) -> dict[str, tuple[bool, str]]:
        from notifications.send_now import send_now  # only `notify test` pays for the notifier's imports

        return send_now(runtime.settings, runtime.store, runtime.clock, keys)

    return send


def _json_for_a_terminal(value: dict[str, Any]) -> str:
    """`data` keeps the raw names scripts need. JSON escapes C0 controls itself but not C1 or bidi
    characters, so those are written as `\\u` escapes too: the same value once parsed, inert on a tty."""
    dumped = json.dumps(value, ensure_ascii=False)
    if dumped.isprintable():
        return dumped
    return "".join(ch if neutralise(ch) == ch else json.dumps(ch)[1:-1] for ch in dumped)


def _join(words: tuple[str, ...]) -> str:
    """The command line as the grammar reads it (DESIGN §4): one argument is the text exactly as
    typed after `/lookout` (`ask … "risk list"`); several are words the shell already split, each
    re-quoted so `ask … connector groups add "Mobile Users"` keeps the name whole."""
    if len(words) == 1:
        return words[0]
    return " ".join(_quoted(word) for word in words)


def _quoted(word: str) -> str:
    if word and not any(ch.isspace() for ch in word):
        return word
    for opening, closing in (('"', '"'), ("'", "'"), ("“", "”")):
        if closing not in word:
            return f"{opening}{word}{closing}"
    return word  # every kind of quote inside: the grammar refuses it with usage


@main.command("shell")
@click.option("--as", "email", default=None, help="Directory user to start as.")
@pass_runtime
def shell(runtime: Runtime, email: str | None) -> None:
    """Interactive console with the bot grammar; `as EMAIL` switches user."""
    from bot.shell import run_shell

    run_shell(Console(runtime.ready_store(), runtime.clock, send_now=_send_now(runtime)), email)


@main.command("serve")
@click.option("--role", type=click.Choice(["all", "web", "worker"]), default="all", show_default=True)
@pass_runtime
def serve_command(runtime: Runtime, role: str) -> None:
    """The service: HTTP (Slack, /healthz, /metrics, /unsubscribe), the scheduler and the deliverer."""
    import asyncio
    import logging

    from bot.serve import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # it logs each run; jobs log their own
    store, settings = runtime.ready_store(), runtime.settings
    if role == "worker":
        click.echo("mesbot worker: scheduler and deliverer running (no HTTP)")
    else:
        click.echo(f"mesbot serving on http://{settings.http_host}:{settings.http_port} (role {role})")
    asyncio.run(serve(settings, store, runtime.clock, role))


@main.command("sync")
@click.option(
    "--full", is_flag=True, help="List every device and threat instead of catching up from the stream."
)
@pass_runtime
def sync_command(runtime: Runtime, full: bool) -> None:
    """Pull from the configured source now; print what was added, changed and removed."""
    import asyncio

    store, settings = runtime.ready_store(), runtime.settings
    if settings.source == "demo":
        from notifications import jobs, wiring

        # the simulated tenant only moves forward in time: there is nothing else to list
        outcome = asyncio.run(jobs.run(wiring.deps(settings, store, runtime.clock), "source-sync"))
        click.echo(f"demo: {neutralise_lines(outcome.detail)}")
        sys.exit(0 if outcome.ok else 1)
    from bot import source_pull

    summary, ok = asyncio.run(source_pull.pull(settings, store, runtime.clock, full=full))
    click.echo(neutralise_lines(summary))
    sys.exit(0 if ok else 1)  # a Graph failure is also a connector error (`connector` shows it)


@main.group("jobs")
def jobs_group() -> None:
    """The scheduled jobs: list them, or run one now."""


@jobs_group.command("list")
@pass_runtime
def jobs_list(runtime: Runtime) -> None:
    """Every job: schedule, next run, last run and its outcome."""
    from notifications import wiring

    store, now = runtime.ready_store(), runtime.clock.now()
    for line in [*wiring.job_table(store, runtime.settings, now), "", wiring.leader_line(store, now)]:
        click.echo(neutralise(line))


@jobs_group.command("run")
@click.argument("name")
@pass_runtime
def jobs_run(runtime: Runtime, name: str) -> None:
    """Run one job now and exit (1 when it failed)."""
    import asyncio

    from notifications import jobs, wiring

    if name not in jobs.JOBS:
        raise click.ClickException(
            f"No job is called `{neutralise(name)}`; the jobs are: {', '.join(jobs.JOBS)}."
        )
    store, settings = runtime.ready_store(), runtime.settings

    async def once() -> jobs.Outcome:  # what a job queues is sent by `deliver` (`serve` runs it at once)
        return await jobs.run(wiring.deps(settings, store, runtime.clock), name)

    outcome = asyncio.run(once())
    click.echo(f"{name}: {'ok' if outcome.ok else 'failed'}: {neutralise_lines(outcome.detail)}")
    sys.exit(0 if outcome.ok else 1)
