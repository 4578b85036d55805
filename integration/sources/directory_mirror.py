"""Make the directory tables say what the directory source last reported, in the caller's transaction.

The tables hold only what mesbot uses: the enrollment and console-role groups, their (transitive)
members, and the global administrators. Changes are applied as a difference rather than by emptying
and refilling, because the tally triggers (migration 0004) recount every membership that moves: an
unchanged directory costs three reads and no writes.

Deletions keep what others point at: a user who left every group loses their memberships, but a user
row that notification settings still reference (NotificationPreference, QuietHours) stays, without
console access, so their opt-ins are there if they come back. Devices are never touched here: a
device keeps its owner's e-mail address whatever happens to the owner.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable, Table, bindparam, delete, insert, select, update
from sqlmodel import Session, col

from integration.sources.port import DirectoryReport, DirectoryUserReport
from storage import tally
from storage.models import DirectoryGroup, DirectoryUser, GroupMembership, NotificationPreference, QuietHours


@dataclass(frozen=True)
class Mirrored:
    groups: int
    users: int
    memberships: int
    added: int  # users
    removed: int  # users gone from every group (those kept for their settings count here too)
    duplicates: int  # users left out because another user has the same address

    def __str__(self) -> str:
        extra = f", {self.duplicates} user(s) sharing another's address left out" if self.duplicates else ""
        return (
            f"{self.groups} group(s), {self.users} user(s) (+{self.added} −{self.removed}), "
            f"{self.memberships} membership(s){extra}"
        )


def _table(model: type) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


_USERS, _GROUPS, _MEMBERS = _table(DirectoryUser), _table(DirectoryGroup), _table(GroupMembership)
_DROP_MEMBER = delete(_MEMBERS).where(
    _MEMBERS.c.group_id == bindparam("g"), _MEMBERS.c.user_id == bindparam("u")
)
_SET_USER = (
    update(_USERS)
    .where(_USERS.c.id == bindparam("uid"))
    .values(email=bindparam("e"), display_name=bindparam("n"), is_global_admin=bindparam("a"))
)
_SET_EMAIL = update(_USERS).where(_USERS.c.id == bindparam("uid")).values(email=bindparam("e"))
BULK_CHANGES = 100  # membership (and member address) changes above which the tallies are recounted
_RENAME_GROUP = update(_GROUPS).where(_GROUPS.c.id == bindparam("gid")).values(name=bindparam("n"))


@dataclass(frozen=True)
class Wanted:
    """What the tables should hold, worked out from a report before the write transaction begins."""

    users: dict[str, DirectoryUserReport]
    groups: dict[str, str]
    memberships: set[tuple[str, str]]
    duplicates: int


def wanted(report: DirectoryReport) -> Wanted:
    users, duplicates = _one_per_address(report.users)
    groups = dict(report.groups)
    memberships = {(g, u) for g, u in report.memberships if g in groups and u in users}
    return Wanted(users, groups, memberships, duplicates)


def mirror(session: Session, want: Wanted) -> Mirrored:
    """Make the directory tables hold `want` (see the module docstring for what is kept).

    Many membership changes at once (a first refresh, a big group added) are applied with the tally
    triggers paused and the touched groups recounted in one pass: on SQLite each membership's trigger
    costs more the more devices there are (a 10,000-member first refresh took 23 s that way)."""
    connection = session.connection()
    had = {(g, u) for g, u in connection.execute(select(_MEMBERS.c.group_id, _MEMBERS.c.user_id)).all()}
    rows = connection.execute(
        select(_USERS.c.id, _USERS.c.email, _USERS.c.display_name, _USERS.c.is_global_admin)
    )
    old_users = {uid: (email, name, bool(admin)) for uid, email, name, admin in rows.all()}
    users = want.users
    moved = {u.id for u in users.values() if u.id in old_users and old_users[u.id][0] != u.email}
    touched = {g for g, _ in had ^ want.memberships} | {g for g, u in had | want.memberships if u in moved}
    if connection.dialect.name == "sqlite" and len(had ^ want.memberships) + len(moved) > BULK_CHANGES:
        with tally.paused(session):
            mirrored = _apply(session, want, had, old_users)
            tally.recount_groups(session, touched)
    else:
        mirrored = _apply(session, want, had, old_users)
    return Mirrored(duplicates=want.duplicates, **mirrored)


def _apply(
    session: Session, want: Wanted, had: set[tuple[str, str]], old_users: dict[str, tuple[str, str, bool]]
) -> dict[str, int]:
    users, groups, wanted = want.users, want.groups, want.memberships
    connection = session.connection()
    _run(connection, _DROP_MEMBER, [{"g": g, "u": u} for g, u in had - wanted])
    departed = [uid for uid in old_users if uid not in users]
    kept = _referenced(session, departed)
    gone = [uid for uid in departed if uid not in kept]
    if gone:
        connection.execute(delete(_USERS).where(_USERS.c.id.in_(gone)))
    addresses = {u.email for u in users.values()}
    _run(
        connection,
        _SET_USER,
        [
            {
                "uid": uid,
                "e": _placeholder(uid) if old_users[uid][0] in addresses else old_users[uid][0],
                "n": old_users[uid][1],
                "a": False,
            }
            for uid in kept
        ],
    )
    changed = [
        u
        for u in users.values()
        if u.id in old_users and old_users[u.id] != (u.email, u.display_name, u.is_global_admin)
    ]
    moved = [u for u in changed if old_users[u.id][0] != u.email]
    # Two steps for changed addresses, so two users swapping addresses never collide on the unique index
    _run(connection, _SET_EMAIL, [{"uid": u.id, "e": _placeholder(u.id)} for u in moved])
    _run(
        connection,
        _SET_USER,
        [{"uid": u.id, "e": u.email, "n": u.display_name, "a": u.is_global_admin} for u in changed],
    )
    new = [u for u in users.values() if u.id not in old_users]
    _run(
        connection,
        insert(_USERS),
        [
            {
                "id": u.id,
                "email": u.email,
                "display_name": u.display_name,
                "is_global_admin": u.is_global_admin,
            }
            for u in new
        ],
    )

    old_groups: dict[str, str] = {row.id: row.name for row in connection.execute(select(_GROUPS))}
    stale = [gid for gid in old_groups if gid not in groups]
    if stale:
        connection.execute(delete(_GROUPS).where(_GROUPS.c.id.in_(stale)))
    _run(
        connection, insert(_GROUPS), [{"id": g, "name": n} for g, n in groups.items() if g not in old_groups]
    )
    _run(
        connection,
        _RENAME_GROUP,
        [{"gid": g, "n": n} for g, n in groups.items() if g in old_groups and old_groups[g] != n],
    )
    _run(connection, insert(_MEMBERS), [{"group_id": g, "user_id": u} for g, u in sorted(wanted - had)])
    return {
        "groups": len(groups),
        "users": len(users),
        "memberships": len(wanted),
        "added": len(new),
        "removed": len(departed),
    }


def _one_per_address(reported: Iterable[DirectoryUserReport]) -> tuple[dict[str, DirectoryUserReport], int]:
    """Users by id; when two share an address (mail of one = UPN of another), the first by id wins:
    mesbot knows people by address, and the address must name one directory user."""
    users: dict[str, DirectoryUserReport] = {}
    owners: dict[str, str] = {}
    duplicates = 0
    for user in sorted(reported, key=lambda u: u.id):
        if user.id in users:
            continue
        if user.email in owners:
            duplicates += 1
            continue
        owners[user.email] = user.id
        users[user.id] = user
    return users, duplicates


def _referenced(session: Session, user_ids: list[str]) -> set[str]:
    """Of these users, the ones whose rows other tables point at (the foreign keys on directoryuser)."""
    if not user_ids:
        return set()
    found: set[str] = set()
    for model in (NotificationPreference, QuietHours):
        column = col(model.user_id)
        found.update(session.connection().execute(select(column).where(column.in_(user_ids))).scalars())
    return found


def _placeholder(user_id: str) -> str:
    """An address no one has, for a user row whose address passes to someone else (or in transit)."""
    return f"{user_id}@departed.invalid"


def _run(connection: Connection, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """One statement for many rows (executemany); nothing to do, no round trip."""
    if rows:
        connection.execute(statement, rows)
