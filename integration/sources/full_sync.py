"""A full sync (`mesbot sync --full`): every device and threat the source lists, a page per transaction,
then the devices it no longer lists are removed.

Removed, not marked: a device Lookout no longer lists was deleted or purged there (Lookout keeps
DEACTIVATED and DELETED devices in its listing until it purges them, and those states are kept here as
reported). Keeping a purged device would count it in enrollment and compliance forever and alert on
threats nobody can act on; its threats go with it. A listing with no devices at all removes nothing:
that is far likelier a wrong key for another tenant or an API fault than an empty fleet.

The stream cursor is left at the time the listing began (`@` + ISO time): the stream replays what
changed during the listing (replaying is harmless: an unchanged report changes nothing).
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from integration import connector_errors, sync
from integration.alerts import AlertPolicy
from integration.sources.port import Batch, ThreatSource
from integration.sync import Cursor, DeviceReport, ThreatReport
from storage.engine import Store
from storage.models import Device, SourceCursor, Threat

MALFORMED_RECORD = "lookout:malformed-record"  # connector error fingerprint
_CHUNK = 1_000


@dataclass
class FullSyncSummary:
    added: int = 0
    changed: int = 0
    removed: int = 0
    devices: int = 0  # listed
    threats: int = 0  # listed
    threats_opened: int = 0
    alerts: int = 0
    skipped: int = 0  # listed but not applied (a threat of a device not listed, a device without owner)
    malformed: int = 0
    kept_unlisted: int = 0  # not removed because the listing had no devices at all

    def line(self) -> str:
        text = f"{self.added:,} added, {self.changed:,} changed, {self.removed:,} removed"
        text += f" ({self.devices:,} device(s) and {self.threats:,} threat(s) listed"
        text += f"; {self.alerts:,} alert(s) queued" if self.alerts else ""
        text += f"; {self.skipped:,} skipped" if self.skipped else ""
        text += f"; {self.malformed:,} unreadable, see `connector`" if self.malformed else ""
        text += ")"
        if self.kept_unlisted:
            text += f"; Lookout listed no devices, so the {self.kept_unlisted:,} stored ones were kept"
        return text


async def full_sync(
    store: Store,
    source: ThreatSource,
    *,
    now: Callable[[], datetime],
    policy: AlertPolicy,
    progress: Callable[[FullSyncSummary], None] | None = None,
) -> FullSyncSummary:
    started = now()
    summary = FullSyncSummary()
    listed: set[str] = set()
    async for batch in source.snapshot():
        listed.update(e.id for e in batch.events if isinstance(e, DeviceReport))
        summary.devices += sum(isinstance(e, DeviceReport) for e in batch.events)
        summary.threats += sum(isinstance(e, ThreatReport) for e in batch.events)
        applied = await asyncio.to_thread(_apply_page, store, batch, now(), policy)
        summary.added += applied.devices_added
        summary.changed += applied.devices_changed
        summary.threats_opened += len(applied.threats_opened)
        summary.alerts += applied.alerts
        summary.skipped += len(applied.skipped)
        summary.malformed += len(batch.malformed)
        if progress is not None:
            progress(summary)
    cursor = Cursor(source.cursor_name, "@" + started.isoformat())
    removed, kept = await asyncio.to_thread(_remove_unlisted, store, listed, cursor, now())
    summary.removed, summary.kept_unlisted = removed, kept
    return summary


def _apply_page(store: Store, batch: Batch, at: datetime, policy: AlertPolicy) -> sync.Applied:
    with store.write() as session:
        if batch.malformed:
            message = f"Lookout listed {len(batch.malformed)} record(s) mesbot cannot read (skipped): "
            connector_errors.record(session, MALFORMED_RECORD, message + "; ".join(batch.malformed[:3]), at)
        return sync.apply(session, batch.events, now=at, policy=policy)


def _remove_unlisted(store: Store, listed: set[str], cursor: Cursor, at: datetime) -> tuple[int, int]:
    with store.read() as session:
        stored = set(session.exec(select(Device.id)).all())
    gone = sorted(stored - listed)
    if not listed and gone:
        gone_count, gone = len(gone), []
    else:
        gone_count = 0
    for start in range(0, max(len(gone), 1), _CHUNK):  # one transaction per chunk; the last sets the cursor
        chunk = gone[start : start + _CHUNK]
        with store.write() as session:
            _delete(session, chunk)
            if start + _CHUNK >= len(gone):
                session.merge(SourceCursor(name=cursor.name, value=cursor.value, updated_at=at))
    return len(gone), gone_count


def _delete(session: Session, ids: list[str]) -> None:
    if not ids:
        return
    session.execute(delete(Threat).where(col(Threat.device_id).in_(ids)))
    session.execute(delete(Device).where(col(Device.id).in_(ids)))
