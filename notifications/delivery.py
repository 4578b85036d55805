"""The deliverer: claim due outbox rows → check the recipient may still have them → send outside any
transaction → mark each row by what its channel said (DESIGN §2).

Sent → `sent`. Retry (SMTP 4xx, Slack 429/5xx, timeouts) → `pending` again after an exponential
backoff with jitter, or exactly the server's `Retry-After`. Failed (SMTP 5xx, permanent Slack errors)
→ `failed` with the reason. A recipient who opted out or lost console access in between → `withdrawn`.
Rows past their TTL → `expired` (the digest counts them). Marks apply only while this worker's claim
holds (storage/outbox.py), so a worker that stalled past its lease cannot overwrite another's result.
"""

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlmodel import Session

from integration import alerts, tenant
from integration.clock import Clock
from integration.messages import MAILTO, SLACK_CHANNEL
from notifications.outcome import Failed, Outcome, Retry, Sent
from storage import fleet, outbox
from storage.engine import Store
from storage.models import DirectoryUser, OutboxMessage
from storage.states import OutboxState

log = logging.getLogger(__name__)

NOT_CONFIGURED = {"slack": "Slack is not configured (SLACK_BOT_TOKEN is not set)"}
BATCH = 100
MAX_ATTEMPTS = 10
BACKOFF_BASE = timedelta(seconds=30)
MIN_RETRY_SECONDS = 1.0
BACKOFF_CAP = timedelta(minutes=15)


@dataclass(frozen=True)
class Outgoing:
    """One claimed row, ready for its channel."""

    row_id: int
    key: str
    channel: str  # email | slack
    category: str
    payload: dict[str, Any]
    user_id: str | None  # a directory user, or None for an address or a channel
    address: str | None  # the e-mail address (a user's, or the error-report address)
    slack_channel: str | None  # a channel ID (the on-call digest), else a DM to `address`
    display_name: str | None


class Channel(Protocol):
    """A way to send: e-mail or Slack. `send` never raises; it says what became of each message."""

    name: str

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]: ...


@dataclass
class Delivered:
    """What one pass did."""

    claimed: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, sent|retry|failed)
    withdrawn: int = 0
    expired: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds from queued to sent
    # Sent, but the claim had lapsed and another worker took the row over: it sends it again (by channel).
    duplicates: Counter[str] = field(default_factory=Counter)

    @property
    def sent(self) -> int:
        return sum(n for (_, outcome), n in self.outcomes.items() if outcome == "sent")


