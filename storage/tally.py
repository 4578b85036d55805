"""The device tally (storage/models/tally.py) outside its triggers: pausing them for a bulk load.

Triggers keep `DeviceTally` and `Device.open_classifications` exact on every change (migration 0004).
A bulk load of a whole tenant is faster without them: inside `paused(session)` they skip their work,
and the loader stores the counts it made before the same transaction commits, so no other session
ever sees the tally out of step (tests/integration/test_tally.py checks the demo seed's).
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from sqlalchemy import delete, insert, text
from sqlmodel import Session

from storage.models import DeviceTally, OpenThreatTally, TallyPause

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
