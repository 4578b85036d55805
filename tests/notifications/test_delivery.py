"""The deliverer: claim, re-check, send outside the transaction, mark; leases, backoff, TTL."""

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import col, select

from integration import preferences, sync
from integration.access import sign_in
from integration.clock import FixedClock
from integration.demo.data import ADMIN
from notifications.delivery import MAX_ATTEMPTS, Deliverer, Outgoing
from notifications.outcome import Failed, Outcome, Retry, Sent
from storage import outbox
from storage.engine import Store
from storage.models import OutboxMessage, Subscription
from storage.states import OutboxState
from tests.conftest import NOW
from tests.integration.test_sync import clean_device, opened


class FakeChannel:
    def __init__(self, name: str, answer: Callable[[Outgoing], Outcome] = lambda _: Sent()) -> None:
        self.name = name
        self.answer = answer
        self.sent: list[Outgoing] = []

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        self.sent.extend(messages)
        return [self.answer(m) for m in messages]


def new_threat(store: Store, count: int = 1) -> None:
    with store.write() as session:
        device = clean_device(session)
        sync.apply(session, [opened(device.id, app=f"App {n}") for n in range(count)], now=NOW)


def states(store: Store) -> list[tuple[str, OutboxState]]:
    with store.read() as session:
        rows = session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all()
        return [(r.channel, r.state) for r in rows]


def deliver(store: Store, clock: FixedClock, **channels: FakeChannel) -> Deliverer:
    return Deliverer(store, dict(channels), clock, jitter=lambda: 1.0)


def test_each_row_is_sent_once_on_its_channel_and_marked_sent(demo_store: Store) -> None:
    new_threat(demo_store)
    email, slack = FakeChannel("email"), FakeChannel("slack")
    deliverer = deliver(demo_store, FixedClock(NOW + timedelta(seconds=2)), email=email, slack=slack)
    done = asyncio.run(deliverer.deliver_once())
    assert done.sent == 2 and done.latencies == [2.0, 2.0]
    assert [m.address for m in email.sent] == [ADMIN] and [m.address for m in slack.sent] == [ADMIN]
    assert states(demo_store) == [("email", OutboxState.SENT), ("slack", OutboxState.SENT)]
    again = asyncio.run(deliverer.deliver_once())
    assert again.claimed == 0 and len(email.sent) == 1


def test_an_opt_out_between_enqueue_and_send_is_honoured(demo_store: Store) -> None:
    new_threat(demo_store)
    with demo_store.write() as session:
        admin = sign_in(session, ADMIN)[0]
        preferences.set_preferences(
            session, admin.id, ("threat-high",), ("email",), False, actor=ADMIN, at=NOW
        )
    email, slack = FakeChannel("email"), FakeChannel("slack")
    done = asyncio.run(deliver(demo_store, FixedClock(NOW), email=email, slack=slack).deliver_once())
    assert email.sent == [] and len(slack.sent) == 1 and done.withdrawn == 1
    assert states(demo_store) == [("email", OutboxState.WITHDRAWN), ("slack", OutboxState.SENT)]


def test_a_user_who_lost_console_access_is_not_sent_to(demo_store: Store) -> None:
    new_threat(demo_store)
    with demo_store.write() as session:
        subscription = session.get(Subscription, 1)
        assert subscription is not None
        subscription.full_access_group_id = None
        session.add(subscription)
    email = FakeChannel("email")
    asyncio.run(deliver(demo_store, FixedClock(NOW), email=email, slack=FakeChannel("slack")).deliver_once())
    assert email.sent == [] and {s for _, s in states(demo_store)} == {OutboxState.WITHDRAWN}


