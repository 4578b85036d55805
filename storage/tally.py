"""The device tally (storage/models/tally.py) outside its triggers: pausing them for a bulk load.

Triggers keep `DeviceTally` and `Device.open_classifications` exact on every change (migration 0004).
A bulk load of a whole tenant is faster without them: inside `paused(session)` they skip their work,
and the loader stores the counts it made before the same transaction commits, so no other session
ever sees the tally out of step (tests/integration/test_tally.py checks the demo seed's).
"""

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import delete, func, insert, select, text
from sqlmodel import Session, col

from storage.models import (
    Device,
    DeviceTally,
    DirectoryUser,
    GroupMembership,
    OpenThreatTally,
    TallyPause,
)
from storage.states import ActivationStatus, ProtectionStatus

COUNTED = ("device", "threat", "groupmembership", "directoryuser", "classification")  # the triggers' tables


@contextmanager
def paused(session: Session) -> Iterator[None]:
    """Triggers off for the block, in the caller's transaction. The block must leave the tallies and
    `Device.open_classifications` exact itself — a loader counts what it loads and `store`s it.

    SQLite: a `TallyPause` row, which the triggers' WHEN clauses check. PostgreSQL: the triggers are
    disabled (ALTER TABLE, which locks the table until commit): a paused per-statement trigger would
    still collect every row of a million-row COPY into its transition table.
    """
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(TallyPause).values(id=1))
        yield
        session.execute(delete(TallyPause))
        return
    tables = ", ".join(f"'{table}'::regclass" for table in COUNTED)  # this schema's (search_path)
    query = text(
        "SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE starts_with(tgname, 'mesbot_') "
        f"AND tgrelid IN ({tables}) AND NOT tgisinternal AND tgenabled <> 'D'"
    )
    triggers = connection.execute(query).all()
    for table, trigger in triggers:
        connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
    yield
    for table, trigger in triggers:
        connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")


def store(
    session: Session,
    states: Mapping[tuple[str, str, str], int],
    open_threats: Mapping[tuple[str, int], int],
) -> None:
    """Replace the tallies: (group, activation, protection) → devices, and (group, open
    classifications) → activated, protected devices with those open threats."""
    session.execute(delete(DeviceTally))
    session.execute(delete(OpenThreatTally))
    rows = [
        {"group_id": g, "activation_status": a, "protection_status": p, "devices": n}
        for (g, a, p), n in states.items()
    ]
    if rows:
        session.execute(insert(DeviceTally), rows)
    exposed = [{"group_id": g, "open_classifications": b, "devices": n} for (g, b), n in open_threats.items()]
    if exposed:
        session.execute(insert(OpenThreatTally), exposed)


def recount_groups(session: Session, group_ids: Collection[str]) -> None:
    """Count these groups' tallies afresh from their members' devices: after a bulk change to their
    memberships (or their members' addresses) made while the triggers were `paused`. Every device's
    counts (group "") and `Device.open_classifications` do not depend on memberships and stay as kept."""
    ids = sorted(set(group_ids))
    if not ids:
        return
    session.execute(delete(DeviceTally).where(col(DeviceTally.group_id).in_(ids)))
    session.execute(delete(OpenThreatTally).where(col(OpenThreatTally.group_id).in_(ids)))
    states = (
        select(
            col(GroupMembership.group_id),
            col(Device.activation_status),
            col(Device.protection_status),
            func.count(),
        )
        .join(DirectoryUser, col(DirectoryUser.id) == GroupMembership.user_id)
        .join(Device, col(Device.owner_email) == DirectoryUser.email)
        .where(col(GroupMembership.group_id).in_(ids))
        .group_by(col(GroupMembership.group_id), col(Device.activation_status), col(Device.protection_status))
    )
    columns = ["group_id", "activation_status", "protection_status", "devices"]
    session.execute(insert(DeviceTally).from_select(columns, states))
    exposed = (
        select(col(GroupMembership.group_id), col(Device.open_classifications), func.count())
        .join(DirectoryUser, col(DirectoryUser.id) == GroupMembership.user_id)
        .join(Device, col(Device.owner_email) == DirectoryUser.email)
        .where(
            col(GroupMembership.group_id).in_(ids),
            col(Device.activation_status) == ActivationStatus.ACTIVATED,
            col(Device.protection_status) == ProtectionStatus.PROTECTED,
            col(Device.open_classifications) != 0,
        )
        .group_by(col(GroupMembership.group_id), col(Device.open_classifications))
    )
    session.execute(
        insert(OpenThreatTally).from_select(["group_id", "open_classifications", "devices"], exposed)
    )