class Deliverer:
    def __init__(
        self,
        store: Store,
        channels: dict[str, Channel],
        clock: Clock,
        *,
        batch: int = BATCH,
        lease: timedelta = outbox.LEASE,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.channels = channels
        self.clock = clock
        self.batch = batch
        self.lease = lease
        self.jitter = jitter

    async def deliver_once(self) -> Delivered:
        """One pass: everything due now, in batches, until nothing is due."""
        done = Delivered()
        while True:
            claimed = await asyncio.to_thread(self._claim, done)
            if not claimed:
                return done
            await self._send(claimed, done)
            if len(claimed) < self.batch:
                return done

    async def deliver_keys(self, keys: Sequence[str]) -> dict[str, tuple[bool, str]]:
        """Deliver these rows now, whenever they are due (`notify test`); per channel, whether it was
        sent and what happened."""
        done = Delivered()
        claimed = await asyncio.to_thread(self._claim, done, keys)
        results = await self._send(claimed, done)
        return {row.channel: _said(outcome) for row, outcome in results}

    def _claim(
        self, done: Delivered, keys: Sequence[str] | None = None
    ) -> list[tuple[OutboxMessage, Outgoing | None]]:
        """Claim due rows and look at each recipient now: `None` where the row is not to be sent."""
        now = self.clock.now()
        with self.store.write() as session:
            done.expired += outbox.expire(session, now)
            rows = outbox.claim(session, now, limit=self.batch, keys=keys, lease=self.lease)
            done.claimed += len(rows)
            return [(row, _outgoing(session, row)) for row in rows]

    async def _send(
        self, claimed: list[tuple[OutboxMessage, Outgoing | None]], done: Delivered
    ) -> list[tuple[OutboxMessage, Outcome | None]]:
        results: list[tuple[OutboxMessage, Outcome | None]] = [
            (row, None) for row, out in claimed if out is None
        ]
        by_channel: dict[str, list[tuple[OutboxMessage, Outgoing]]] = {}
        for row, out in claimed:
            if out is not None:
                by_channel.setdefault(out.channel, []).append((row, out))
        sending = asyncio.Event()
        keeper = asyncio.create_task(self._keep_claims([row for row, _ in claimed], sending))  # noqa: RUF006  (awaited below)
        try:
            for name, items in by_channel.items():
                outcomes = await self._send_on(name, [out for _, out in items])
                results.extend((row, outcome) for (row, _), outcome in zip(items, outcomes, strict=True))
        finally:
            sending.set()
            await keeper  # its last renewal is written before the marks read the claims
        await asyncio.to_thread(self._mark, results, done)
        return results

    async def _keep_claims(self, rows: list[OutboxMessage], done: asyncio.Event) -> None:
        """Renew the claims every third of the lease while the batch is being sent: a slow relay or a
        long Retry-After must not let another worker take rows this one is still sending."""
        interval = self.lease.total_seconds() / 3
        while True:
            try:
                await asyncio.wait_for(done.wait(), interval)
                return
            except TimeoutError:
                pass
            try:
                await asyncio.to_thread(self._renew, rows)
            except Exception:  # a busy store: the claims may lapse, and mark will notice
                log.warning("outbox claims not renewed", exc_info=True)

    def _renew(self, rows: list[OutboxMessage]) -> None:
        now = self.clock.now()
        with self.store.write() as session:
            renewed = [
                row
                for row in rows
                if row.id is not None
                and row.claimed_at is not None
                and outbox.renew(session, row.id, row.claimed_at, now)
            ]
        for row in renewed:  # only after the commit: the stamps are the claims
            row.claimed_at = now

    async def _send_on(self, name: str, messages: list[Outgoing]) -> list[Outcome]:
        channel = self.channels.get(name)
        if channel is None:
            return [Failed(NOT_CONFIGURED.get(name, f"the {name} channel is not configured"))] * len(messages)
        try:
            outcomes = await channel.send(messages)
        except Exception as error:  # a sender bug must not lose the rows: they are tried again later
            log.exception("the %s sender failed", name)
            return [Retry(f"{name} sender error: {type(error).__name__}")] * len(messages)
        if len(outcomes) != len(messages):
            log.error("the %s sender answered %d of %d messages", name, len(outcomes), len(messages))
            return [Retry(f"{name} sender lost track")] * len(messages)
        return outcomes

    def _mark(self, results: list[tuple[OutboxMessage, Outcome | None]], done: Delivered) -> None:
        now = self.clock.now()
        with self.store.write() as session:
            for row, outcome in results:
                assert row.id is not None and row.claimed_at is not None
                state, error, retry_at = self._verdict(row, outcome, now)
                if not outbox.mark(
                    session, row.id, row.claimed_at, state, now=now, error=error, retry_at=retry_at
                ):
                    log.warning(
                        "outbox row %s was taken over by another worker; its result is theirs", row.id
                    )
                    if isinstance(outcome, Sent):  # and they send it too: counted fleet-wide (/metrics)
                        done.duplicates[row.channel] += 1
                        fleet.bump(session, fleet.DUPLICATE_SENDS)
                    continue
                if outcome is None:
                    done.withdrawn += 1
                    continue
                done.outcomes[(row.channel, _word(outcome))] += 1
                if isinstance(outcome, Sent):
                    done.latencies.append((now - row.created_at).total_seconds())

    def _verdict(
        self, row: OutboxMessage, outcome: Outcome | None, now: datetime
    ) -> tuple[OutboxState, str | None, datetime | None]:
        if outcome is None:
            return OutboxState.WITHDRAWN, "the recipient turned this off or lost console access", None
        if isinstance(outcome, Sent):
            return OutboxState.SENT, None, None
        if isinstance(outcome, Failed):
            return OutboxState.FAILED, outcome.reason, None
        if row.attempts >= MAX_ATTEMPTS:
            return OutboxState.FAILED, f"gave up after {row.attempts} attempts: {outcome.reason}", None
        return OutboxState.PENDING, outcome.reason, now + self.backoff(row.attempts, outcome.after_seconds)

    def backoff(self, attempts: int, retry_after: float | None) -> timedelta:
        """Exactly the server's Retry-After when it gave one; else exponential, with jitter over the
        upper half of the wait so a fleet of rows that failed together does not come back together."""
        if retry_after is not None:  # at least a second: `Retry-After: 0` must not spin a batch
            return timedelta(seconds=max(retry_after, MIN_RETRY_SECONDS))
        ceiling: timedelta = min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)
        return ceiling * (0.5 + self.jitter() / 2)


def _said(outcome: Outcome | None) -> tuple[bool, str]:
    if outcome is None:
        return False, "not sent (turned off, or no console access)"
    if isinstance(outcome, Sent):
        return True, "sent"
    if isinstance(outcome, Retry):
        return False, f"{outcome.reason} (it will be tried again)"
    return False, outcome.reason


def _word(outcome: Outcome) -> str:
    return {Sent: "sent", Retry: "retry", Failed: "failed"}[type(outcome)]


def _outgoing(session: Session, row: OutboxMessage) -> Outgoing | None:
    """Where a row goes, if it still may: a user must still be a console user opted in to its
    category on its channel (a test alert goes to whoever asked for it)."""
    assert row.id is not None
    user_id = address = slack_channel = display_name = None
    if row.recipient_id.startswith(MAILTO):
        address = row.recipient_id.removeprefix(MAILTO)
        if address != tenant.connector(session).error_email:
            return None  # the error-report address changed since: the old one is not told any more
    elif row.recipient_id.startswith(SLACK_CHANNEL):
        slack_channel = row.recipient_id.removeprefix(SLACK_CHANNEL)
    else:
        user = session.get(DirectoryUser, row.recipient_id)
        if user is None:
            return None
        if row.category != "test" and not alerts.may_receive(session, user.id, row.category, row.channel):
            return None
        user_id, address, display_name = user.id, user.email, user.display_name
    return Outgoing(
        row_id=row.id,
        key=row.idempotency_key,
        channel=row.channel,
        category=row.category,
        payload=row.payload,
        user_id=user_id,
        address=address,
        slack_channel=slack_channel,
        display_name=display_name,
    )