def test_a_transient_failure_is_retried_after_backoff_or_exactly_retry_after(demo_store: Store) -> None:
    new_threat(demo_store)
    clock = FixedClock(NOW)
    email = FakeChannel("email", lambda _: Retry("451 try later"))
    slack = FakeChannel("slack", lambda _: Retry("ratelimited", after_seconds=7))
    deliverer = deliver(demo_store, clock, email=email, slack=slack)
    asyncio.run(deliverer.deliver_once())
    with demo_store.read() as session:
        rows = {r.channel: r for r in session.exec(select(OutboxMessage)).all()}
    assert rows["email"].state == OutboxState.PENDING and rows["email"].last_error == "451 try later"
    assert rows["email"].available_at == NOW + timedelta(seconds=30)  # first backoff, jitter pinned at 1
    assert rows["slack"].available_at == NOW + timedelta(seconds=7)
    clock.advance(timedelta(seconds=8))
    email.answer = slack.answer = lambda _: Sent()
    done = asyncio.run(deliverer.deliver_once())
    assert [m.channel for m in slack.sent] == ["slack", "slack"] and len(email.sent) == 1 and done.sent == 1
    clock.advance(timedelta(seconds=30))
    assert asyncio.run(deliverer.deliver_once()).sent == 1
    assert {s for _, s in states(demo_store)} == {OutboxState.SENT}


def test_backoff_grows_and_is_capped() -> None:
    deliverer = Deliverer(None, {}, FixedClock(NOW), jitter=lambda: 1.0)  # type: ignore[arg-type]
    waits = [deliverer.backoff(n, None).total_seconds() for n in (1, 2, 3, 10)]
    assert waits == [30, 60, 120, 900]
    assert Deliverer(None, {}, FixedClock(NOW), jitter=lambda: 0.0).backoff(1, None).total_seconds() == 15  # type: ignore[arg-type]


def test_a_permanent_failure_is_failed_with_its_reason_and_the_batch_goes_on(demo_store: Store) -> None:
    new_threat(demo_store, count=3)
    answers = iter([Sent(), Failed("550 mailbox unavailable"), Sent()])
    email = FakeChannel("email", lambda _: next(answers))
    asyncio.run(deliver(demo_store, FixedClock(NOW), email=email, slack=FakeChannel("slack")).deliver_once())
    with demo_store.read() as session:
        rows = session.exec(select(OutboxMessage).where(OutboxMessage.channel == "email")).all()
    assert sorted((r.state, r.last_error or "") for r in rows) == [
        (OutboxState.FAILED, "550 mailbox unavailable"),
        (OutboxState.SENT, ""),
        (OutboxState.SENT, ""),
    ]


def test_rows_past_their_ttl_expire_instead_of_being_sent_late(demo_store: Store) -> None:
    new_threat(demo_store)
    email, slack = FakeChannel("email"), FakeChannel("slack")
    done = asyncio.run(
        deliver(demo_store, FixedClock(NOW + timedelta(hours=2)), email=email, slack=slack).deliver_once()
    )
    assert email.sent == slack.sent == [] and done.expired == 2
    assert {s for _, s in states(demo_store)} == {OutboxState.EXPIRED}


def test_a_row_claimed_by_a_dead_worker_is_claimed_again_after_the_lease(demo_store: Store) -> None:
    new_threat(demo_store)
    with demo_store.write() as session:  # a worker claims, then dies before sending
        dead = outbox.claim(session, NOW)
        assert len(dead) == 2
    email, slack = FakeChannel("email"), FakeChannel("slack")
    early = deliver(
        demo_store, FixedClock(NOW + outbox.LEASE - timedelta(seconds=1)), email=email, slack=slack
    )
    assert asyncio.run(early.deliver_once()).claimed == 0
    late = deliver(demo_store, FixedClock(NOW + outbox.LEASE), email=email, slack=slack)
    assert asyncio.run(late.deliver_once()).sent == 2
    # the dead worker comes back and tries to mark its old claim: it changes nothing
    with demo_store.write() as session:
        row = dead[0]
        assert row.id is not None and row.claimed_at is not None
        assert not outbox.mark(session, row.id, row.claimed_at, OutboxState.FAILED, now=NOW)
    assert {s for _, s in states(demo_store)} == {OutboxState.SENT}


