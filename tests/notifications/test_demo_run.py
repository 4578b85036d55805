"""`demo run` counts simulated time from where the tenant stands, however long ago it was seeded, and
gives the same day for the same seed."""

import asyncio
from pathlib import Path

import pytest

from integration.config import Settings
from notifications import demo_run
from tests.conftest import make_store, seed_demo


def run_on_a_fresh_copy(folder: Path, monkeypatch: pytest.MonkeyPatch) -> demo_run.DemoSummary:
    folder.mkdir()
    monkeypatch.chdir(folder)  # the .eml files land in ./var/mail/
    store = make_store("sqlite", folder)
    seed_demo(store)  # seeded at tests.conftest.NOW, days before the wall clock
    try:
        return asyncio.run(demo_run.run(Settings(), store, 6))
    finally:
        store.dispose()


def test_a_tenant_seeded_days_ago_runs_from_its_own_time_the_same_way_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run_on_a_fresh_copy(tmp_path / "a", monkeypatch)
    assert first.job_runs["source-sync"] == 6 * 60 and first.job_runs["heartbeat"] == 6
    assert first.threats_opened > 0 and first.failures == []
    second = run_on_a_fresh_copy(tmp_path / "b", monkeypatch)
    assert demo_run.report(second) == demo_run.report(first)
    assert (second.start, second.threats_opened, second.sent) == (
        first.start,
        first.threats_opened,
        first.sent,
    )
