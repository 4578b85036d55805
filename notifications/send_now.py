"""Delivering a few outbox rows at once for a command that must say how it went (`notify test`),
through the same channels and deliverer as every other message."""

import asyncio

from integration.clock import Clock
from integration.config import Settings
from notifications import wiring
from notifications.delivery import Deliverer
from storage.engine import Store


def send_now(
    settings: Settings, store: Store, clock: Clock, keys: tuple[str, ...]
) -> dict[str, tuple[bool, str]]:
    """Blocking: called from the console after the command's transaction, on a thread without a
    running event loop (the CLI's main thread, or the worker thread a Slack change runs on)."""
    deliverer = Deliverer(store, wiring.channels(settings, store, clock), clock)
    return asyncio.run(deliverer.deliver_keys(keys))
