"""`mesbot demo seed`: (re)build the deterministic demo tenant.

The same `seed`, sizes and `now` give the same tenant: every random choice comes from one
`random.Random(seed)`, and ages (check-ins, detections) are measured back from `now`. A million devices
load in well under a minute: rows are drawn as tuples and bulk-loaded (storage/bulk.py) with the
tables' indexes built afterwards, and the device tally is counted while drawing instead of by its
triggers (storage/tally.py).
"""

import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlmodel import Session, SQLModel, select

from integration import tenant
from integration.actions import Action
from integration.demo import data, directory
from integration.demo.directory import Directory
from integration.demo.draws import ascending_guids
from integration.demo.fleet import DEVICE_COLUMNS, THREAT_COLUMNS, Fleet
from storage import bulk, tally
from storage.models import (
    AuditEntry,
    Device,
    DirectoryGroup,
    DirectoryUser,
    EnrollmentGroup,
    GroupMembership,
    NotificationPreference,
    StoredValue,
    TallyPause,
    Threat,
)
from storage.models.tally import EVERY_DEVICE
from storage.states import ActivationStatus, AuditOutcome, ProtectionStatus

Progress = Callable[[int, int], None]
BATCH = 10_000
BULK_CACHE_KIB = 256 * 1024
LOADED = (DirectoryGroup, DirectoryUser, GroupMembership, Device, Threat)
SEED_VALUE, SEEDED_AT_VALUE = "demo-seed", "demo-seeded-at"  # `StoredValue` names
USERS_PER_DEVICE = 0.8  # as in real fleets: most people have one device, some two


def default_users(devices: int) -> int:
    """How many directory users a demo tenant of `devices` devices has unless told."""
    return max(directory.MIN_USERS, round(devices * USERS_PER_DEVICE))


@dataclass(frozen=True)
class SeedSummary:
    users: int
    devices: int
    threats: int


def seed(
    session: Session,
    *,
    users: int,
    devices: int,
    seed: int,
    now: datetime,
    progress: Progress | None = None,
) -> SeedSummary:
    """Wipe the tenant and build it again, in the caller's transaction."""
    if users < directory.MIN_USERS:
        raise ValueError("the demo needs at least 3 users (admin, analyst, alice)")
    rng = random.Random(seed)
    with _large_sqlite_cache(session), tally.paused(session):
        bulk.wipe(session, [t for t in SQLModel.metadata.sorted_tables if t.name != TallyPause.__tablename__])
        tenant.ensure_defaults(session)
        with bulk.loading(session, LOADED) as loader:
            people = directory.build(loader, rng, users)
            ids = ascending_guids(rng, devices)
            fleet = Fleet(rng, ids, tenant.classification_bits(session), loader.stamps_before(now))
            counts: Counter[tuple[int, str, str, int]] = Counter()  # (owner's groups, states, bits)
            done = threats = 0
            for owners in _device_owners(rng, people, devices):
                device_rows, threat_rows = fleet.build(
                    [(people.owners[i], scenario) for i, scenario in owners]
                )
                counts.update(
                    (people.owner_groups[i], row[4], row[5], row[-1])
                    for (i, _), row in zip(owners, device_rows, strict=True)
                )
                loader.load(Device, DEVICE_COLUMNS, device_rows)
                loader.load(Threat, THREAT_COLUMNS, threat_rows)
                done, threats = done + len(owners), threats + len(threat_rows)
                if progress:
                    progress(done, devices)
        tally.store(session, *_tallies(people, counts))
        _settings(session, people, now)
        _simulator_start(session, seed, now)
    session.add(
        AuditEntry(
            at=now,
            actor="mesbot",
            action=Action.DEMO_SEED,
            outcome=AuditOutcome.APPLIED,
            after={"users": users, "devices": devices, "seed": seed},
        )
    )
    _refresh_statistics(session)
    return SeedSummary(users=users, devices=devices, threats=threats)


