"""What the on-call digest lists (DESIGN §8), on a hand-built tenant whose answers are known exactly."""

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlmodel import Session

from integration import connector_errors, digest
from integration.messages import MAILTO
from storage.engine import Store
from storage.models import ComplianceFlip, DirectoryUser, OutboxMessage
from storage.states import OutboxState
from tests.conftest import NOW
from tests.integration.factories import device

START, UNTIL = NOW - timedelta(hours=1), NOW


def outbox_row(session: Session, n: int, recipient: str, state: OutboxState, **fields: object) -> None:
    defaults = {
        "channel": "email",
        "category": "threat-high",
        "created_at": START,
        "available_at": START,
        "expires_at": UNTIL + timedelta(hours=1),
        "claimed_at": START + timedelta(minutes=5),
        "last_error": None,
    }
    session.add(
        OutboxMessage(
            idempotency_key=f"k{n}", recipient_id=recipient, payload={}, state=state, **{**defaults, **fields}
        )
    )


def test_the_digest_lists_each_section_and_only_what_falls_in_its_period(store: Store) -> None:
    with store.write() as session:
        session.add(DirectoryUser(id="u-1", email="ann@contoso.example", display_name="Ann"))
        session.add(DirectoryUser(id="u-2", email="bo@contoso.example", display_name="Bo"))
        connector_errors.record(session, "old", "Old trouble", START - timedelta(days=1))  # ongoing
        connector_errors.record(session, "new", "New trouble", START + timedelta(minutes=1))
        connector_errors.record(session, "gone", "Fixed trouble", START - timedelta(days=2))
        connector_errors.resolve(session, "gone", START + timedelta(minutes=2))
        connector_errors.record(session, "long-gone", "Fixed before", START - timedelta(days=3))
        connector_errors.resolve(session, "long-gone", START - timedelta(minutes=1))
        soon = device(session, checkin=UNTIL - timedelta(days=29, hours=2), owner="cy@contoso.example")
        device(session, checkin=UNTIL - timedelta(days=28))  # two days to go: not listed
        device(session, checkin=UNTIL - timedelta(days=31))  # already past: the sweep's business
        session.add(
            ComplianceFlip(
                at=START + timedelta(minutes=3), device_id="d1", owner_email="a@x", became="noncompliant"
            )
        )
        session.add(
            ComplianceFlip(
                at=START - timedelta(minutes=3), device_id="d0", owner_email="a@x", became="compliant"
            )
        )
        session.add(
            ComplianceFlip(at=UNTIL, device_id="d2", owner_email="a@x", became="compliant")
        )  # next one's
        outbox_row(session, 1, "u-1", OutboxState.FAILED, channel="slack", last_error="Slack is off")
        outbox_row(session, 2, "u-2", OutboxState.FAILED, channel="slack", last_error="Slack is off")
        outbox_row(
            session, 3, MAILTO + "ops@contoso.example", OutboxState.FAILED, last_error="550 no such user"
        )
        outbox_row(
            session, 4, "u-1", OutboxState.FAILED, last_error="old", claimed_at=START - timedelta(minutes=1)
        )
        outbox_row(session, 5, "u-1", OutboxState.EXPIRED, expires_at=START + timedelta(minutes=30))
        outbox_row(session, 6, "u-2", OutboxState.EXPIRED, expires_at=START - timedelta(minutes=30))
        outbox_row(session, 7, "u-2", OutboxState.SENT)
        soon_id = soon.id
    with store.read() as session:
        facts = digest.collect(session, START, UNTIL)
    assert facts is not None
    assert [e["fingerprint"] for e in facts["new_errors"]] == ["new"]
    assert [e["fingerprint"] for e in facts["ongoing_errors"]] == ["old"]
    assert [e["fingerprint"] for e in facts["resolved_errors"]] == ["gone"]
    assert facts["new_errors"][0] == {
        "fingerprint": "new",
        "message": "New trouble",
        "count": 1,
        "first_seen": "2026-11-26T11:01:00Z",
        "last_seen": "2026-11-26T11:01:00Z",
    }
    assert facts["about_to_disconnect"] == [
        {"device_id": soon_id, "owner_email": "cy@contoso.example", "last_checkin": "2026-10-28T10:00:00Z"}
    ]
    assert facts["compliance_flips"] == [
        {"device_id": "d1", "owner_email": "a@x", "became": "noncompliant", "at": "2026-11-26T11:03:00Z"}
    ]
    assert sorted(facts["delivery_failures"], key=lambda f: f["channel"]) == [
        {
            "recipient": "ops@contoso.example",
            "channel": "email",
            "category": "threat-high",
            "reason": "550 no such user",
        },
        {
            "recipient": "ann@contoso.example and 1 more",
            "channel": "slack",
            "category": "threat-high",
            "reason": "Slack is off",
        },
    ]
    assert facts["expired"] == 1
    assert (facts["since"], facts["until"]) == ("2026-11-26T11:00:00Z", "2026-11-26T12:00:00Z")


def test_nothing_to_report_is_no_digest(store: Store) -> None:
    with store.write() as session:
        device(session, checkin=UNTIL - timedelta(hours=1))
    with store.read() as session:
        assert digest.collect(session, START, UNTIL) is None


def test_what_happens_exactly_when_a_period_starts_belongs_to_it(store: Store) -> None:
    with store.write() as session:
        session.add(DirectoryUser(id="u-1", email="ann@contoso.example", display_name="Ann"))
        connector_errors.record(session, "new", "Starts now", START)
        connector_errors.record(session, "gone", "Ends now", START - timedelta(days=1))
        connector_errors.resolve(session, "gone", START)
        session.add(ComplianceFlip(at=START, device_id="d1", owner_email="a@x", became="noncompliant"))
        outbox_row(session, 1, "u-1", OutboxState.FAILED, claimed_at=START, last_error="550")
        outbox_row(session, 2, "u-1", OutboxState.EXPIRED, expires_at=START)
    with store.read() as session:
        facts = digest.collect(session, START, UNTIL)
    assert facts is not None
    assert [e["fingerprint"] for e in facts["new_errors"]] == ["new"] and facts["ongoing_errors"] == []
    assert [e["fingerprint"] for e in facts["resolved_errors"]] == ["gone"]
    assert [f["device_id"] for f in facts["compliance_flips"]] == ["d1"]
    assert [f["reason"] for f in facts["delivery_failures"]] == ["550"] and facts["expired"] == 1


def _only_a_flip(session: Session) -> None:
    session.add(ComplianceFlip(at=START, device_id="d1", owner_email="a@x", became="compliant"))


def _only_a_failure(session: Session) -> None:
    outbox_row(session, 1, "u-x", OutboxState.FAILED, last_error="550")


def _only_an_expiry(session: Session) -> None:
    outbox_row(session, 1, "u-x", OutboxState.EXPIRED, expires_at=START + timedelta(minutes=1))


def _only_a_resolution(session: Session) -> None:
    connector_errors.record(session, "gone", "Fixed", START - timedelta(days=1))
    connector_errors.resolve(session, "gone", START + timedelta(minutes=1))


def _only_a_device_going_quiet(session: Session) -> None:
    device(session, checkin=UNTIL - timedelta(days=29, hours=1))


@pytest.mark.parametrize(
    "happened",
    [_only_a_flip, _only_a_failure, _only_an_expiry, _only_a_resolution, _only_a_device_going_quiet],
)
def test_any_one_section_alone_makes_a_digest(store: Store, happened: Callable[[Session], None]) -> None:
    with store.write() as session:
        happened(session)
    with store.read() as session:
        assert digest.collect(session, START, UNTIL) is not None