def test_a_sender_that_raises_loses_nothing(demo_store: Store) -> None:
    new_threat(demo_store)

    class Broken(FakeChannel):
        async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
            raise RuntimeError("bug")

    asyncio.run(
        deliver(demo_store, FixedClock(NOW), email=Broken("email"), slack=FakeChannel("slack")).deliver_once()
    )
    assert states(demo_store) == [("email", OutboxState.PENDING), ("slack", OutboxState.SENT)]


def test_a_row_that_keeps_failing_gives_up_after_max_attempts(demo_store: Store) -> None:
    new_threat(demo_store)
    clock = FixedClock(NOW)
    email = FakeChannel("email", lambda _: Retry("timeout"))
    deliverer = deliver(demo_store, clock, email=email, slack=FakeChannel("slack"))
    for _ in range(MAX_ATTEMPTS):
        asyncio.run(deliverer.deliver_once())
        clock.advance(timedelta(seconds=1))
        with demo_store.write() as session:  # skip the backoff wait, keep the TTL
            for row in session.exec(select(OutboxMessage).where(OutboxMessage.state == OutboxState.PENDING)):
                row.available_at = clock.now()
                session.add(row)
    assert len(email.sent) == MAX_ATTEMPTS
    with demo_store.read() as session:
        row = session.exec(select(OutboxMessage).where(OutboxMessage.channel == "email")).one()
    assert row.state == OutboxState.FAILED and row.last_error is not None and "gave up" in row.last_error


@pytest.mark.parametrize("missing", ["email", "slack"])
def test_an_unconfigured_channel_fails_its_rows_with_the_reason(demo_store: Store, missing: str) -> None:
    new_threat(demo_store)
    present = "slack" if missing == "email" else "email"
    asyncio.run(deliver(demo_store, FixedClock(NOW), **{present: FakeChannel(present)}).deliver_once())
    with demo_store.read() as session:
        row = session.exec(select(OutboxMessage).where(OutboxMessage.channel == missing)).one()
    assert row.state == OutboxState.FAILED and row.last_error is not None
    assert row.last_error.startswith("Slack is not configured" if missing == "slack" else "the email channel")


def test_a_batch_slower_than_the_lease_keeps_its_claims_so_no_second_worker_sends_them(
    demo_store: Store,
) -> None:
    from integration.clock import SystemClock

    new_threat(demo_store, count=4)

    class Slow(FakeChannel):
        async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
            await asyncio.sleep(0.3 * len(messages))  # 1.2 s for the batch: two leases
            return await super().send(messages)

    email, other_email = Slow("email"), FakeChannel("email")
    lease = timedelta(seconds=0.6)
    first = Deliverer(demo_store, {"email": email, "slack": FakeChannel("slack")}, SystemClock(), lease=lease)
    second = Deliverer(
        demo_store, {"email": other_email, "slack": FakeChannel("slack")}, SystemClock(), lease=lease
    )

    async def both() -> None:
        with demo_store.write() as session:  # the rows were queued at NOW: due, and not expired yet
            for row in session.exec(select(OutboxMessage)).all():
                row.available_at, row.expires_at = datetime.now(UTC), datetime.now(UTC) + timedelta(hours=1)
                session.add(row)
        busy = asyncio.create_task(first.deliver_once())
        await asyncio.sleep(0.9)  # past the first lease
        await second.deliver_once()
        await busy

    asyncio.run(both())
    assert len(email.sent) == 4 and other_email.sent == []
    assert {s for c, s in states(demo_store) if c == "email"} == {OutboxState.SENT}


def test_a_notice_for_an_error_address_that_changed_meanwhile_is_not_sent(demo_store: Store) -> None:
    from integration import connector

    with demo_store.write() as session:
        connector.set_sync(session, "device", False, actor=ADMIN, at=NOW)  # a new error: a notice
        connector.set_field(session, "error_email", "oncall@contoso.example", actor=ADMIN, at=NOW)
    email = FakeChannel("email")
    done = asyncio.run(deliver(demo_store, FixedClock(NOW), email=email).deliver_once())
    assert email.sent == [] and done.withdrawn == 1
