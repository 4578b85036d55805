"""The Lookout application key's age (issue 9): the heartbeat job opens a connector error from 30 days
before the key's one-year expiry, counted from `LOOKOUT_APP_KEY_CREATED` or the day mesbot first saw it."""

from datetime import timedelta

from integration.clock import FixedClock
from notifications.jobs import Deps
from storage.engine import Store
from tests.conftest import NOW
from tests.notifications.test_jobs import make_deps, open_errors, outbox_rows, run

KEY = "lookout-application-key-secret-value"
FINGERPRINT = "lookout-key:expiry"


def lookout(store: Store, clock: FixedClock, key: str = KEY, **env: str) -> Deps:
    return make_deps(store, clock, MESBOT_SOURCE="lookout", LOOKOUT_APP_KEY=key, **env)


def test_a_key_made_more_than_335_days_ago_is_warned_about_with_its_expiry_date(demo_store: Store) -> None:
    clock = FixedClock(NOW)
    made = (NOW - timedelta(days=340)).date().isoformat()
    outcome = run(lookout(demo_store, clock, LOOKOUT_APP_KEY_CREATED=made), "heartbeat")
    assert outcome.ok
    error = open_errors(demo_store)[FINGERPRINT]
    expires = (NOW - timedelta(days=340) + timedelta(days=365)).date().isoformat()
    assert f"expires on {expires}" in error.message and "(24 day(s) left)" in error.message
    assert "System → Application Keys" in error.message and KEY not in error.message
    assert any(r.category == "connector-errors" for r in outbox_rows(demo_store))  # announced at once


def test_a_younger_key_is_quiet(demo_store: Store) -> None:
    made = (NOW - timedelta(days=300)).date().isoformat()
    assert run(lookout(demo_store, FixedClock(NOW), LOOKOUT_APP_KEY_CREATED=made), "heartbeat").ok
    assert FINGERPRINT not in open_errors(demo_store)


def test_without_a_creation_date_the_key_ages_from_first_seen_and_a_new_key_starts_again(
    demo_store: Store,
) -> None:
    clock = FixedClock(NOW)
    run(lookout(demo_store, clock), "heartbeat")
    assert FINGERPRINT not in open_errors(demo_store)

    clock.advance(timedelta(days=340))
    run(lookout(demo_store, clock), "heartbeat")
    assert "first seen by mesbot" in open_errors(demo_store)[FINGERPRINT].message

    clock.advance(timedelta(days=1))
    run(lookout(demo_store, clock, key="a-fresh-key"), "heartbeat")
    assert FINGERPRINT not in open_errors(demo_store)


def test_a_creation_date_that_is_not_a_date_fails_the_job_with_the_variable_named(demo_store: Store) -> None:
    outcome = run(lookout(demo_store, FixedClock(NOW), LOOKOUT_APP_KEY_CREATED="last spring"), "heartbeat")
    assert not outcome.ok
    assert (
        "LOOKOUT_APP_KEY_CREATED `last spring` is not a date" in outcome.detail
        and "YYYY-MM-DD" in outcome.detail
    )


def test_the_demo_has_no_key_to_age(demo_store: Store) -> None:
    made = (NOW - timedelta(days=400)).date().isoformat()
    deps = make_deps(
        demo_store, FixedClock(NOW), MESBOT_SOURCE="demo", LOOKOUT_APP_KEY=KEY, LOOKOUT_APP_KEY_CREATED=made
    )
    assert run(deps, "heartbeat").ok
    assert FINGERPRINT not in open_errors(demo_store)
