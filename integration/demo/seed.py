"""`mesbot demo seed`: (re)build the deterministic demo tenant.

The same `seed`, sizes and `now` give the same tenant: every random choice comes from one
`random.Random(seed)`, and ages (check-ins, detections) are measured back from `now`.
"""

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, text
from sqlmodel import Session, SQLModel, select

from integration import tenant
from integration.actions import Action
from integration.demo import data
from integration.demo.fleet import Fleet, guid
from storage.models import (
    AuditEntry,
    Device,
    DirectoryGroup,
    DirectoryUser,
    EnrollmentGroup,
    GroupMembership,
    NotificationPreference,
    Threat,
)
from storage.states import AuditOutcome

_T = TypeVar("_T")
FIXED_USERS = 3  # admin, analyst, alice: the first rows of the directory
Progress = Callable[[int, int], None]
BATCH = 5_000
BULK_CACHE_KIB = 256 * 1024


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
    if users < 3:
        raise ValueError("the demo needs at least 3 users (admin, analyst, alice)")
    rng = random.Random(seed)
    total_threats = 0
    with _large_sqlite_cache(session):
        _wipe(session)
        tenant.ensure_defaults(session)
        groups = _directory(session, rng, users)
        _settings(session, groups, now)
        fleet = Fleet(rng, now)
        owners = _device_owners(rng, groups, users, devices)
        done = 0
        for chunk in _chunks(owners, BATCH):
            device_rows, threat_rows = fleet.build(chunk)
            _insert(session, Device, device_rows)
            if threat_rows:
                _insert(session, Threat, threat_rows)
            total_threats += len(threat_rows)
            done += len(chunk)
            if progress:
                progress(done, devices)
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
    return SeedSummary(users=users, devices=devices, threats=total_threats)


def _wipe(session: Session) -> None:
    for table in reversed(SQLModel.metadata.sorted_tables):
        session.execute(delete(table))


@contextmanager
def _large_sqlite_cache(session: Session) -> Iterator[None]:
    """On SQLite, a 256 MiB page cache while loading (then back to what it was).

    The default 2 MiB cache thrashes on the randomly keyed indexes (guids, e-mails) of a large load;
    this makes seeding a fifth faster (7.2 → 5.7 s at 100,000 devices, 97 → 80 s at 1,000,000).
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    connection = session.connection()
    before = int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
    connection.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {before}")


def _refresh_statistics(session: Session) -> None:
    """PostgreSQL plans from table statistics, and tables filled in one transaction have none until
    autovacuum analyzes them (never, where it is off): a `risk set` preview on 100,000 devices then
    took 30 s instead of 30 ms. (SQLite's planner does well without statistics.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE"))


def _insert(session: Session, model: type[SQLModel], rows: list[dict[str, Any]]) -> None:
    """One Core executemany. (The ORM's bulk insert of the same rows issues a statement per run of rows
    whose NULL columns differ: three times slower here.)"""
    session.execute(SQLModel.metadata.tables[str(model.__tablename__)].insert(), rows)


@dataclass(frozen=True)
class _Groups:
    ids: dict[str, str]  # name → id
    emails: list[str]  # every user, fixed identities first
    enrolled: list[int]  # indexes into `emails` of users in an enrollment group


def _directory(session: Session, rng: random.Random, users: int) -> _Groups:
    names = [
        data.FULL_GROUP,
        data.RESTRICTED_GROUP,
        data.PILOT_GROUP,
        data.MOBILE_GROUP,
        *data.OTHER_GROUPS,
    ]
    ids = {name: guid(rng) for name in names}
    _insert(session, DirectoryGroup, [{"id": gid, "name": name} for name, gid in ids.items()])

    fixed = [
        (data.ADMIN, "Ada Admin", True),
        (data.ANALYST, "Anil Analyst", False),
        (data.ALICE, "Alice Andersson", False),
    ]
    user_rows: list[dict[str, Any]] = [
        {"id": guid(rng), "email": email, "display_name": name, "is_global_admin": admin}
        for email, name, admin in fixed
    ]
    for n in range(len(fixed), users):
        first, last = rng.choice(data.FIRST_NAMES), rng.choice(data.LAST_NAMES)
        email = f"{first}.{last}.{n}@{data.DOMAIN}".lower()
        user_rows.append(
            {
                "id": guid(rng),
                "email": email,
                "display_name": f"{first} {last}",
                "is_global_admin": False,
            }
        )

    memberships: list[dict[str, str]] = [
        {"group_id": ids[data.FULL_GROUP], "user_id": user_rows[0]["id"]},
        {"group_id": ids[data.RESTRICTED_GROUP], "user_id": user_rows[1]["id"]},
    ]
    enrolled: list[int] = []
    for index, row in enumerate(user_rows):
        memberships.append({"group_id": ids["All Staff"], "user_id": row["id"]})
        pick = rng.random()
        if index < len(fixed) or pick < 0.90:
            group = data.PILOT_GROUP if index < len(fixed) or pick < 0.06 else data.MOBILE_GROUP
            memberships.append({"group_id": ids[group], "user_id": row["id"]})
            enrolled.append(index)
        if index >= len(fixed) and rng.random() < 0.3:
            memberships.append({"group_id": ids[rng.choice(data.OTHER_GROUPS[1:])], "user_id": row["id"]})
    for chunk in _chunks(user_rows, BATCH):
        _insert(session, DirectoryUser, chunk)
    for chunk in _chunks(memberships, BATCH):
        _insert(session, GroupMembership, chunk)
    return _Groups(ids=ids, emails=[row["email"] for row in user_rows], enrolled=enrolled)


def _settings(session: Session, groups: _Groups, now: datetime) -> None:
    sub = tenant.subscription(session)
    sub.tenant_id = "6f1c2a9e-3b7d-4c1e-9a55-0d2f6c8b4e21"
    sub.full_access_group_id = groups.ids[data.FULL_GROUP]
    sub.restricted_access_group_id = groups.ids[data.RESTRICTED_GROUP]
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


def _device_owners(rng: random.Random, groups: _Groups, users: int, devices: int) -> list[tuple[str, str]]:
    """(owner e-mail, scenario) per device: the fixed identities' devices first, then the fleet."""
    fixed = [
        (data.ADMIN, "healthy"),
        (data.ANALYST, "healthy"),
        (data.ALICE, "healthy"),
        (data.ALICE, "trojan"),
    ]
    fixed = fixed[:devices]
    # The fixed identities own exactly their scripted devices, so the demo reads the same every time.
    fleet_owners = [index for index in groups.enrolled if index >= FIXED_USERS] or groups.enrolled
    return fixed + [(groups.emails[rng.choice(fleet_owners)], "random") for _ in range(devices - len(fixed))]


def _chunks(items: list[_T], size: int) -> Iterator[list[_T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