def _device_owners(rng: random.Random, people: Directory, devices: int) -> Iterator[list[tuple[int, str]]]:
    """Batches of (owner, scenario) per device, owners as indexes into `people.owners`: the fixed
    identities' scripted devices first (so the demo reads the same every time), then the fleet."""
    fixed = [(0, "healthy"), (1, "healthy"), (2, "healthy"), (2, "trojan")][:devices]
    owners = len(people.owners)
    first = directory.MIN_USERS if owners > directory.MIN_USERS else 0  # the fixed own only theirs
    batch = fixed
    for _ in range(devices - len(fixed)):
        batch.append((first + int(rng.random() * (owners - first)), "random"))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _tallies(
    people: Directory, counts: Counter[tuple[int, str, str, int]]
) -> tuple[Counter[tuple[str, str, str]], Counter[tuple[str, int]]]:
    """The seed's counts as the two tallies: each device counted for every device and in its owner's
    groups; by state, and (activated, protected, with open threats) by open classifications."""
    states: Counter[tuple[str, str, str]] = Counter()
    open_threats: Counter[tuple[str, int]] = Counter()
    for (groups, activation, protection, bits), n in counts.items():
        exposed = bits and (activation, protection) == (
            ActivationStatus.ACTIVATED,
            ProtectionStatus.PROTECTED,
        )
        for group_id in [EVERY_DEVICE, *people.groups_of(groups)]:
            states[(group_id, activation, protection)] += n
            if exposed:
                open_threats[(group_id, bits)] += n
    return states, open_threats


@contextmanager
def _large_sqlite_cache(session: Session) -> Iterator[None]:
    """On SQLite, a 256 MiB page cache while loading (then back to what it was): the default 2 MiB
    thrashes on a large load's randomly keyed indexes (e-mails, threat ids)."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = session.connection()
    before = int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
    connection.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    connection.exec_driver_sql("PRAGMA threads = 2")  # a helper thread for CREATE INDEX's sorts
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {before}")
        connection.exec_driver_sql("PRAGMA threads = 0")


def _simulator_start(session: Session, seed: int, now: datetime) -> None:
    """What the simulator (simulator.py) needs to carry the tenant on from here: the seed its draws
    derive from, and when the seeded tenant stands (its first simulated step)."""
    session.add(StoredValue(name=SEED_VALUE, value=str(seed)))
    session.add(StoredValue(name=SEEDED_AT_VALUE, value=now.isoformat()))


def _refresh_statistics(session: Session) -> None:
    """PostgreSQL plans from table statistics, and tables filled in one transaction have none until
    autovacuum analyzes them (never, where it is off): a `risk set` preview on 100,000 devices then
    took 30 s instead of 30 ms. Only this schema's tables: a bare ANALYZE takes every schema's (and
    deadlocked with another process doing the same). (SQLite's planner does well without statistics.)"""
    if session.get_bind().dialect.name == "postgresql":
        tables = ", ".join(f'"{table.name}"' for table in SQLModel.metadata.sorted_tables)
        session.execute(text(f"ANALYZE {tables}"))


def _settings(session: Session, people: Directory, now: datetime) -> None:
    sub = tenant.subscription(session)
    sub.tenant_id = "6f1c2a9e-3b7d-4c1e-9a55-0d2f6c8b4e21"
    sub.full_access_group_id = people.group_ids[data.FULL_GROUP]
    sub.restricted_access_group_id = people.group_ids[data.RESTRICTED_GROUP]
    sub.consent_granted, sub.consent_by, sub.consent_at = True, data.ADMIN, now - timedelta(days=30)
    connector = tenant.connector(session)
    connector.state = "enabled"
    connector.heartbeat_minutes = 60
    connector.device_status_sync = connector.threat_status_sync = True
    connector.error_email = f"mobile-ops@{data.DOMAIN}"
    connector.last_heartbeat = now - timedelta(minutes=12)
    session.add_all([sub, connector])
    for offset, name in enumerate((data.PILOT_GROUP, data.MOBILE_GROUP)):
        session.add(EnrollmentGroup(name=name, added_at=now - timedelta(days=30 - offset)))
    admin_id = session.exec(select(DirectoryUser.id).where(DirectoryUser.email == data.ADMIN)).one()
    for channel in ("email", "slack"):
        session.add(
            NotificationPreference(user_id=admin_id, category="threat-high", channel=channel, enabled=True)
        )
    session.flush()
