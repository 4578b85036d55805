"""Shared fixtures: a clean environment for every test, a real store on SQLite (and PostgreSQL when
MESBOT_TEST_POSTGRES_URL is set), the demo tenant seeded at a fixed time, and a console acting on it."""

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.console import Console
from integration import tenant
from integration.clock import FixedClock
from integration.demo import seed as demo_seed
from storage import migrate
from storage.engine import Store

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get("MESBOT_TEST_POSTGRES_URL")  # read once, before the fixture below clears it
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
# Every prefix `integration.config.Settings` reads.
SETTINGS_PREFIXES = ("MESBOT_", "SLACK_", "LOOKOUT_", "GRAPH_")


def _settings_variables() -> list[str]:
    return [name for name in os.environ if name.startswith(SETTINGS_PREFIXES)]


@pytest.fixture(scope="session", autouse=True)
def _no_settings_from_the_environment() -> Iterator[None]:
    """Also for session fixtures (test_ask's seeded demo), which run before any test's own fixtures."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _settings_variables():
            patch.delenv(name)
        yield


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the developer's settings: no `MESBOT_*`/`SLACK_*`/… variables (not even one an
    earlier test left behind), and the working directory is the test's own empty folder, so `Settings()`
    (and a `mesbot` subprocess) finds no `.env` and relative paths cannot land in the checkout."""
    for name in _settings_variables():
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def make_store(backend: str, tmp_path: object) -> Store:
    if backend == "sqlite":
        store = Store(f"sqlite:///{tmp_path}/mesbot.db")
    else:
        if not POSTGRES_URL:
            pytest.skip("MESBOT_TEST_POSTGRES_URL is not set")
        # A schema of this process's own, so concurrent test runs on one database do not collide.
        schema = f"mesbot_test_{os.getpid()}"
        separator = "&" if "?" in POSTGRES_URL else "?"
        store = Store(f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}")
        with store.engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        migrate.upgrade(store)
        with store.write() as session:
            tenant.ensure_defaults(session)
    except BaseException:
        store.dispose()
        raise
    return store


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Store]:
    made = make_store(request.param, tmp_path)
    yield made
    made.dispose()


@pytest.fixture
def sqlite_store(tmp_path: object) -> Iterator[Store]:
    made = make_store("sqlite", tmp_path)
    yield made
    made.dispose()


def seed_demo(store: Store, *, users: int = 60, devices: int = 150, seed: int = 7) -> None:
    with store.write() as session:
        demo_seed.seed(session, users=users, devices=devices, seed=seed, now=NOW)


@pytest.fixture
def demo_store(store: Store) -> Store:
    """The demo tenant (small), on each backend."""
    seed_demo(store)
    return store


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def console(demo_store: Store, clock: FixedClock) -> Console:
    return Console(demo_store, clock)


class OtherWriter:
    """Another connection to a store's SQLite file, taking the write lock (`BEGIN IMMEDIATE`) and holding
    it, as a long write in another process would: a store with a short busy timeout then raises StoreBusy."""

    def __init__(self, store: Store) -> None:
        assert store.is_sqlite
        self.connection = sqlite3.connect(store.url.split("///", 1)[1], isolation_level=None)

    def lock(self) -> None:
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.connection.in_transaction:
            self.connection.execute("ROLLBACK")

    def __enter__(self) -> "OtherWriter":
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
        self.connection.close()


def impatient(store: Store) -> Store:
    """Another store on the same SQLite file that waits only 50 ms for a lock (StoreBusy after that)."""
    return Store(store.url, busy_timeout_ms=50)


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_test_schema() -> Iterator[None]:
    yield
    if POSTGRES_URL:
        from sqlalchemy import create_engine

        from storage.engine import normalise_url

        engine = create_engine(normalise_url(POSTGRES_URL))
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS mesbot_test_{os.getpid()} CASCADE"))
        engine.dispose()
