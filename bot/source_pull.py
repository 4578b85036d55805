"""`mesbot sync` in Lookout mode: a full listing (`--full`, and the first time, when there is no stream
position yet) or a catch-up from the stream's committed cursor, with a progress display."""

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from integration.clock import Clock
from integration.config import Settings
from integration.sources import directory_sync, lookout
from integration.sources.follow import StreamFollower
from integration.sources.full_sync import FullSyncSummary, full_sync
from notifications import wiring
from storage.engine import Store
from storage.models import SourceCursor

CATCH_UP_SECONDS = 600.0


async def pull(settings: Settings, store: Store, clock: Clock, *, full: bool) -> tuple[str, bool]:
    """Lookout's devices and threats, then Microsoft Graph's side (the directory, Intune's view of the
    devices just listed, the MTD connector): two summary lines, and whether both sides worked."""
    threats = await pull_lookout(settings, store, clock, full=full)
    refreshed = await directory_sync.refresh_from_settings(store, settings, clock.now())
    return f"{threats}\nMicrosoft Graph: {refreshed.summary()}", refreshed.ok


async def pull_lookout(settings: Settings, store: Store, clock: Clock, *, full: bool) -> str:
    source = lookout.from_settings(settings)
    policy = wiring.policy(settings)
    try:
        if not full and _stream_position(store, source.cursor_name) is None:
            full, first = True, " (no stream position yet, so a full listing first)"
        else:
            first = ""
        screen = Console(stderr=True)  # stdout keeps only the summary line, for scripts
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=screen, transient=True, disable=not screen.is_terminal) as bar:
            if full:
                task = bar.add_task("Listing Lookout's devices and threats", total=None)

                def shown(summary: FullSyncSummary) -> None:
                    bar.update(
                        task, description=f"Listed {summary.devices:,} devices, {summary.threats:,} threats"
                    )

                summary = await full_sync(store, source, now=clock.now, policy=policy, progress=shown)
                return f"Full sync{first}: {summary.line()}" + _queued(summary.alerts)
            bar.add_task("Catching up from Lookout's event stream", total=None)
            follower = StreamFollower(store, source, clock=clock, policy=policy)
            done = await follower.follow(until_idle=True, max_seconds=CATCH_UP_SECONDS)
        return (
            f"Caught up from the stream: {done.devices_added:,} added, {done.devices_changed:,} changed, "
            f"0 removed ({done.line()})" + _queued(done.alerts)
        )
    finally:
        await source.close()


def _stream_position(store: Store, name: str) -> str | None:
    with store.read() as session:
        row = session.get(SourceCursor, name)
        return row.value if row is not None else None


def _queued(alerts: int) -> str:
    return f"; {alerts:,} alert(s) queued (`mesbot serve` sends them)" if alerts else ""
