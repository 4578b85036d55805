"""What every process of one installation shares through the store (DESIGN §2 "Scale-out"): which
process leads (for `/healthz` and `jobs list`, answered by any process, also a `web` one) and the
counters an operator alerts on fleet-wide (duplicate sends, leadership changes).

They live in the store rather than in each process's Prometheus registry because a `worker` has no
HTTP port: `/metrics` on any `web` process reads them when scraped. Kept as `StoredValue` rows (no
migration): the leader as a small JSON object, each counter as a decimal string.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Insert
from sqlmodel import Session, col, select

from storage.models import StoredValue

LEADER = "leader"
COUNTER_PREFIX = "counter:"
DUPLICATE_SENDS = "duplicate-sends"
LEADERSHIP_CHANGES = "leadership-changes"


@dataclass(frozen=True)
class LeaderRecord:
    process: str  # host:pid
    since: datetime  # when it took the lead
    seen: datetime  # when it last confirmed it still leads


def leader(session: Session) -> LeaderRecord | None:
    row = session.get(StoredValue, LEADER)
    if row is None:
        return None
    try:
        value = json.loads(row.value)
        return LeaderRecord(
            process=str(value["process"]),
            since=datetime.fromisoformat(value["since"]),
            seen=datetime.fromisoformat(value["seen"]),
        )
    except (ValueError, KeyError, TypeError):  # written by hand, or by a mesbot that wrote it otherwise
        return None


def record_leader(session: Session, record: LeaderRecord) -> None:
    value = {"process": record.process, "since": record.since.isoformat(), "seen": record.seen.isoformat()}
    session.merge(StoredValue(name=LEADER, value=json.dumps(value)))


def forget_leader(session: Session, process: str) -> bool:
    """Clear the record if it names `process` (a process stepping down must not erase its successor's)."""
    row = session.get(StoredValue, LEADER, with_for_update=True)
    current = leader(session)
    if row is None or current is None or current.process != process:
        return False
    session.delete(row)
    return True


def bump(session: Session, name: str, by: int = 1) -> None:
    """Add `by` to a fleet counter, inside the caller's transaction (row-locked: exact under concurrency)."""
    key = COUNTER_PREFIX + name
    session.execute(_insert_absent(session).values(name=key, value="0"))
    row = session.get(StoredValue, key, with_for_update=True, populate_existing=True)
    assert row is not None  # inserted just above unless it was there
    row.value = str(int(row.value) + by)
    session.add(row)


def counters(session: Session) -> dict[str, int]:
    rows = session.exec(select(StoredValue).where(col(StoredValue.name).startswith(COUNTER_PREFIX))).all()
    return {row.name.removeprefix(COUNTER_PREFIX): int(row.value) for row in rows if row.value.isdigit()}


def _insert_absent(session: Session) -> Insert:
    from sqlalchemy.dialects import postgresql, sqlite

    table = StoredValue.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["name"])
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=["name"])
