"""The outbox (DESIGN §2): whatever must be sent is first a row with a unique idempotency key, committed
with the change that caused it; a deliverer claims due rows with a lease, sends outside any
transaction, then marks each row.

A row's life: pending → claimed → sent | pending again (retry, later `available_at`) | failed | expired.
A claimed row whose lease ran out (its worker died or stalled) is due again: `claim` takes it over, and
the stale worker's `mark` then finds its claim gone and changes nothing — so a crash re-sends at most
once per key. On PostgreSQL claims skip rows another worker has locked (`FOR UPDATE SKIP LOCKED`); on
SQLite the write transaction is exclusive.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Insert, and_, func, or_, true, update
from sqlmodel import Session, col, select

from storage.models import OutboxMessage
from storage.states import OutboxState

LEASE = timedelta(minutes=2)  # a dead worker's rows are claimed again within this


@dataclass(frozen=True)
class NewMessage:
    key: str  # event × recipient × channel
    recipient_id: str
    channel: str
    category: str
    payload: dict[str, Any]
    available_at: datetime
    expires_at: datetime
    fold_key: str | None = None


def enqueue(session: Session, messages: Sequence[NewMessage], now: datetime) -> int:
    """Insert the messages whose key is new; a key already queued (sent or not) is left alone.
    Returns how many were added."""
    if not messages:
        return 0
    rows = [
        {
            "idempotency_key": m.key,
            "recipient_id": m.recipient_id,
            "channel": m.channel,
            "category": m.category,
            "fold_key": m.fold_key,
            "payload": m.payload,
            "state": OutboxState.PENDING,
            "attempts": 0,
            "created_at": now,
            "available_at": m.available_at,
            "expires_at": m.expires_at,
        }
        for m in messages
    ]
    # Counted by RETURNING: psycopg reports no rowcount (-1) for a multi-row INSERT … ON CONFLICT.
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    return len(session.execute(_insert_new(session).values(rows).returning(table.c.id)).all())


def _insert_new(session: Session) -> Insert:
    # Imported here: the PostgreSQL dialect alone costs ~20 ms, and every `mesbot ask` imports this module.
    from sqlalchemy.dialects import postgresql, sqlite

    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])


def pending(session: Session, key: str) -> OutboxMessage | None:
    """The still-unsent row with this key, locked for update (summaries add to it)."""
    query = select(OutboxMessage).where(
        OutboxMessage.idempotency_key == key, OutboxMessage.state == OutboxState.PENDING
    )
    return session.exec(query.with_for_update()).first()


def recent(session: Session, fold_key: str, since: datetime) -> int:
    """How many rows with this fold key were queued since `since` (storm folding counts them)."""
    query = select(func.count()).where(OutboxMessage.fold_key == fold_key, OutboxMessage.created_at >= since)
    return int(session.exec(query).one())


def claim(
    session: Session,
    now: datetime,
    *,
    limit: int = 100,
    keys: Sequence[str] | None = None,
    lease: timedelta = LEASE,
) -> list[OutboxMessage]:
    """Take up to `limit` due rows (pending and available, or claimed with a lapsed lease), oldest
    first, and stamp them claimed at `now`: the stamp is the claim, which `mark` checks. With `keys`,
    only those rows."""
    # Rows named by key are taken whenever they are due: `notify test` queues its rows for later, so
    # only the command that queued them sends them (unless it died: then the deliverer does, later).
    due_by = now if keys is None else datetime.max.replace(tzinfo=now.tzinfo)
    due = or_(
        and_(col(OutboxMessage.state) == OutboxState.PENDING, col(OutboxMessage.available_at) <= due_by),
        and_(col(OutboxMessage.state) == OutboxState.CLAIMED, col(OutboxMessage.claimed_at) <= now - lease),
    )
    query = (
        select(OutboxMessage)
        .where(due, col(OutboxMessage.expires_at) > now)
        .where(col(OutboxMessage.idempotency_key).in_(keys) if keys is not None else true())
        .order_by(col(OutboxMessage.available_at), col(OutboxMessage.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = list(session.exec(query).all())
    for row in rows:
        row.state = OutboxState.CLAIMED
        row.claimed_at = now
        row.attempts += 1
        session.add(row)
    session.flush()
    return rows


def mark(
    session: Session,
    row_id: int,
    claimed_at: datetime,
    state: OutboxState,
    *,
    now: datetime,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """Record what became of a claimed row — only while the claim is still ours (a worker whose
    lease lapsed finds it taken and changes nothing). Returns whether it was marked."""
    values: dict[str, Any] = {"state": state, "last_error": error}
    if state == OutboxState.SENT:
        values["sent_at"] = now
    if state == OutboxState.PENDING:
        values["available_at"] = retry_at or now
        values["claimed_at"] = None
    return _update_claim(session, row_id, claimed_at, values)


def renew(session: Session, row_id: int, claimed_at: datetime, now: datetime) -> bool:
    """Extend a claim that is still ours (a batch that takes longer than a lease keeps its rows)."""
    return _update_claim(session, row_id, claimed_at, {"claimed_at": now})


def _update_claim(session: Session, row_id: int, claimed_at: datetime, values: dict[str, Any]) -> bool:
    """Change a claimed row only while `claimed_at` is still its claim stamp: the claim is ours."""
    query = (
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id) == row_id,
            col(OutboxMessage.state) == OutboxState.CLAIMED,
            col(OutboxMessage.claimed_at) == claimed_at,
        )
        .values(**values)
    )
    return _count(session.execute(query)) > 0


def expire(session: Session, now: datetime) -> int:
    """Unsent rows past their TTL become `expired` (the digest counts them) instead of being sent late."""
    query = (
        update(OutboxMessage)
        .where(
            col(OutboxMessage.state).in_([OutboxState.PENDING, OutboxState.CLAIMED]),
            col(OutboxMessage.expires_at) <= now,
        )
        .values(state=OutboxState.EXPIRED, last_error="expired before it could be sent")
    )
    return _count(session.execute(query))


def next_due(session: Session, lease: timedelta = LEASE) -> datetime | None:
    """When the next row becomes due: a pending one's `available_at`, or a claimed one's lapsed lease."""
    pending = select(func.min(OutboxMessage.available_at)).where(OutboxMessage.state == OutboxState.PENDING)
    claimed = select(func.min(OutboxMessage.claimed_at)).where(OutboxMessage.state == OutboxState.CLAIMED)
    times = [session.exec(pending).one(), session.exec(claimed).one()]
    if times[1] is not None:
        times[1] += lease
    return min((t for t in times if t is not None), default=None)


def oldest_due(session: Session, now: datetime) -> datetime | None:
    """When the longest-waiting pending row became due (`/metrics`: a growing age means nothing sends)."""
    query = select(func.min(OutboxMessage.available_at)).where(
        OutboxMessage.state == OutboxState.PENDING, col(OutboxMessage.available_at) <= now
    )
    return session.exec(query).one()


def depth(session: Session) -> dict[str, int]:
    """Rows by state (`/metrics`)."""
    rows = session.exec(select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all()
    counts = dict.fromkeys((s.value for s in OutboxState), 0)
    counts.update({OutboxState(state).value: int(n) for state, n in rows})
    return counts


def _count(result: Any) -> int:
    """Rows an INSERT or UPDATE touched."""
    return max(int(cast(CursorResult[Any], result).rowcount or 0), 0)
