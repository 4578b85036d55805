"""`serve` in Lookout mode follows Lookout's event stream continuously instead of polling every minute:
one long-running task, with the process's one Lookout client (one connection pool, one token, one
share of the tenant's rate limit).

It is a leader-only task (`scheduler.py`): it runs only in the worker that leads, is cancelled when
that worker loses the lead, and the next leader resumes from the committed cursor. During a take-over
the old leader may still apply a few events for a moment (`notifications/leader.py`): applying an event
twice changes nothing (`sync.apply` compares with what is stored, alert keys are unique), and a cursor
written back a little only replays events that are then no-ops.
"""

import logging

from integration.errors import SourceError
from integration.sources import lookout
from integration.sources.follow import StreamFollower
from notifications.jobs import Deps

log = logging.getLogger(__name__)


async def follow(deps: Deps) -> None:
    """Follow the stream until cancelled (the scheduler restarts it if it ends)."""
    try:
        source = lookout.from_settings(deps.settings)
    except SourceError as error:  # no key: said at each (re)start; `jobs run source-sync` says it too
        log.error("not following Lookout's event stream: %s", error)
        return
    deps.source = source
    try:
        follower = StreamFollower(
            deps.store, source, clock=deps.clock, policy=deps.policy, committed=lambda _applied: deps.ring()
        )
        log.info("following Lookout's event stream")
        await follower.run()
    finally:
        deps.source = None
        await source.close()
