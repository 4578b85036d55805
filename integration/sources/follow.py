"""Following a source's event stream into the store: each transaction applies what arrived together
with the cursor after it (`sync.apply(..., cursor=)`), so a crash anywhere replays from the last commit
and nothing is lost or applied twice.

A reader task pulls batches off the stream into a queue while the writer applies the previous ones in
a thread: when events arrive faster than one transaction takes, the writer takes everything waiting
(up to `max_events`) into one transaction. A stream that fails, or a transaction that fails, ends the
reader; `follow` records a connector error (stream faults only) and `run` starts again from the
committed cursor after a back-off. The first transaction that works resolves the error.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from integration import connector_errors, sync
from integration.alerts import AlertPolicy
from integration.clock import Clock
from integration.errors import SourceError, StoreError
from integration.sources.port import Batch, ThreatSource
from integration.sync import Cursor
from storage.engine import Store
from storage.models import SourceCursor

log = logging.getLogger(__name__)

STREAM_FAILING = "lookout:stream"  # connector error fingerprints
MALFORMED_EVENT = "lookout:malformed-event"
FIRST_START = timedelta(days=10)  # no cursor and no full sync yet: as far back as Lookout replays
MAX_EVENTS = 5_000  # per transaction
QUEUE_FRAMES = 256
RESTART_SECONDS = (1.0, 60.0)  # back-off between restarts: first, longest


@dataclass
class Followed:
    events: int = 0
    transactions: int = 0
    devices_added: int = 0
    devices_changed: int = 0
    threats_opened: int = 0
    threats_closed: int = 0
    alerts: int = 0
    malformed: int = 0

    def line(self) -> str:
        return (
            f"{self.events:,} event(s): {self.threats_opened} threat(s) opened, "
            f"{self.threats_closed} closed, {self.devices_added} device(s) added, "
            f"{self.devices_changed} changed, {self.alerts} alert(s) queued"
            + (f", {self.malformed} unreadable (see `connector`)" if self.malformed else "")
        )


class StreamFollower:
    """Applies one source's stream to the store. `committed` is called after each commit with what it
    changed (the caller rings the deliverer)."""

    def __init__(
        self,
        store: Store,
        source: ThreatSource,
        *,
        clock: Clock,
        policy: AlertPolicy,
        committed: Callable[[sync.Applied], None] = lambda _applied: None,
        max_events: int = MAX_EVENTS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.store = store
        self.source = source
        self.clock = clock
        self.policy = policy
        self.committed = committed
        self.max_events = max_events
        self.sleep = sleep
        self.total = Followed()
        self._resolve_pending = True  # an error left open by an earlier run is resolved by the first commit

    async def run(self) -> None:
        """Follow for ever (`serve`), starting again from the committed cursor after any failure."""
        failures = 0
        while True:
            progress = self.total.transactions
            try:
                await self.follow(until_idle=False)
            except (SourceError, StoreError) as error:
                failures = 1 if self.total.transactions > progress else failures + 1
                wait = min(RESTART_SECONDS[1], RESTART_SECONDS[0] * 2 ** min(failures - 1, 10))
                log.warning("following Lookout's stream stopped (%s); again in %.0f s", error, wait)
                await self.sleep(wait)
            else:
                failures = 0

    async def follow(self, *, until_idle: bool, max_seconds: float | None = None) -> Followed:
        """Apply the stream from the committed cursor. `until_idle`: return at the first sign that the
        stream has caught up (or after `max_seconds`). A source failure is recorded as a connector
        error and raised; a store failure is raised (the next start replays from the last commit)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_seconds if max_seconds is not None else None
        done = Followed()
        queue: asyncio.Queue[Batch | BaseException] = asyncio.Queue(QUEUE_FRAMES)
        after = await asyncio.to_thread(self._committed_cursor)
        reader = asyncio.create_task(self._read(after, queue, until_idle), name="lookout-stream-reader")
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    first = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    return done
                batch, idle = self._gather(first, queue)
                if batch.events or batch.malformed or batch.cursor is not None:
                    applied = await asyncio.to_thread(self._apply, batch)
                    self._count(done, batch, applied)
                    self.committed(applied)
                elif self._resolve_pending:  # a stream that works again but has nothing to say
                    await asyncio.to_thread(self._resolve)
                if until_idle and idle and queue.empty():
                    return done
        except SourceError as error:
            await asyncio.to_thread(self._record_failure, str(error))
            raise
        finally:
            reader.cancel()
            await asyncio.wait({reader})  # (not `suppress(CancelledError)`: ours must not be swallowed)
            if not reader.cancelled():
                reader.exception()  # retrieved: what it raised reached the writer through the queue

    async def _read(
        self, after: str | None, queue: "asyncio.Queue[Batch | BaseException]", until_idle: bool
    ) -> None:
        start = self.clock.now() - FIRST_START
        try:
            async for batch in self.source.stream(after, start=start):
                await queue.put(batch)
                if until_idle and not (batch.events or batch.malformed or batch.cursor):
                    return  # caught up: read no further than the caller will apply
        except SourceError as error:
            await queue.put(error)

    def _gather(
        self, first: Batch | BaseException, queue: "asyncio.Queue[Batch | BaseException]"
    ) -> tuple[Batch, bool]:
        """What is waiting, merged into one batch (in order); and whether the stream said it is idle."""
        if isinstance(first, BaseException):
            raise first
        events, malformed = list(first.events), list(first.malformed)
        cursor, idle = first.cursor, not (first.events or first.malformed or first.cursor)
        while len(events) < self.max_events and not queue.empty():
            more = queue.get_nowait()
            if isinstance(more, BaseException):
                queue.put_nowait(more)  # apply what came before it first
                break
            events += more.events
            malformed += more.malformed
            cursor = more.cursor or cursor
            idle = not (more.events or more.malformed or more.cursor)
        return Batch(events, cursor, malformed), idle

    def _committed_cursor(self) -> str | None:
        with self.store.read() as session:
            row = session.get(SourceCursor, self.source.cursor_name)
            return row.value if row is not None else None

    def _apply(self, batch: Batch) -> sync.Applied:
        now = self.clock.now()
        cursor = Cursor(self.source.cursor_name, batch.cursor) if batch.cursor is not None else None
        with self.store.write() as session:
            if batch.malformed:
                message = f"Lookout sent {len(batch.malformed)} event(s) mesbot cannot read (skipped): "
                connector_errors.record(
                    session, MALFORMED_EVENT, message + "; ".join(batch.malformed[:3]), now
                )
            applied = sync.apply(session, batch.events, now=now, policy=self.policy, cursor=cursor)
            if self._resolve_pending:
                connector_errors.resolve(session, STREAM_FAILING, now)
        self._resolve_pending = False
        return applied

    def _resolve(self) -> None:
        with self.store.write() as session:
            connector_errors.resolve(session, STREAM_FAILING, self.clock.now())
        self._resolve_pending = False

    def _record_failure(self, message: str) -> None:
        try:
            with self.store.write() as session:
                connector_errors.record(
                    session, STREAM_FAILING, f"Lookout's event stream failed: {message}", self.clock.now()
                )
        except StoreError as error:
            log.warning("the stream's failure was not recorded: %s", error)
        self._resolve_pending = True

    def _count(self, done: Followed, batch: Batch, applied: sync.Applied) -> None:
        for tally in (done, self.total):
            tally.events += len(batch.events)
            tally.transactions += 1
            tally.devices_added += applied.devices_added
            tally.devices_changed += applied.devices_changed
            tally.threats_opened += len(applied.threats_opened)
            tally.threats_closed += applied.threats_closed
            tally.alerts += applied.alerts
            tally.malformed += len(batch.malformed)
        if applied.skipped:
            log.info(
                "Lookout stream: %d event(s) not applied, e.g. %s", len(applied.skipped), applied.skipped[0]
            )
