"""The source port: what mesbot needs from wherever devices, threats and the directory come from.

Two sides, because two services answer them in a real tenant:

- a `ThreatSource` (Lookout's Mobile Risk API v2, or the demo simulator) lists every device and threat
  for a full sync and follows the event stream after a cursor;
- a `DirectorySource` (Microsoft Graph) answers who is in which group, what Intune thinks of each
  managed device, and how Lookout's MTD connector looks from Intune's side.

What a source reports is applied by `integration.sync.apply` (threat side) or
`integration.sources.directory_sync` (directory side), never written by the client itself: clients
speak HTTP, the rules and the store stay here. A client raises `integration.errors.SourceError` (or a
subclass) with a message an admin can act on — which credential, what the API said — and never puts a
secret in it.

The demo simulator (`integration.demo.simulator`) is not a `ThreatSource`, on purpose: it is driven by
the store (each step reads the fleet as the earlier steps left it, inside the transaction that applies
its events), so it has no stream to follow outside a transaction. Wrapping it would mean a session
smuggled into `stream()`; `jobs.source_sync` calls it directly instead.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from integration.sync import SourceEvent


@dataclass(frozen=True)
class Batch:
    """Events read from a stream, and the position after them (commit it with them)."""

    events: list[SourceEvent]
    cursor: str | None  # None: the source gave no position (nothing to commit)
    malformed: list[str] = field(default_factory=list)  # why events were skipped (connector errors)


class ThreatSource(Protocol):
    cursor_name: str  # the `SourceCursor` row this source's position is kept in

    def snapshot(self) -> AsyncIterator[Batch]:
        """Every device, then every threat, a page at a time (a full sync; `cursor` is None, and
        `malformed` says which records could not be read)."""
        ...

    def stream(self, after: str | None, *, start: datetime) -> AsyncIterator[Batch]:
        """Events after the cursor `after` (from `start` when there is none), batch by batch, for as
        long as the caller keeps reading; reconnecting and backing off are the source's business. An
        empty batch says the stream is idle (caught up)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class DirectoryUserReport:
    id: str
    email: str  # lower-case
    display_name: str  # untrusted
    is_global_admin: bool = False


@dataclass(frozen=True)
class DirectoryReport:
    """The part of the directory mesbot uses: the enrollment and console-role groups and their
    (transitive) members."""

    users: list[DirectoryUserReport]
    groups: list[tuple[str, str]]  # (id, display name)
    memberships: list[tuple[str, str]]  # (group id, user id)
    unaddressed: int = 0  # member users left out for want of a usable address (mail or userPrincipalName)


@dataclass(frozen=True)
class IntuneDeviceReport:
    external_id: str  # Intune's managed device id = Lookout's device.info.external_id
    compliance: str  # Graph complianceState
    threat_state: str  # Graph partnerReportedThreatState


@dataclass(frozen=True)
class ConnectorHealth:
    """Lookout's Mobile Threat Defense connector record in Intune."""

    partner_state: str  # unavailable | available | enabled | unresponsive | notSetUp | error
    last_heartbeat: datetime | None
    unresponsive_after_days: int | None


class DirectorySource(Protocol):
    async def directory(self, group_names: Sequence[str], role_group_ids: Sequence[str]) -> DirectoryReport:
        """The named enrollment groups (matched exactly by the caller: every group whose name equals
        one of them ignoring case is returned) and the role groups, with their transitive members."""
        ...

    def managed_devices(self) -> AsyncIterator[list[IntuneDeviceReport]]: ...

    async def connector_health(self) -> ConnectorHealth: ...
