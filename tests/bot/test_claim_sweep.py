"""`mesbot serve`'s hourly sweep: once-only keys older than a day are dropped, newer ones kept; a busy
store postpones the sweep to the next hour."""

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.serve import CLAIM_SWEEP_SECONDS, forget_old_claims
from integration.clock import FixedClock
from storage import claims
from storage.engine import Store
from tests.conftest import NOW, OtherWriter, impatient

AGES = {
    "two days": timedelta(days=2),
    "a day and a minute": claims.RETENTION + timedelta(minutes=1),
    "23 and a half hours": timedelta(hours=23, minutes=30),
    "a minute": timedelta(minutes=1),
}


class StopSweeping(Exception):
    """Ends the endless sweep loop (asyncio.wait_for below turns a sweep that never sleeps into a failure)."""


class Hours:
    """Stands in for the sweep's sleep: notes which keys each sweep left, runs `between`, and moves
    the clock on instead of waiting; stops the sweep after `sweeps` sweeps."""

    def __init__(
        self, store: Store, clock: FixedClock, sweeps: int, between: Callable[[], None] = lambda: None
    ) -> None:
        self.store, self.clock, self.sweeps, self.between = store, clock, sweeps, between
        self.kept: list[set[str]] = []

    async def __call__(self, seconds: float) -> None:
        self.kept.append({key for key in AGES if claims.is_claimed(self.store, key)})
        if len(self.kept) == self.sweeps:
            raise StopSweeping
        self.between()
        self.clock.at += timedelta(seconds=seconds)


def _claim_all(store: Store) -> Store:
    for key, age in AGES.items():
        assert claims.claim(store, key, NOW - age)
    return store


@pytest.fixture
def claimed(store: Store) -> Store:
    return _claim_all(store)


async def test_the_sweep_drops_claims_older_than_a_day_and_keeps_newer(claimed: Store) -> None:
    clock = FixedClock(NOW)
    hours = Hours(claimed, clock, sweeps=2)
    with pytest.raises(StopSweeping):
        await asyncio.wait_for(forget_old_claims(claimed, clock=clock, sleep=hours), timeout=30)
    assert clock.at == NOW + timedelta(seconds=CLAIM_SWEEP_SECONDS)
    assert hours.kept == [{"23 and a half hours", "a minute"}, {"a minute"}]  # at NOW, then an hour later


async def test_a_busy_store_keeps_old_claims_until_the_next_sweep(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store, clock = impatient(_claim_all(sqlite_store)), FixedClock(NOW)
    with OtherWriter(store) as other:
        other.lock()  # held through the first sweep, released before the second
        hours = Hours(store, clock, sweeps=2, between=other.release)
        with pytest.raises(StopSweeping):
            await asyncio.wait_for(forget_old_claims(store, clock=clock, sleep=hours), timeout=30)
    store.dispose()
    assert hours.kept == [set(AGES), {"a minute"}]
    assert any(
        r.getMessage().startswith("old claims kept until the next sweep: The store is busy")
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
