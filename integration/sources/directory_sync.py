"""Refresh what mesbot knows from the directory side (Microsoft Graph in Lookout mode): the directory
tables, Intune's view of each device, and the health of Lookout's MTD connector as Intune sees it.

Three stages, each read from the source first and then written in a short transaction of its own: no
transaction is held across a network call (RELIABILITY), and a stage that fails (a missing permission
for managed devices, say) does not stop the others. A failure becomes a connector error per stage
(`graph:directory`, `graph:mtd-connector`, `graph:managed-devices`; a credential problem is one
`graph:credentials`, and stops the rest, which would fail the same way), resolved when the stage works
again. Callers (`jobs.enrollment_scan`, `mesbot sync`) read `Refreshed` to decide their outcome.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, func, select, update
from sqlmodel import Session, col

from integration import connector_errors, tenant
from integration.config import Settings
from integration.errors import SourceError
from integration.sources.directory_mirror import Wanted, mirror, wanted
from integration.sources.graph_errors import GraphCredentialsError
from integration.sources.port import ConnectorHealth, DirectoryReport, DirectorySource, IntuneDeviceReport
from integration.tenant import stamp
from integration.text import neutralise
from storage.engine import Store
from storage.models import Device, EnrollmentGroup

_T = TypeVar("_T")

CREDENTIALS = "graph:credentials"
STAGES = {
    "directory": "the directory",
    "mtd-connector": "the MTD connector",
    "managed-devices": "managed devices",
}
CONNECTOR = "intune-connector:"  # + a problem state, or "heartbeat"
PROBLEM_STATES = {
    "unresponsive": "Intune reports Lookout's Mobile Threat Defense connector as unresponsive{since}: "
    "devices' threat levels are not reaching Intune. Check the Lookout console's Intune connector.",
    "notSetUp": "Lookout's Mobile Threat Defense connector is not set up in Intune (Endpoint security → "
    "Mobile Threat Defense → Add Lookout): devices get no threat level from Lookout.",
    "error": "Intune reports Lookout's Mobile Threat Defense connector in an error state{since}: check the "
    "connector in Intune and in the Lookout console.",
}


@dataclass
class Refreshed:
    """What each stage did (None: it failed or did not run) and the failures, as recorded."""

    directory: str | None = None
    connector: str | None = None
    devices: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def summary(self) -> str:
        done = [
            f"{what}: {text}"
            for what, text in (("directory", self.directory), ("MTD connector", self.connector))
            if text is not None
        ] + ([f"Intune: {self.devices}"] if self.devices is not None else [])
        return "; ".join(done + self.failures) or "nothing refreshed"


async def refresh_from_settings(store: Store, settings: Settings, now: datetime, **options: Any) -> Refreshed:
    """`refresh` from Microsoft Graph as the GRAPH_* settings say (what the enrollment-scan job and
    `mesbot sync` call); settings that are missing are a connector error naming them, like any failure."""
    from integration.sources.graph import GraphClient  # httpx and the client only where Graph is used

    try:
        graph = GraphClient.from_settings(settings, **options)
    except SourceError as error:
        result = Refreshed()
        await _failed(store, result, "directory", error, now)
        return result
    async with graph:
        return await refresh(store, graph, now)


async def refresh(store: Store, source: DirectorySource, now: datetime) -> Refreshed:
    """Read the directory, the MTD connector and the managed devices from `source` and store them."""
    names, roles = await asyncio.to_thread(_read, store, _wanted)
    result = Refreshed()
    try:
        report = await source.directory(names, [gid for gid in roles.values() if gid])
        want = wanted(report)  # worked out before the write lock is taken
        result.directory = await _write(store, lambda s: _store_directory(s, report, want, roles, now))
    except SourceError as error:
        if await _failed(store, result, "directory", error, now):
            return result
    try:
        health = await source.connector_health()
        result.connector = await _write(store, lambda s: _store_health(s, health, now))
    except SourceError as error:
        if await _failed(store, result, "mtd-connector", error, now):
            return result
    try:
        result.devices = await _intune_view(store, source, now)
    except SourceError as error:
        await _failed(store, result, "managed-devices", error, now)
    return result


def _wanted(session: Session) -> tuple[list[str], dict[str, str | None]]:
    names = sorted(session.connection().execute(select(col(EnrollmentGroup.name))).scalars())
    subscription = tenant.subscription(session)
    roles = {"full": subscription.full_access_group_id, "restricted": subscription.restricted_access_group_id}
    return names, roles


def _store_directory(
    session: Session, report: DirectoryReport, want: Wanted, roles: dict[str, str | None], now: datetime
) -> str:
    mirrored = mirror(session, want)
    found = {gid for gid, _name in report.groups}
    for role, group_id in roles.items():
        fingerprint = f"directory:{role}-access-group"
        if group_id and group_id not in found:
            connector_errors.record(
                session,
                fingerprint,
                f"The {role}-access group {neutralise(group_id)} (subscription) is not in the directory, so "
                f"no one gets {role} console access through it: check `subscription set {role}-group`.",
                now,
            )
        else:
            connector_errors.resolve(session, fingerprint, now)
    _resolve(session, CREDENTIALS, "directory", now=now)
    hidden = (
        f"; {report.unaddressed} member(s) without a usable address left out (Graph hides addresses "
        "without User.Read.All)"
        if report.unaddressed
        else ""
    )
    return f"{mirrored}{hidden}"


def _store_health(session: Session, health: ConnectorHealth, now: datetime) -> str:
    connector = tenant.connector(session)
    connector.state = health.partner_state
    session.add(connector)
    since = f" (last heartbeat {stamp(health.last_heartbeat)})" if health.last_heartbeat else ""
    for state, message in PROBLEM_STATES.items():
        if state == health.partner_state:
            connector_errors.record(session, CONNECTOR + state, message.format(since=since), now)
        else:
            connector_errors.resolve(session, CONNECTOR + state, now)
    days, last = health.unresponsive_after_days, health.last_heartbeat
    if days is not None and last is not None and now - last > timedelta(days=days):
        connector_errors.record(
            session,
            CONNECTOR + "heartbeat",
            f"Intune has had no heartbeat from Lookout since {stamp(last)}, more than its {days}-day "
            "limit (partnerUnresponsivenessThresholdInDays): Intune now ignores Lookout's data for "
            "compliance. Check the Lookout console's Intune connector.",
            now,
        )
    else:
        connector_errors.resolve(session, CONNECTOR + "heartbeat", now)
    _resolve(session, CREDENTIALS, "mtd-connector", now=now)
    heartbeat = f", last heartbeat {stamp(last)}" if last else ", no heartbeat yet"
    return f"{health.partner_state}{heartbeat}"


_INTUNE_VIEW = (
    update(Device)
    .where(col(Device.external_id) == bindparam("xid"))
    .values(
        intune_compliance=bindparam("c"), intune_threat_state=bindparam("t"), intune_seen_at=bindparam("at")
    )
)


async def _intune_view(store: Store, source: DirectorySource, now: datetime) -> str:
    """Page by page, each page its own short transaction (a tenant may have a million devices)."""
    seen = matched = 0

    def page_write(page: list[IntuneDeviceReport]) -> Callable[[Session], int]:
        def work(session: Session) -> int:
            rows = [{"xid": d.external_id, "c": d.compliance, "t": d.threat_state, "at": now} for d in page]
            session.connection().execute(_INTUNE_VIEW, rows)
            ids = [d.external_id for d in page]
            known = select(func.count()).select_from(Device).where(col(Device.external_id).in_(ids))
            return int(session.connection().execute(known).scalar_one())

        return work

    async for page in source.managed_devices():
        if page:
            seen += len(page)
            matched += await _write(store, page_write(page))
    await _write(store, lambda s: _resolve(s, CREDENTIALS, "managed-devices", now=now))
    return f"{seen} managed device(s), {matched} matched to a Lookout device"


async def _failed(store: Store, result: Refreshed, stage: str, error: SourceError, now: datetime) -> bool:
    """Record the failure as a connector error; True when it concerns the credentials (stop there)."""
    credentials = isinstance(error, GraphCredentialsError)
    fingerprint = CREDENTIALS if credentials else f"graph:{stage}"
    what = "Microsoft Graph" if credentials else f"Microsoft Graph ({STAGES[stage]})"
    message = f"{what}: {error}"
    await _write(store, lambda s: connector_errors.record(s, fingerprint, message, now))
    result.failures.append(message)
    return credentials


def _resolve(session: Session, *fingerprints: str, now: datetime) -> None:
    """A stage that worked: its own failure, and the credentials (a token was issued), are fixed."""
    for fingerprint in fingerprints:
        connector_errors.resolve(session, fingerprint if ":" in fingerprint else f"graph:{fingerprint}", now)


def _read(store: Store, work: Callable[[Session], _T]) -> _T:
    with store.read() as session:
        return work(session)


async def _write(store: Store, work: Callable[[Session], _T]) -> _T:
    def run() -> _T:
        with store.write() as session:
            return work(session)

    return await asyncio.to_thread(run)
