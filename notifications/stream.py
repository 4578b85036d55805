"""`serve` in Lookout mode follows Lookout's event stream continuously instead of polling every minute:
one long-running task, with the process's one Lookout client (one connection pool, one token).

It is started and stopped by the scheduler (`scheduler.py`), so it runs only where the periodic jobs
run (the leader, once leader election is in).
"""

import asyncio
import contextlib
import logging

from integration.errors import SourceError
from integration.sources import lookout
from integration.sources.follow import StreamFollower
from notifications.jobs import Deps

log = logging.getLogger(__name__)


class SourceStream:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        try:
            self.deps.source = lookout.from_settings(self.deps.settings)
        except SourceError as error:  # no key: say so once; `jobs run source-sync` says it too
            log.error("not following Lookout's event stream: %s", error)
            return
        follower = StreamFollower(
            self.deps.store,
            self.deps.source,
            clock=self.deps.clock,
            policy=self.deps.policy,
            committed=lambda _applied: self.deps.ring(),
        )
        self._task = asyncio.create_task(follower.run(), name="lookout-stream")
        log.info("following Lookout's event stream")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.deps.source is not None:
            await self.deps.source.close()
            self.deps.source = None
